"""Every write to networking data: validation, policy, quotas, IPAM, events, agent notifications.

Services are keyword-only and raise apps.networks.errors exceptions (Neutron's type names). The
Neutron API and the dashboard call exactly these functions.

Locking (PostgreSQL; SQLite serialises writers anyway), always in this order so that concurrent
requests never deadlock: the project's quota rows (identity.quota_reserve), then the network row,
then the subnet rows in id order. The unique constraints (subnet, ip_address), (network, mac) and
(network_type, segmentation_id) are the last guard.

One module per resource; this package re-exports the public services, so callers write
``from apps.networks import services`` and ``services.port_create(...)``.
"""
from apps.networks.services.agents import (
    AgentChanges,
    network_agent_delete,
    network_agent_pushed,
    network_agent_report,
    network_agent_synced,
    network_agent_update,
    notify_agents,
    port_status_report,
)
from apps.networks.services.allocation import FixedIP
from apps.networks.services.floatingips import (
    FloatingIPChanges,
    floatingip_create,
    floatingip_delete,
    floatingip_update,
)
from apps.networks.services.networks import (
    NetworkChanges,
    network_create,
    network_delete,
    network_update,
    public_network_ensure,
)
from apps.networks.services.ports import PortAttributes, port_create, port_delete, port_update
from apps.networks.services.quotas import network_quota_reset, network_quota_set
from apps.networks.services.routers import (
    Gateway,
    RouterChanges,
    router_create,
    router_delete,
    router_interface_add,
    router_interface_remove,
    router_update,
)
from apps.networks.services.security_groups import (
    SecurityGroupChanges,
    security_group_create,
    security_group_delete,
    security_group_ensure_default,
    security_group_ensure_default_for,
    security_group_rule_create,
    security_group_rule_delete,
    security_group_update,
)
from apps.networks.services.subnetpools import (
    SubnetPoolChanges,
    subnetpool_create,
    subnetpool_delete,
    subnetpool_update,
)
from apps.networks.services.subnets import FirstSubnet, SubnetChanges, subnet_create, subnet_delete, subnet_update
from apps.networks.services.tags import tags_change, tags_get

__all__ = [
    "AgentChanges",
    "FirstSubnet",
    "FixedIP",
    "FloatingIPChanges",
    "Gateway",
    "NetworkChanges",
    "PortAttributes",
    "RouterChanges",
    "SecurityGroupChanges",
    "SubnetChanges",
    "SubnetPoolChanges",
    "floatingip_create",
    "floatingip_delete",
    "floatingip_update",
    "network_agent_delete",
    "network_agent_pushed",
    "network_agent_report",
    "network_agent_synced",
    "network_agent_update",
    "network_create",
    "network_delete",
    "network_quota_reset",
    "network_quota_set",
    "network_update",
    "notify_agents",
    "port_create",
    "port_delete",
    "port_status_report",
    "port_update",
    "public_network_ensure",
    "router_create",
    "router_delete",
    "router_interface_add",
    "router_interface_remove",
    "router_update",
    "security_group_create",
    "security_group_delete",
    "security_group_ensure_default",
    "security_group_ensure_default_for",
    "security_group_rule_create",
    "security_group_rule_delete",
    "security_group_update",
    "subnet_create",
    "subnet_delete",
    "subnet_update",
    "subnetpool_create",
    "subnetpool_delete",
    "subnetpool_update",
    "tags_change",
    "tags_get",
]
