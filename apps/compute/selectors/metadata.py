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
import json
import os
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Prefetch

from apps.compute.models import Instance
from apps.core.errors import Forbidden, NotFound
from apps.networks.models import FloatingIP, IPAllocation, Port
from lib import configdrive
from lib.configdrive import ConfigDriveSpec, FixedIpInfo, PortInfo, network_data

# The versions Nova's metadata service lists (EC2's dated API versions; OpenStack's releases).
EC2_VERSIONS = ("1.0", "2007-01-19", "2007-03-01", "2007-08-29", "2007-10-10", "2007-12-15", "2008-02-01",
                "2008-09-01", "2009-04-04")
OPENSTACK_VERSIONS = tuple(v for v in configdrive.OPENSTACK_VERSIONS if v != "latest")
VENDOR_DATA2_SINCE = "2016-10-06"


class InstanceNotFound(NotFound):
    pass


class MetadataNotFound(NotFound):
    pass


class MetadataForbidden(Forbidden):
    pass


@dataclass(frozen=True)
class InstanceMetadata:
    """Everything the metadata service answers for one instance."""

    spec: ConfigDriveSpec
    public_ipv4: tuple[str, ...] = ()  # floating IPs associated to the instance's ports
    image_id: str = ""
    reservation_id: str = ""
    security_groups: tuple[str, ...] = ()


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


def _ports(instance: Instance) -> list[Port]:
    # the instance's project's ports only: another project's port naming this device is not the instance's
    return list(Port.objects.filter(device_id=instance.id, project_id=instance.project_id)
                .exclude(device_owner__startswith="network:")
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
    return _spec(instance, _ports(instance))


def instance_metadata(*, instance_id: str, network_id: str | None = None,
                      address: str | None = None) -> InstanceMetadata:
    """What the metadata service answers for ``instance_id``: the config drive's spec plus the EC2
    document's extras (floating IPs, image, reservation, security groups); constant queries.

    With ``network_id`` (the network the proxy saw the request on) and ``address`` (the request's
    source), Nova's check: the instance must have a port of its own project on that network holding
    that address, else it is not found (another project's port naming the instance proves nothing)."""
    instance = Instance.objects.select_related("node").filter(pk=instance_id, deleted=False).first()
    if instance is None:
        raise InstanceNotFound(f"Instance {instance_id} could not be found.")
    ports = list(Port.objects.filter(device_id=instance.id, project_id=instance.project_id)
                 .exclude(device_owner__startswith="network:")
                 .select_related("network")
                 .prefetch_related(Prefetch("fixed_ips", queryset=IPAllocation.objects.select_related("subnet")
                                            .order_by("created_at", "id")), "security_groups")
                 .order_by("created_at", "id"))
    if network_id is not None and not any(
            p.network_id == network_id and p.device_owner.startswith("compute:")
            and any(a.ip_address == address for a in p.fixed_ips.all()) for p in ports):
        raise InstanceNotFound(f"Instance {instance_id} has no port with address {address} on network "
                               f"{network_id}.")
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
        reservation_id=instance.reservation_id, security_groups=tuple(groups))


# --------------------------------------------------------------------------- signing

def instance_signature(*, instance_id: str, secret: str) -> str:
    """hex HMAC-SHA256(secret, instance_id): what the metadata proxy sends as X-Instance-ID-Signature."""
    return hmac.new(secret.encode(), instance_id.encode(), hashlib.sha256).hexdigest()


def instance_signature_valid(*, instance_id: str, signature: str, secret: str) -> bool:
    if not instance_id or not signature or not secret:
        return False
    return hmac.compare_digest(instance_signature(instance_id=instance_id, secret=secret), signature.lower())


def network_signature(*, instance_id: str, network_id: str, address: str, secret: str) -> str:
    """hex HMAC-SHA256(secret, "<instance id>\n<network id>\n<source address>"): what the metadata
    proxy sends as X-Neutron-Network-ID-Signature, vouching for the network and the address it saw
    the request on (X-Neutron-Network-ID, X-Forwarded-For)."""
    message = f"{instance_id}\n{network_id}\n{address}"
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def network_signature_valid(*, instance_id: str, network_id: str, address: str, signature: str,
                            secret: str) -> bool:
    if not instance_id or not network_id or not address or not signature or not secret:
        return False
    expected = network_signature(instance_id=instance_id, network_id=network_id, address=address, secret=secret)
    return hmac.compare_digest(expected, signature.lower())


def metadata_secret() -> str:
    """The shared secret of the metadata proxies and the service (settings; see portal/settings.py)."""
    return settings.STRATUS_METADATA_SECRET


# --------------------------------------------------------------------------- the service's documents

@dataclass(frozen=True)
class MetadataAnswer:
    body: bytes
    content_type: str  # application/json for *.json, text/plain otherwise (as Nova)


def _listing(data: dict[str, Any]) -> str:
    """A directory of the tree, as Nova's ec2_md_print: one entry a line, sub-directories with a
    slash (or their ``_name``, e.g. ``0=mykey`` under public-keys)."""
    lines = []
    for key in sorted(data):
        if key == "_name":
            continue
        value = data[key]
        if isinstance(value, dict):
            lines.append(str(value["_name"]) if "_name" in value else key + "/")
        else:
            lines.append(key)
    return "\n".join(lines)


def _since(version: str, since: str) -> bool:
    return version == "latest" or version >= since


def openstack_documents(md: InstanceMetadata, version: str) -> dict[str, bytes]:
    """The files of ``openstack/<version>/``, in Nova's listing order."""
    spec = md.spec
    doc = configdrive.meta_data(spec)
    doc["random_seed"] = base64.b64encode(os.urandom(512)).decode()  # fresh per request, as Nova
    files = {"meta_data.json": json.dumps(doc).encode()}
    if spec.user_data is not None:
        files["user_data"] = spec.user_data
    files["vendor_data.json"] = json.dumps(dict(spec.vendor_data)).encode()
    if _since(version, configdrive.NETWORK_DATA_SINCE):
        files["network_data.json"] = json.dumps(dict(spec.network_data)).encode()
    if _since(version, VENDOR_DATA2_SINCE):
        files["vendor_data2.json"] = b"{}"  # no dynamic vendordata targets configured
    return files


def ec2_tree(md: InstanceMetadata, version: str) -> dict[str, Any]:
    """``<version>/``: ``meta-data`` (the keys of Nova's get_ec2_metadata for that version) and
    ``user-data`` when the instance has some."""
    spec = md.spec
    v4 = [ip for ip in spec.fixed_ips if ipaddress.ip_address(ip).version == 4]
    meta: dict[str, Any] = {
        "ami-id": md.image_id,
        "ami-launch-index": str(spec.launch_index),
        "ami-manifest-path": "FIXME",  # Nova's literal value
        "instance-id": spec.uuid,
        "hostname": spec.hostname,
        "local-ipv4": v4[0] if v4 else "",
        "reservation-id": md.reservation_id,
        "security-groups": "\n".join(md.security_groups),
    }
    if _since(version, "2007-01-19"):
        meta["local-hostname"] = spec.hostname
        meta["public-hostname"] = spec.hostname
        meta["public-ipv4"] = md.public_ipv4[0] if md.public_ipv4 else ""
    if _since(version, "2007-08-29"):
        meta["instance-type"] = spec.instance_type
    if _since(version, "2007-12-15"):
        meta["block-device-mapping"] = {"ami": "vda", "root": "/dev/vda"}
    if _since(version, "2008-02-01"):
        meta["placement"] = {"availability-zone": spec.availability_zone}
    if _since(version, "2008-09-01"):
        meta["instance-action"] = "none"
    if spec.public_keys:
        meta["public-keys"] = {str(i): {"_name": f"{i}={name}", "openssh-key": key}
                               for i, (name, key) in enumerate(spec.public_keys.items())}
    tree: dict[str, Any] = {"meta-data": meta}
    if spec.user_data is not None:
        tree["user-data"] = spec.user_data
    return tree


def _text(value: str) -> MetadataAnswer:
    return MetadataAnswer(value.encode(), "text/plain; charset=utf-8")


def _resolve(md: InstanceMetadata, tokens: list[str]) -> MetadataAnswer:
    missing = MetadataNotFound("The resource could not be found.")
    if not tokens:
        return _text("\n".join([*EC2_VERSIONS, "latest", "openstack"]))
    if tokens[0] == "openstack":
        if len(tokens) == 1:
            return _text("\n".join([*OPENSTACK_VERSIONS, "latest"]))
        version = tokens[1]
        if version not in OPENSTACK_VERSIONS and version != "latest":
            raise missing
        files = openstack_documents(md, version)
        if len(tokens) == 2:
            return _text("\n".join(files))
        if len(tokens) > 3 or tokens[2] not in files:
            raise missing
        name = tokens[2]
        return MetadataAnswer(files[name], "application/json" if name.endswith(".json") else "text/plain")
    version = tokens[0]
    if version not in EC2_VERSIONS and version != "latest":
        raise missing
    node: Any = ec2_tree(md, version)
    for token in tokens[1:]:
        if not isinstance(node, dict) or token == "_name" or token not in node:
            raise missing
        node = node[token]
    if isinstance(node, dict):
        return _text(_listing(node))
    if isinstance(node, bytes):
        return MetadataAnswer(node, "text/plain")
    return _text(str(node))


def metadata_lookup(*, instance_id: str | None, signature: str | None, network_id: str | None,
                    address: str | None, network_sig: str | None, path: str) -> MetadataAnswer:
    """The metadata service's answer for ``path`` (below /metadata/) to the instance the proxy vouched
    for: ``signature`` must be hex HMAC-SHA256(STRATUS_METADATA_SECRET, instance_id) and
    ``network_sig`` the proxy's signature of (instance, network, source address), else
    MetadataForbidden; an unknown or deleted instance, one without a port of its project holding
    ``address`` on ``network_id``, or an unknown path is MetadataNotFound (Nova's answer when the
    instance is not the requester's)."""
    secret = metadata_secret()
    if not instance_signature_valid(instance_id=instance_id or "", signature=signature or "", secret=secret):
        raise MetadataForbidden("Invalid proxy request signature." if instance_id and signature
                                else "Instance identity headers are missing (X-Instance-ID, X-Instance-ID-Signature).")
    if not (network_id and address and network_sig):
        raise MetadataForbidden("Network identity headers are missing (X-Neutron-Network-ID, X-Forwarded-For, "
                                "X-Neutron-Network-ID-Signature).")
    assert instance_id is not None
    if not network_signature_valid(instance_id=instance_id, network_id=network_id, address=address,
                                   signature=network_sig, secret=secret):
        raise MetadataForbidden("Invalid proxy request signature.")
    tokens = [t for t in path.split("/") if t and t != "."]
    if ".." in tokens:
        raise MetadataNotFound("The resource could not be found.")
    # 404 for an unknown instance or one not on that network with that address, whatever the path
    md = instance_metadata(instance_id=instance_id, network_id=network_id, address=address)
    return _resolve(md, tokens)
