"""The block storage panels, mounted at /dashboard/volumes/ (namespace "volumes") by apps.py."""
from django.urls import path

from apps.volumes import views

urlpatterns = [
    path("", views.volumes, name="index"),
    path("create", views.volume_create, name="create"),
    path("snapshots/", views.snapshots, name="snapshots"),
    path("snapshots/<str:snapshot_id>/delete", views.snapshot_delete, name="snapshot_delete"),
    path("backends/", views.backends, name="backends"),
    path("<str:volume_id>/", views.volume_detail, name="volume"),
    path("<str:volume_id>/extend", views.volume_extend, name="extend"),
    path("<str:volume_id>/snapshot", views.volume_snapshot, name="snapshot"),
    path("<str:volume_id>/attach", views.volume_attach, name="attach"),
    path("<str:volume_id>/detach", views.volume_detach, name="detach"),
    path("<str:volume_id>/delete", views.volume_delete, name="delete"),
]
