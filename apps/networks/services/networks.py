"""Networks (and the bootstrap's external network)."""
from __future__ import annotations

from typing import TypedDict

from django.conf import settings
from django.db import IntegrityError, connection, transaction

from apps.core.errors import named
from apps.identity.policy import Actor, require_admin
from apps.networks import errors, ipam, selectors
from apps.networks.models import DEVICE_OWNER_DHCP, FloatingIP, Network, Port, Subnet
from apps.networks.services.agents import notify_agents, publish_and_sync
from apps.networks.services.allocation import port_destroy
from apps.networks.services.common import locked_for_write, owning_project, publish, release, reserve, save_changes
from apps.networks.services.floatingips import floatingip_destroy
from apps.networks.services.subnets import FirstSubnet, subnet_create

VXLAN_MTU = 1450
PUBLIC_NETWORK_NAME = "public"


# ---- networks ------------------------------------------------------------------------------

def _allocate_vni() -> int:
    """The lowest free VXLAN id, exact under concurrency (a transaction-scoped advisory lock on
    PostgreSQL; the unique constraint as the last guard)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [0x5EC7105])
    used = sorted(Network.objects.filter(network_type="vxlan", segmentation_id__isnull=False,
                                         segmentation_id__gte=settings.STRATUS_VNI_MIN)
                  .values_list("segmentation_id", flat=True))
    candidate = settings.STRATUS_VNI_MIN
    for vni in used:
        if vni == candidate:
            candidate += 1
        elif vni > candidate:
            break
    if candidate > settings.STRATUS_VNI_MAX:
        raise errors.OverQuota("No VXLAN network id is free: the VNI range is exhausted.")
    return candidate


def _mtu(mtu: int, network_type: str) -> int:
    high = VXLAN_MTU if network_type == "vxlan" else 9000
    if not 68 <= mtu <= high:
        raise errors.InvalidInput(f"Invalid input for mtu. Reason: '{mtu}' is not in range 68..{high}.")
    return mtu


@transaction.atomic
def network_create(*, actor: Actor, name: str = "", admin_state_up: bool = True, shared: bool = False,
                   external: bool = False, mtu: int | None = None, port_security_enabled: bool = True,
                   description: str = "", project_id: str | None = None, network_type: str | None = None,
                   physical_network: str | None = None, segmentation_id: int | None = None,
                   tags: list[str] | None = None, first_subnet: FirstSubnet | None = None) -> Network:
    """A network; with ``first_subnet`` (the dashboard's form) its first subnet too, both or neither."""
    owner = owning_project(actor, project_id)
    if (shared or external) and not actor.is_admin:
        raise errors.PolicyNotAuthorized("Only an admin may create shared or external networks.")
    if (network_type, physical_network, segmentation_id) != (None, None, None):
        require_admin(actor, action="set provider attributes")
    network_type = network_type or "vxlan"
    if network_type not in ("vxlan", "flat"):
        raise errors.InvalidInput(f"Invalid input for provider:network_type. Reason: '{network_type}' is not "
                                  "supported (vxlan, flat).")
    mtu_value = VXLAN_MTU if mtu is None else _mtu(mtu, network_type)
    reserve(owner, {"network": 1})
    network = Network(project_id=owner, name=name, description=description, admin_state_up=admin_state_up,
                      shared=shared, external=external, mtu=mtu_value, network_type=network_type,
                      port_security_enabled=port_security_enabled, tags=list(tags or []))
    if network_type == "flat":
        if not physical_network:
            raise errors.InvalidInput("A flat network needs provider:physical_network.")
        network.physical_network = physical_network
        if Network.objects.filter(network_type="flat", physical_network=network.physical_network).exists():
            raise errors.NetworkInUse(f"Physical network {network.physical_network} is in use.")
    elif segmentation_id is not None:
        if Network.objects.filter(network_type="vxlan", segmentation_id=segmentation_id).exists():
            raise errors.NetworkInUse(f"Unable to create the network. The VXLAN id {segmentation_id} is in use.")
        network.segmentation_id = segmentation_id
    else:
        network.segmentation_id = _allocate_vni()
    try:
        with transaction.atomic():
            network.save()
    except IntegrityError:
        raise errors.NetworkInUse("Unable to create the network: its segmentation id was taken.") from None
    publish_and_sync("created", "network", network, status=network.status)
    if first_subnet is not None:
        subnet_create(actor=actor, network_id=network.id, **first_subnet)
    return network


def _network_for_update(actor: Actor, network_id: str) -> Network:
    return locked_for_write(actor, selectors.network_get(actor=actor, network_id=network_id), errors.NetworkNotFound,
                            f"Network {network_id} could not be found.")


class NetworkChanges(TypedDict, total=False):
    name: str
    description: str
    admin_state_up: bool
    port_security_enabled: bool
    mtu: int
    shared: bool
    external: bool
    tags: list[str]


@transaction.atomic
def network_update(*, actor: Actor, network_id: str, changes: NetworkChanges) -> Network:
    network = _network_for_update(actor, network_id)
    for key in changes:
        if key in ("shared", "external"):
            require_admin(actor, action=f"change {'router:external' if key == 'external' else key}")
    if "mtu" in changes:
        _mtu(changes["mtu"], network.network_type)
    if changes.get("external") is False and network.external and FloatingIP.objects.filter(
            floating_network=network).exists():
        raise errors.NetworkInUse(f"Network {network.id} has floating IPs: it must stay external.",
                                  names=named(network))
    save_changes(network, changes)
    publish_and_sync("updated", "network", network)
    return network


@transaction.atomic
def network_delete(*, actor: Actor, network_id: str) -> None:
    network = _network_for_update(actor, network_id)
    # Neutron deletes an external network's floating IPs with it (their ports go too)
    for fip in FloatingIP.objects.select_for_update().filter(floating_network=network):
        floatingip_destroy(fip)
    if Port.objects.filter(network=network).exclude(device_owner=DEVICE_OWNER_DHCP).exists():
        raise errors.NetworkInUse(f"Unable to complete operation on network {network.id}. There are one or more "
                                  "ports still in use on the network.", names=named(network))
    for port in Port.objects.filter(network=network):
        port_destroy(port)
    subnets = list(Subnet.objects.filter(network=network))
    for subnet in subnets:
        release(subnet.project_id, {"subnet": 1})
        publish("deleted", "subnet", subnet)
    network.delete()
    release(network.project_id, {"network": 1})
    publish_and_sync("deleted", "network", network)


# ---- bootstrap: the external network -------------------------------------------------------

@transaction.atomic
def public_network_ensure(*, project_id: str, cidr: str | None = None, name: str = PUBLIC_NETWORK_NAME
                          ) -> Network:
    """The external network ``public`` (router:external, owned by the admin project) with one
    subnet (STRATUS_PUBLIC_CIDR, default 172.24.4.0/24, gateway the first address). Idempotent."""
    cidr = cidr or settings.STRATUS_PUBLIC_CIDR
    net = ipam.parse_network(cidr, field="STRATUS_PUBLIC_CIDR", strict=False)
    network = Network.objects.filter(name=name, external=True).order_by("created_at").first()
    if network is None:
        network_type = settings.STRATUS_PUBLIC_NETWORK_TYPE
        network = Network(project_id=project_id, name=name, external=True, shared=False,
                          description="The external network (floating IPs and router gateways)",
                          network_type=network_type)
        if network_type == "flat":
            network.physical_network = settings.STRATUS_PUBLIC_PHYSNET
            network.mtu = 1500
        else:
            network.segmentation_id = _allocate_vni()
        network.save()
        reserve(project_id, {"network": 1})
        publish("created", "network", network)
    if not Subnet.objects.filter(network=network).exists():
        gateway = ipam.default_gateway(net)
        Subnet.objects.create(project_id=network.project_id, network=network, name=f"{name}-subnet",
                              ip_version=net.version, cidr=str(net), gateway_ip=gateway,
                              allocation_pools=ipam.default_pools(net, gateway), enable_dhcp=False)
        reserve(network.project_id, {"subnet": 1})
        notify_agents()
    return network
