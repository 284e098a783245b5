"""The compute panels, mounted at /dashboard/compute/ (namespace "compute") by apps.py."""
from django.urls import path

from apps.compute import views, views_volumes

urlpatterns = [
    path("instances/", views.instances, name="instances"),
    path("instances/launch", views.launch, name="launch"),
    path("instances/<str:server_id>/", views.instance_detail, name="instance"),
    path("instances/<str:server_id>/action", views.instance_action, name="instance_action"),
    path("instances/<str:server_id>/delete", views.instance_delete, name="instance_delete"),
    path("instances/<str:server_id>/console", views.instance_console, name="instance_console"),
    path("instances/<str:server_id>/actions/<str:request_id>", views.instance_action_events,
         name="instance_action_events"),
    path("instances/<str:server_id>/volumes/", views_volumes.instance_volumes, name="instance_volumes"),
    path("instances/<str:server_id>/volumes/attach", views_volumes.instance_volume_attach,
         name="instance_volume_attach"),
    path("instances/<str:server_id>/volumes/<str:volume_id>/detach", views_volumes.instance_volume_detach,
         name="instance_volume_detach"),
    path("keypairs/", views.keypairs, name="keypairs"),
    path("keypairs/<str:name>/delete", views.keypair_delete, name="keypair_delete"),
    path("flavors/", views.flavors, name="flavors"),
    path("flavors/<str:flavor_id>/delete", views.flavor_delete, name="flavor_delete"),
    path("admin/instances/", views.all_instances, name="all_instances"),
    path("admin/hypervisors/", views.hypervisors, name="hypervisors"),
    path("admin/services/", views.compute_services, name="services"),
    path("admin/services/<int:node_id>/update", views.compute_service_update, name="service_update"),
    path("admin/usage/", views.usage, name="usage"),
]
