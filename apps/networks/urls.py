"""The networking panels, mounted at /dashboard/networks/ (namespace "networks") by apps.py; the paths, views
and URL names follow apps/dashboard/routes.py."""
from apps.dashboard.routes import Resource, urls
from apps.networks import topology, views, views_agents

urlpatterns = urls(
    views_agents,
    Resource("agents", "agent", "agent_id", new=("act",), actions=("enable", "disable", "delete")),
    Resource("ports", "port", "port_id", index=False, detail=True),
) + urls(
    views,
    Resource("", "network", "network_id", new=("create", "act"), detail=True, actions=("edit", "delete")),
    Resource("<str:network_id>/subnets", "subnet", index=False, new=("create",)),
    Resource("subnets", "subnet", "subnet_id", index=False, actions=("edit", "delete")),
    Resource("ports", "port", "port_id", new=("create", "act"), actions=("edit", "delete")),
    Resource("routers", "router", "router_id", new=("create", "act"), detail=True, actions=(
        "edit", "gateway", "gateway/clear", "interfaces/add=interface_add", "interfaces/remove=interface_remove",
        "delete")),
    Resource("floating-ips", "floatingip", "floatingip_id", new=("allocate", "act"),
             actions=("associate", "disassociate", "release")),
    Resource("security-groups", "security_group", "group_id", new=("create", "act"), detail=True, actions=("delete",)),
    Resource("security-groups/<str:group_id>/rules", "rule", "rule_id", index=False, new=("add=create", "act"),
             actions=("delete",)),
    pages={"topology/": topology.topology, "topology.json": topology.topology_json},
)
