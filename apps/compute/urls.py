"""The compute panels, mounted at /dashboard/compute/ (namespace "compute") by apps.py; the paths, views and
URL names follow apps/dashboard/routes.py."""
from apps.compute import views, views_flavors, views_floating_ips, views_launch, views_node_tokens, views_volumes
from apps.dashboard.routes import Resource, urls

urlpatterns = urls(
    views,
    Resource("instances", "instance", "server_id", detail=True, new=("act",),
             actions=("action", "delete", "console", "actions/<str:request_id>=action_events")),
    Resource("keypairs", "keypair", "name", new=("act",), actions=("delete",)),
    Resource("flavors", "flavor", "flavor_id", new=("act",), actions=("delete",)),
    Resource("admin/services", "compute_service", "int:node_id", name="service", new=("act",),
             actions=("update",)),
    pages={"instances/launch": views_launch.launch, "admin/instances/": "all_instances",
           "admin/instances/act": "all_instances_act", "admin/hypervisors/": "hypervisors", "admin/usage/": "usage"},
) + urls(views_volumes, Resource("instances/<str:server_id>/volumes", "instance_volume", "volume_id",
                                 new=("attach",), actions=("detach",))) + urls(
    views_flavors, Resource("flavors", "flavor", "flavor_id", index=False, detail=True, actions=(
        "edit", "specs=spec_set", "specs/<str:key>/delete=spec_delete", "access/add=access_add",
        "access/<str:project_id>/remove=access_remove"))) + urls(
    views_floating_ips, Resource("instances/<str:server_id>/floating-ips", "instance_floating_ip", "floatingip_id",
                                 index=False, new=("associate",), actions=("disassociate",))) + urls(
    views_node_tokens, Resource("admin/node-tokens", "node_token", "token_id", new=("act",), actions=("revoke",)),
    pages={"admin/node-tokens/created": "node_token_created"})
