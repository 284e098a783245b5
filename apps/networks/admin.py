"""Networking in the operators' console: shown, never written past the services (IP allocations,
ports of routers and instances, quota, what the agents apply); its actions call the services."""
from django.contrib import admin

from apps.core.admin import ShownInline, ShownOnly, service_action
from apps.networks import models, services


@admin.register(models.Network)
class NetworkAdmin(ShownOnly):
    actions = [service_action("delete_networks", "Delete selected networks",
                              lambda actor, row: services.network_delete(actor=actor, network_id=row.id),
                              done="Deleted")]
    list_display = ("name", "id", "project_id", "status", "admin_state_up", "shared", "external", "network_type",
                    "segmentation_id", "mtu", "created_at")
    list_filter = ("status", "admin_state_up", "shared", "external", "network_type")
    search_fields = ("name", "id", "project_id", "description")


@admin.register(models.Subnet)
class SubnetAdmin(ShownOnly):
    actions = [service_action("delete_subnets", "Delete selected subnets",
                              lambda actor, row: services.subnet_delete(actor=actor, subnet_id=row.id),
                              done="Deleted")]
    list_display = ("name", "id", "network", "project_id", "ip_version", "cidr", "gateway_ip", "enable_dhcp",
                    "created_at")
    list_filter = ("ip_version", "enable_dhcp", "ipv6_address_mode")
    search_fields = ("name", "id", "cidr", "project_id", "network__name")
    list_select_related = ("network",)


@admin.register(models.SubnetPool)
class SubnetPoolAdmin(ShownOnly):
    actions = [service_action("delete_subnetpools", "Delete selected subnet pools",
                              lambda actor, row: services.subnetpool_delete(actor=actor, subnetpool_id=row.id),
                              done="Deleted")]
    list_display = ("name", "id", "project_id", "ip_version", "default_prefixlen", "shared", "is_default",
                    "created_at")
    list_filter = ("ip_version", "shared", "is_default")
    search_fields = ("name", "id", "project_id")


class IPAllocationInline(ShownInline):
    model = models.IPAllocation
    fields = ("subnet", "ip_address")
    raw_id_fields = ("subnet",)


@admin.register(models.Port)
class PortAdmin(ShownOnly):
    actions = [service_action("delete_ports", "Delete selected ports",
                              lambda actor, row: services.port_delete(actor=actor, port_id=row.id),
                              done="Deleted")]
    list_display = ("name", "id", "network", "project_id", "mac_address", "status", "device_owner", "device_id",
                    "binding_host_id", "created_at")
    list_filter = ("status", "device_owner", "admin_state_up", "port_security_enabled", "binding_vnic_type")
    search_fields = ("name", "id", "mac_address", "device_id", "project_id", "fixed_ips__ip_address",
                     "binding_host_id")
    list_select_related = ("network",)
    raw_id_fields = ("network",)
    filter_horizontal = ("security_groups",)
    inlines = [IPAllocationInline]


@admin.register(models.IPAllocation)
class IPAllocationAdmin(ShownOnly):
    list_display = ("ip_address", "subnet", "port", "network", "created_at")
    list_filter = ("network",)
    search_fields = ("ip_address", "port__id", "subnet__cidr")
    list_select_related = ("subnet", "port", "network")
    raw_id_fields = ("port", "subnet", "network")


@admin.register(models.Router)
class RouterAdmin(ShownOnly):
    actions = [service_action("delete_routers", "Delete selected routers",
                              lambda actor, row: services.router_delete(actor=actor, router_id=row.id),
                              done="Deleted")]
    list_display = ("name", "id", "project_id", "status", "admin_state_up", "external_network", "enable_snat",
                    "created_at")
    list_filter = ("status", "admin_state_up", "enable_snat")
    search_fields = ("name", "id", "project_id")
    list_select_related = ("external_network",)
    raw_id_fields = ("gw_port", "external_network")


@admin.register(models.FloatingIP)
class FloatingIPAdmin(ShownOnly):
    actions = [service_action("delete_floatingips", "Release selected floating IPs",
                              lambda actor, row: services.floatingip_delete(actor=actor, floatingip_id=row.id),
                              done="Released")]
    list_display = ("floating_ip_address", "id", "project_id", "floating_network", "fixed_ip_address", "port",
                    "router", "status", "created_at")
    list_filter = ("status", "floating_network")
    search_fields = ("floating_ip_address", "fixed_ip_address", "id", "project_id")
    list_select_related = ("floating_network", "port", "router")
    raw_id_fields = ("floating_network", "floating_port", "port", "router")


class SecurityGroupRuleInline(ShownInline):
    model = models.SecurityGroupRule
    fk_name = "security_group"
    fields = ("direction", "ethertype", "protocol", "port_range_min", "port_range_max", "remote_ip_prefix",
              "remote_group", "description")
    raw_id_fields = ("remote_group",)


@admin.register(models.SecurityGroup)
class SecurityGroupAdmin(ShownOnly):
    actions = [service_action("delete_security_groups", "Delete selected security groups",
                              lambda actor, row: services.security_group_delete(actor=actor, security_group_id=row.id),
                              done="Deleted")]
    list_display = ("name", "id", "project_id", "is_default", "stateful", "created_at")
    list_filter = ("is_default", "stateful")
    search_fields = ("name", "id", "project_id")
    inlines = [SecurityGroupRuleInline]


@admin.register(models.SecurityGroupRule)
class SecurityGroupRuleAdmin(ShownOnly):
    actions = [service_action("delete_security_group_rules", "Delete selected rules",
                              lambda actor, row: services.security_group_rule_delete(actor=actor, rule_id=row.id),
                              done="Deleted")]
    list_display = ("id", "security_group", "direction", "ethertype", "protocol", "port_range_min",
                    "port_range_max", "remote_ip_prefix", "remote_group", "created_at")
    list_filter = ("direction", "ethertype", "protocol")
    search_fields = ("id", "security_group__name", "remote_ip_prefix", "project_id")
    list_select_related = ("security_group", "remote_group")
    raw_id_fields = ("security_group", "remote_group")


@admin.register(models.NetworkAgent)
class NetworkAgentAdmin(ShownOnly):
    actions = [service_action("forget_agents", "Forget selected agents",
                              lambda actor, row: services.network_agent_delete(actor=actor, agent=row),
                              done="Forgot")]
    list_display = ("host", "vtep_ip", "capable", "hosts_dhcp_l3", "admin_state_up", "heartbeat_at", "message")
    list_filter = ("capable", "hosts_dhcp_l3", "admin_state_up")
    search_fields = ("host", "vtep_ip", "message")
