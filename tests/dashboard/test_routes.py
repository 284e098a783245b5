"""Every dashboard page keeps its path, view and URL name: templates, tests and the JS reverse these names and
link these paths, and apps/dashboard/routes.py derives them now, so a change to the convention (or to a
component's declaration) that moves one fails here; and no route is shadowed by one listed before it."""
from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from apps.dashboard.routes import Resource

# namespace: {URL name: (path below the namespace's mount, view below its app)}; the mount is
# /dashboard/<namespace>/ (the shell's own "dashboard": /dashboard/)
ROUTES = {
    "dashboard": {
        "overview": ("", "views.overview"),
        "login": ("login", "views.login_view"),
        "logout": ("logout", "views.logout_view"),
        "switch": ("switch", "views.switch_project"),
        "password": ("settings/password", "views_settings.password"),
        "api_access": ("settings/api", "views_settings.api_access"),
        "openrc": ("settings/openrc", "views_settings.openrc"),
        "clouds_yaml": ("settings/clouds.yaml", "views_settings.clouds_yaml"),
    },
    "compute": {
        "instances": ("instances/", "views.instances"),
        "launch": ("instances/launch", "views_launch.launch"),
        "instance": ("instances/<str:server_id>/", "views.instance_detail"),
        "instance_action": ("instances/<str:server_id>/action", "views.instance_action"),
        "instance_act": ("instances/act", "tables.Table.action_view.<locals>.view"),
        "instance_delete": ("instances/<str:server_id>/delete", "tables.Table.action_view.<locals>.view"),
        "instance_console": ("instances/<str:server_id>/console", "views.instance_console"),
        "instance_action_events": ("instances/<str:server_id>/actions/<str:request_id>",
                                   "views.instance_action_events"),
        "instance_volumes": ("instances/<str:server_id>/volumes/", "views_volumes.instance_volumes"),
        "instance_volume_attach": ("instances/<str:server_id>/volumes/attach", "views_volumes.instance_volume_attach"),
        "instance_volume_detach": ("instances/<str:server_id>/volumes/<str:volume_id>/detach",
                                   "views_volumes.instance_volume_detach"),
        "instance_floating_ip_associate": ("instances/<str:server_id>/floating-ips/associate",
                                           "views_floating_ips.instance_floating_ip_associate"),
        "instance_floating_ip_disassociate": ("instances/<str:server_id>/floating-ips/<str:floatingip_id>/disassociate",
                                              "views_floating_ips.instance_floating_ip_disassociate"),
        "keypairs": ("keypairs/", "views.keypairs"),
        "keypair_act": ("keypairs/act", "tables.Table.action_view.<locals>.view"),
        "keypair_delete": ("keypairs/<str:name>/delete", "tables.Table.action_view.<locals>.view"),
        "flavors": ("flavors/", "views.flavors"),
        "flavor_act": ("flavors/act", "tables.Table.action_view.<locals>.view"),
        "flavor_delete": ("flavors/<str:flavor_id>/delete", "tables.Table.action_view.<locals>.view"),
        "flavor": ("flavors/<str:flavor_id>/", "views_flavors.flavor_detail"),
        "flavor_edit": ("flavors/<str:flavor_id>/edit", "views_flavors.flavor_edit"),
        "flavor_spec_set": ("flavors/<str:flavor_id>/specs", "views_flavors.flavor_spec_set"),
        "flavor_spec_delete": ("flavors/<str:flavor_id>/specs/<str:key>/delete", "views_flavors.flavor_spec_delete"),
        "flavor_access_add": ("flavors/<str:flavor_id>/access/add", "views_flavors.flavor_access_add"),
        "flavor_access_remove": ("flavors/<str:flavor_id>/access/<str:project_id>/remove",
                                 "views_flavors.flavor_access_remove"),
        "all_instances": ("admin/instances/", "views.all_instances"),
        "all_instances_act": ("admin/instances/act", "tables.Table.action_view.<locals>.view"),
        "hypervisors": ("admin/hypervisors/", "views.hypervisors"),
        "services": ("admin/services/", "views.compute_services"),
        "service_act": ("admin/services/act", "tables.Table.action_view.<locals>.view"),
        "service_update": ("admin/services/<int:node_id>/update", "views.compute_service_update"),
        "usage": ("admin/usage/", "views.usage"),
        "node_tokens": ("admin/node-tokens/", "views_node_tokens.node_tokens"),
        "node_token_act": ("admin/node-tokens/act", "tables.Table.action_view.<locals>.view"),
        "node_token_revoke": ("admin/node-tokens/<str:token_id>/revoke", "tables.Table.action_view.<locals>.view"),
        "node_token_created": ("admin/node-tokens/created", "views_node_tokens.node_token_created"),
    },
    "identity": {
        "index": ("", "views.index"),
        "projects": ("projects", "tables.Table.page_view.<locals>.view"),
        "project_create": ("projects/create", "views._create_view.<locals>.view"),
        "project_act": ("projects/act", "tables.Table.action_view.<locals>.view"),
        "project_edit": ("projects/<str:project_id>/edit", "views._edit_view.<locals>.view"),
        "project_set_enabled": ("projects/<str:project_id>/enabled", "views._views.<locals>.set_enabled"),
        "project_delete": ("projects/<str:project_id>/delete", "tables.Table.action_view.<locals>.view"),
        "project_members": ("projects/<str:project_id>/members", "views.project_members"),
        "project_member_act": ("projects/<str:project_id>/members/act", "tables.nested_action_view.<locals>.view"),
        "project_member_remove": ("projects/<str:project_id>/members/remove", "views.project_member_remove"),
        "project_quotas": ("projects/<str:project_id>/quotas", "views.project_quotas"),
        "users": ("users", "tables.Table.page_view.<locals>.view"),
        "user_create": ("users/create", "views.user_create"),
        "user_act": ("users/act", "tables.Table.action_view.<locals>.view"),
        "user_edit": ("users/<str:user_id>/edit", "views.user_edit"),
        "user_set_enabled": ("users/<str:user_id>/enabled", "views._views.<locals>.set_enabled"),
        "user_delete": ("users/<str:user_id>/delete", "tables.Table.action_view.<locals>.view"),
        "roles": ("roles", "tables.Table.page_view.<locals>.view"),
        "role_create": ("roles/create", "views.role_create"),
        "role_act": ("roles/act", "tables.Table.action_view.<locals>.view"),
        "role_delete": ("roles/<str:role_id>/delete", "tables.Table.action_view.<locals>.view"),
        "groups": ("groups", "tables.Table.page_view.<locals>.view"),
        "group_create": ("groups/create", "views._create_view.<locals>.view"),
        "group_act": ("groups/act", "tables.Table.action_view.<locals>.view"),
        "group": ("groups/<str:group_id>/", "views.group_detail"),
        "group_edit": ("groups/<str:group_id>/edit", "views._edit_view.<locals>.view"),
        "group_delete": ("groups/<str:group_id>/delete", "tables.Table.action_view.<locals>.view"),
        "group_member_add": ("groups/<str:group_id>/members/add", "views.group_member_add"),
        "group_member_remove": ("groups/<str:group_id>/members/remove", "views.group_member_remove"),
        "group_role_grant": ("groups/<str:group_id>/roles/grant", "views.group_role_grant"),
        "group_role_revoke": ("groups/<str:group_id>/roles/revoke", "views.group_role_revoke"),
        "domains": ("domains", "tables.Table.page_view.<locals>.view"),
        "domain_create": ("domains/create", "views._create_view.<locals>.view"),
        "domain_act": ("domains/act", "tables.Table.action_view.<locals>.view"),
        "domain_edit": ("domains/<str:domain_id>/edit", "views._edit_view.<locals>.view"),
        "domain_set_enabled": ("domains/<str:domain_id>/enabled", "views._views.<locals>.set_enabled"),
        "domain_delete": ("domains/<str:domain_id>/delete", "tables.Table.action_view.<locals>.view"),
    },
    "images": {
        "index": ("", "views.index"),
        "create": ("create", "views.create"),
        "act": ("act", "tables.Table.action_view.<locals>.view"),
        "upload": ("<str:image_id>/upload", "views.upload"),
        "edit": ("<str:image_id>/edit", "views.edit"),
        "share": ("<str:image_id>/share", "views.share"),
        "unshare": ("<str:image_id>/share/<str:member_id>/remove", "views.unshare"),
        "answer": ("<str:image_id>/answer", "views.answer"),
        "delete": ("<str:image_id>/delete", "tables.Table.action_view.<locals>.view"),
    },
    "networks": {
        "index": ("", "views.networks"),
        "network_create": ("create", "views.network_create"),
        "agents": ("agents/", "views_agents.agents"),
        "agent_act": ("agents/act", "tables.Table.action_view.<locals>.view"),
        "agent_enable": ("agents/<str:agent_id>/enable", "tables.Table.action_view.<locals>.view"),
        "agent_disable": ("agents/<str:agent_id>/disable", "tables.Table.action_view.<locals>.view"),
        "agent_delete": ("agents/<str:agent_id>/delete", "tables.Table.action_view.<locals>.view"),
        "port": ("ports/<str:port_id>/", "views_agents.port_detail"),
        "network_act": ("act", "tables.Table.action_view.<locals>.view"),
        "ports": ("ports/", "tables.Table.page_view.<locals>.view"),
        "port_create": ("ports/create", "views.port_create"),
        "port_act": ("ports/act", "tables.Table.action_view.<locals>.view"),
        "port_edit": ("ports/<str:port_id>/edit", "views.port_edit"),
        "port_delete": ("ports/<str:port_id>/delete", "tables.Table.action_view.<locals>.view"),
        "subnet_edit": ("subnets/<str:subnet_id>/edit", "views.subnet_edit"),
        "subnet_delete": ("subnets/<str:subnet_id>/delete", "views._delete_button.<locals>.view"),
        "routers": ("routers/", "views.routers"),
        "router_create": ("routers/create", "views.router_create"),
        "router_act": ("routers/act", "tables.Table.action_view.<locals>.view"),
        "router": ("routers/<str:router_id>/", "views.router_detail"),
        "router_edit": ("routers/<str:router_id>/edit", "views.router_edit"),
        "router_gateway": ("routers/<str:router_id>/gateway", "views.router_gateway"),
        "router_gateway_clear": ("routers/<str:router_id>/gateway/clear", "views.router_gateway_clear"),
        "router_interface_add": ("routers/<str:router_id>/interfaces/add", "views.router_interface_add"),
        "router_interface_remove": ("routers/<str:router_id>/interfaces/remove", "views.router_interface_remove"),
        "router_delete": ("routers/<str:router_id>/delete", "tables.Table.action_view.<locals>.view"),
        "floatingips": ("floating-ips/", "views.floatingips"),
        "floatingip_allocate": ("floating-ips/allocate", "views.floatingip_allocate"),
        "floatingip_act": ("floating-ips/act", "tables.Table.action_view.<locals>.view"),
        "floatingip_associate": ("floating-ips/<str:floatingip_id>/associate", "views.floatingip_associate"),
        "floatingip_disassociate": ("floating-ips/<str:floatingip_id>/disassociate", "views.floatingip_disassociate"),
        "floatingip_release": ("floating-ips/<str:floatingip_id>/release", "tables.Table.action_view.<locals>.view"),
        "security_groups": ("security-groups/", "views.security_groups"),
        "security_group_create": ("security-groups/create", "views.security_group_create"),
        "security_group_act": ("security-groups/act", "tables.Table.action_view.<locals>.view"),
        "security_group": ("security-groups/<str:group_id>/", "views.security_group_detail"),
        "rule_create": ("security-groups/<str:group_id>/rules/add", "views.rule_create"),
        "rule_act": ("security-groups/<str:group_id>/rules/act", "tables.nested_action_view.<locals>.view"),
        "rule_delete": ("security-groups/<str:group_id>/rules/<str:rule_id>/delete",
                        "tables.nested_action_view.<locals>.view"),
        "security_group_delete": ("security-groups/<str:group_id>/delete", "tables.Table.action_view.<locals>.view"),
        "topology": ("topology/", "topology.topology"),
        "topology_json": ("topology.json", "topology.topology_json"),
        "network": ("<str:network_id>/", "views.network_detail"),
        "network_edit": ("<str:network_id>/edit", "views.network_edit"),
        "subnet_create": ("<str:network_id>/subnets/create", "views.subnet_create"),
        "network_delete": ("<str:network_id>/delete", "tables.Table.action_view.<locals>.view"),
    },
    "orchestration": {
        "stacks": ("stacks/", "views.stacks"),
        "stack_launch": ("stacks/launch", "views.stack_launch"),
        "stack_act": ("stacks/act", "tables.Table.action_view.<locals>.view"),
        "stack": ("stacks/<str:stack_id>/", "views.stack_detail"),
        "stack_delete": ("stacks/<str:stack_id>/delete", "views.stack_delete"),
        "stack_check": ("stacks/<str:stack_id>/check", "views.stack_check"),
        "stack_suspend": ("stacks/<str:stack_id>/suspend", "views.stack_suspend"),
        "stack_resume": ("stacks/<str:stack_id>/resume", "views.stack_resume"),
        "stack_update": ("stacks/<str:stack_id>/update", "views.stack_update"),
    },
    "objects": {
        "containers": ("containers/", "views.containers"),
        "container_create": ("containers/create", "views.container_create"),
        "container_act": ("containers/act", "tables.Table.action_view.<locals>.view"),
        "container_delete": ("containers/<str:name>/delete", "tables.Table.action_view.<locals>.view"),
        "container_public": ("containers/<str:name>/public", "tables.Table.action_view.<locals>.view"),
        "container": ("containers/<str:name>/", "views.container_detail"),
        "container_upload": ("containers/<str:name>/upload", "views.container_upload"),
        "container_download": ("containers/<str:name>/download", "views.container_download"),
        "container_object": ("containers/<str:name>/object", "views.container_object"),
        "container_tempurl": ("containers/<str:name>/tempurl", "views.container_tempurl"),
        "container_object_act": ("containers/<str:name>/objects/act", "tables.nested_action_view.<locals>.view"),
    },
    "reports": {
        "index": ("", "views_reports.schedules"),
        "runs": ("runs/", "views_reports.runs"),
        "run_act": ("runs/act", "tables.Table.action_view.<locals>.view"),
        "run_delete": ("runs/<str:run_id>/delete", "tables.Table.action_view.<locals>.view"),
        "run_download": ("runs/<str:run_id>/download/<str:kind>", "views_reports.run_download"),
        "schedule_act": ("act", "tables.Table.action_view.<locals>.view"),
        "schedule_edit": ("<str:schedule_id>/edit", "views_reports.schedule_edit"),
        "schedule_run": ("<str:schedule_id>/run", "tables.Table.action_view.<locals>.view"),
        "schedule_delete": ("<str:schedule_id>/delete", "tables.Table.action_view.<locals>.view"),
    },
    "tasks": {
        "index": ("", "views.tasks"),
        "all": ("all", "views.tasks_all"),
        "task": ("<str:record_id>/", "views.task_detail"),
    },
    "telemetry": {
        "instance_graphs": ("instances/<str:server_id>/graphs", "views.instance_graphs"),
        "capacity": ("admin/capacity/", "views.capacity"),
        "usage": ("usage/", "views.usage"),
        "alarms": ("alarms/", "views_alarms.alarms"),
        "alarm_act": ("alarms/act", "tables.Table.action_view.<locals>.view"),
        "alarm": ("alarms/<str:alarm_id>/", "views_alarms.alarm_detail"),
        "alarm_edit": ("alarms/<str:alarm_id>/edit", "views_alarms.alarm_edit"),
        "alarm_delete": ("alarms/<str:alarm_id>/delete", "tables.Table.action_view.<locals>.view"),
    },
    "volumes": {
        "index": ("", "views.volumes"),
        "create": ("create", "views.volume_create"),
        "act": ("act", "tables.Table.action_view.<locals>.view"),
        "snapshots": ("snapshots/", "tables.Table.page_view.<locals>.view"),
        "snapshot_act": ("snapshots/act", "tables.Table.action_view.<locals>.view"),
        "snapshot_delete": ("snapshots/<str:snapshot_id>/delete", "tables.Table.action_view.<locals>.view"),
        "backends": ("backends/", "tables.Table.page_view.<locals>.view"),
        "types": ("types/", "views_types.volume_types"),
        "type_create": ("types/create", "views_types.volume_type_create"),
        "type_act": ("types/act", "tables.Table.action_view.<locals>.view"),
        "volume_type": ("types/<str:type_id>/", "views_types.volume_type_detail"),
        "type_edit": ("types/<str:type_id>/edit", "views_types.volume_type_edit"),
        "type_delete": ("types/<str:type_id>/delete", "tables.Table.action_view.<locals>.view"),
        "type_spec_set": ("types/<str:type_id>/specs", "views_types.volume_type_spec_set"),
        "type_spec_delete": ("types/<str:type_id>/specs/<str:key>/delete", "views_types.volume_type_spec_delete"),
        "volume": ("<str:volume_id>/", "views.volume_detail"),
        "edit": ("<str:volume_id>/edit", "views.volume_edit"),
        "extend": ("<str:volume_id>/extend", "views.volume_extend"),
        "snapshot": ("<str:volume_id>/snapshot", "views.volume_snapshot"),
        "upload": ("<str:volume_id>/upload", "views.volume_upload"),
        "attach": ("<str:volume_id>/attach", "views.volume_attach"),
        "detach": ("<str:volume_id>/detach", "views.volume_detach"),
        "delete": ("<str:volume_id>/delete", "tables.Table.action_view.<locals>.view"),
    },
}


def mount(namespace: str) -> str:
    return "dashboard/" if namespace == "dashboard" else f"dashboard/{namespace}/"


def dashboard_routes() -> dict[str, dict[str, tuple[str, str]]]:
    """What the URLconf serves under /dashboard/, in ROUTES' form."""
    found: dict[str, dict[str, tuple[str, str]]] = {}

    def walk(patterns: list, prefix: str, namespace: str) -> None:
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, prefix + str(entry.pattern), entry.namespace or namespace)
            elif isinstance(entry, URLPattern) and (prefix + str(entry.pattern)).startswith("dashboard/"):
                route = (prefix + str(entry.pattern)).removeprefix(mount(namespace))
                view = f"{entry.callback.__module__}.{entry.callback.__qualname__}".split(".", 2)[2]
                assert entry.name not in found.get(namespace, {}), f"{namespace}:{entry.name} is declared twice"
                found.setdefault(namespace, {})[entry.name] = (route, view)

    walk(get_resolver().url_patterns, "", "")
    return found


def test_the_dashboard_routes_are_pinned() -> None:
    assert dashboard_routes() == ROUTES


@pytest.mark.parametrize("name", [f"{ns}:{name}" for ns, names in ROUTES.items() for name in names])
def test_each_route_resolves_to_itself(name: str) -> None:
    """A sample URL of each route (ids filled in) resolves to that route, not to one declared before it."""
    namespace, _, url_name = name.partition(":")
    route = mount(namespace) + ROUTES[namespace][url_name][0]
    url = "/" + re.sub(r"<(?:(\w+):)?\w+>", lambda m: "7" if m.group(1) == "int" else "x-1", route)
    match = resolve(url)
    assert f"{match.namespace}:{match.url_name}" == name


def test_the_convention() -> None:
    rows = Resource("routers", "router", "router_id", new=("create",), detail=True,
                    actions=("gateway/clear", "interfaces/add=interface_add")).routes()
    assert rows == [
        ("routers/", "routers", "routers"),
        ("routers/create", "router_create", "router_create"),
        ("routers/<str:router_id>/", "router_detail", "router"),
        ("routers/<str:router_id>/gateway/clear", "router_gateway_clear", "router_gateway_clear"),
        ("routers/<str:router_id>/interfaces/add", "router_interface_add", "router_interface_add"),
    ]
    assert Resource("", "volume", "volume_id", name="", actions=("extend",)).routes() == [
        ("", "volumes", "index"), ("<str:volume_id>/extend", "volume_extend", "extend")]
    assert Resource("admin/services", "compute_service", "int:node_id", name="service", index=False,
                    actions=("update",)).routes() == [
        ("admin/services/<int:node_id>/update", "compute_service_update", "service_update")]
