"""What an instance may learn about itself: the config drive's documents and the metadata service's.

No actor: the caller is either a node task (config drive) or the metadata API, whose caller was
identified by a signed instance-id header (see ``apps.compute.api.views_metadata``). Both read the
same :class:`ConfigDriveSpec`, so a guest sees the same documents on its drive and over HTTP.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import re
from dataclasses import dataclass

from django.db.models import Prefetch

from apps.compute.models import Instance
from apps.core.errors import NotFound
from apps.networks.models import FloatingIP, IPAllocation, Port
from workers.drivers.hypervisor.configdrive import ConfigDriveSpec, FixedIpInfo, PortInfo, network_data


class InstanceNotFound(NotFound):
    pass


@dataclass(frozen=True)
class InstanceMetadata:
    """Everything the metadata service answers for one instance."""

    spec: ConfigDriveSpec
    public_ipv4: tuple[str, ...] = ()  # floating IPs associated to the instance's ports
    image_id: str = ""
    reservation_id: str = ""
    security_groups: tuple[str, ...] = ()
    mac: str = ""  # first port's MAC


def hostname_for(instance: Instance) -> str:
    """The instance's hostname: the one stored, else its name made into a DNS label (as Nova does)."""
    if instance.hostname:
        return instance.hostname
    name = re.sub(r"[^a-z0-9-]+", "-", instance.name.lower()).strip("-")[:63].strip("-")
    return name or f"server-{instance.id}"


def _user_data(value: str | None) -> bytes | None:
    if value is None or value == "":
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):  # the API validates it; an odd row still gives its bytes
        return value.encode()


def _ports(instance_id: str) -> list[Port]:
    return list(Port.objects.filter(device_id=instance_id).exclude(device_owner__startswith="network:")
                .select_related("network")
                .prefetch_related(Prefetch("fixed_ips", queryset=IPAllocation.objects.select_related("subnet")
                                           .order_by("created_at", "id")))
                .order_by("created_at", "id"))


def _port_info(port: Port) -> PortInfo:
    ips = []
    for alloc in port.fixed_ips.all():
        s = alloc.subnet
        ips.append(FixedIpInfo(
            ip_address=alloc.ip_address, cidr=s.cidr, gateway_ip=s.gateway_ip, enable_dhcp=s.enable_dhcp,
            ipv6_address_mode=s.ipv6_address_mode, dns_nameservers=tuple(s.dns_nameservers),
            host_routes=tuple((r["destination"], r["nexthop"]) for r in s.host_routes)))
    return PortInfo(port_id=port.id, mac=port.mac_address, network_id=port.network_id, mtu=port.network.mtu,
                    fixed_ips=tuple(ips))


def _spec(instance: Instance, ports: list[Port]) -> ConfigDriveSpec:
    v4: list[str] = []
    v6: list[str] = []
    for port in ports:
        for alloc in port.fixed_ips.all():
            (v4 if ipaddress.ip_address(alloc.ip_address).version == 4 else v6).append(alloc.ip_address)
    keys = {instance.key_name: instance.key_data} if instance.key_name and instance.key_data else {}
    return ConfigDriveSpec(
        uuid=instance.id,
        name=instance.name,
        hostname=hostname_for(instance),
        availability_zone=instance.availability_zone or (instance.node.availability_zone if instance.node_id
                                                         and instance.node else "nova"),
        launch_index=instance.launch_index,
        project_id=instance.project_id,
        public_keys=keys,
        meta={str(k): str(v) for k, v in (instance.metadata or {}).items()},
        user_data=_user_data(instance.user_data),
        network_data=network_data([_port_info(p) for p in ports]),
        vendor_data={},
        fixed_ips=tuple(v4 + v6),
        instance_type=str((instance.flavor or {}).get("original_name", "")),
    )


def instance_config_spec(*, instance_id: str) -> ConfigDriveSpec:
    """The config drive's contents for ``instance_id`` (not deleted), from a constant number of
    queries: the instance with its node, its ports with network, fixed IPs and subnets."""
    instance = Instance.objects.select_related("node").filter(pk=instance_id, deleted=False).first()
    if instance is None:
        raise InstanceNotFound(f"Instance {instance_id} could not be found.")
    return _spec(instance, _ports(instance.id))


def instance_metadata(*, instance_id: str) -> InstanceMetadata:
    """What the metadata service answers for ``instance_id``: the config drive's spec plus the EC2
    document's extras (floating IPs, image, reservation, security groups); constant queries."""
    instance = Instance.objects.select_related("node").filter(pk=instance_id, deleted=False).first()
    if instance is None:
        raise InstanceNotFound(f"Instance {instance_id} could not be found.")
    ports = list(Port.objects.filter(device_id=instance.id).exclude(device_owner__startswith="network:")
                 .select_related("network")
                 .prefetch_related(Prefetch("fixed_ips", queryset=IPAllocation.objects.select_related("subnet")
                                            .order_by("created_at", "id")), "security_groups")
                 .order_by("created_at", "id"))
    floating = tuple(FloatingIP.objects.filter(port__in=[p.id for p in ports]).order_by("created_at", "id")
                     .values_list("floating_ip_address", flat=True)) if ports else ()
    groups: list[str] = []
    for port in ports:
        for group in port.security_groups.all():
            if group.name not in groups:
                groups.append(group.name)
    if not groups:
        groups = [str(g) for g in (instance.security_groups or [])]
    return InstanceMetadata(
        spec=_spec(instance, ports), public_ipv4=floating, image_id=instance.image_id,
        reservation_id=instance.reservation_id, security_groups=tuple(groups),
        mac=ports[0].mac_address if ports else "")


# --------------------------------------------------------------------------- signing

def instance_signature(*, instance_id: str, secret: str) -> str:
    """hex HMAC-SHA256(secret, instance_id): what the metadata proxy sends as X-Instance-ID-Signature."""
    return hmac.new(secret.encode(), instance_id.encode(), hashlib.sha256).hexdigest()


def instance_signature_valid(*, instance_id: str, signature: str, secret: str) -> bool:
    if not instance_id or not signature or not secret:
        return False
    return hmac.compare_digest(instance_signature(instance_id=instance_id, secret=secret), signature.lower())
