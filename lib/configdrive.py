"""Config drives in cloud-init's ConfigDrive (OpenStack) format: an ISO9660 image labelled
``config-2`` holding ``openstack/<version>/meta_data.json``, ``user_data``, ``network_data.json`` and
``vendor_data.json`` (plus ``ec2/<version>/meta-data.json``), built with ``genisoimage``.

cloud-init reads the newest version directory it knows (``latest`` first), so every version carries
the same documents; ``network_data.json`` only exists from 2015-10-15 on, as in Nova.
"""
from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lib.netmodel import tap_name

LABEL = "config-2"
OPENSTACK_VERSIONS = ("2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15", "2016-06-30",
                      "2016-10-06", "2017-02-22", "2018-08-27", "latest")
NETWORK_DATA_SINCE = "2015-10-15"
EC2_VERSIONS = ("2009-04-04", "latest")


class ConfigDriveError(RuntimeError):
    pass


@dataclass(frozen=True)
class ConfigDriveSpec:
    uuid: str
    name: str
    hostname: str
    availability_zone: str = "nova"
    launch_index: int = 0
    project_id: str = ""
    public_keys: Mapping[str, str] = field(default_factory=dict)  # key pair name -> OpenSSH public key
    meta: Mapping[str, str] = field(default_factory=dict)
    user_data: bytes | None = None
    # network_data.json as Nova writes it: {"links": [...], "networks": [...], "services": [...]}
    network_data: Mapping[str, Any] = field(default_factory=lambda: {"links": [], "networks": [], "services": []})
    vendor_data: Mapping[str, Any] = field(default_factory=dict)
    fixed_ips: tuple[str, ...] = ()  # for the EC2 document's local-ipv4
    instance_type: str = ""


@dataclass(frozen=True)
class FixedIpInfo:
    """One fixed IP of a port with what the guest needs of its subnet."""

    ip_address: str
    cidr: str
    gateway_ip: str | None = None
    enable_dhcp: bool = True
    ipv6_address_mode: str | None = None  # None, "slaac", "dhcpv6-stateful", "dhcpv6-stateless"
    dns_nameservers: tuple[str, ...] = ()
    host_routes: tuple[tuple[str, str], ...] = ()  # (destination cidr, nexthop)


@dataclass(frozen=True)
class PortInfo:
    """A port of the instance as the guest sees it (link = the NIC with this MAC)."""

    port_id: str
    mac: str
    network_id: str
    mtu: int | None = None
    fixed_ips: tuple[FixedIpInfo, ...] = ()


def _route(cidr: str, gateway: str) -> dict[str, str]:
    net = ipaddress.ip_network(cidr, strict=False)
    return {"network": str(net.network_address), "netmask": str(net.netmask) if net.version == 4
            else str(net.prefixlen), "gateway": gateway}


def network_data(ports: list[PortInfo] | tuple[PortInfo, ...]) -> dict[str, Any]:
    """network_data.json for the instance's ports, in Nova's layout: one ``phy`` link per port (id =
    the tap name, so logs line up with the host side), one network per fixed IP — ``ipv4_dhcp`` /
    ``ipv6_dhcp`` / ``ipv6_slaac`` where the subnet serves addresses, otherwise static with address,
    netmask, routes and DNS — and the DNS servers again as global services."""
    links: list[dict[str, Any]] = []
    networks: list[dict[str, Any]] = []
    services: list[dict[str, str]] = []
    for port in ports:
        link_id = tap_name(port.port_id)
        link: dict[str, Any] = {"id": link_id, "vif_id": port.port_id, "type": "phy",
                                "ethernet_mac_address": port.mac}
        if port.mtu:
            link["mtu"] = port.mtu
        links.append(link)
        for ip in port.fixed_ips:
            net = ipaddress.ip_network(ip.cidr, strict=False)
            entry: dict[str, Any] = {"id": f"network{len(networks)}", "link": link_id,
                                     "network_id": port.network_id}
            dns = [{"type": "dns", "address": a} for a in ip.dns_nameservers]
            if net.version == 4 and ip.enable_dhcp:
                entry["type"] = "ipv4_dhcp"
            elif net.version == 6 and ip.ipv6_address_mode == "slaac":
                entry["type"] = "ipv6_slaac"
            elif net.version == 6 and ip.ipv6_address_mode in ("dhcpv6-stateful", "dhcpv6-stateless"):
                entry["type"] = "ipv6_dhcp"
            else:
                entry["type"] = f"ipv{net.version}"
                entry["ip_address"] = ip.ip_address
                entry["netmask"] = str(net.netmask) if net.version == 4 else str(net.prefixlen)
                routes = [_route(dst, hop) for dst, hop in ip.host_routes]
                if ip.gateway_ip:
                    routes.insert(0, _route("0.0.0.0/0" if net.version == 4 else "::/0", ip.gateway_ip))
                entry["routes"] = routes
                if dns:
                    entry["services"] = dns
            networks.append(entry)
            for svc in dns:
                if svc not in services:
                    services.append(svc)
    return {"links": links, "networks": networks, "services": services}


def meta_data(spec: ConfigDriveSpec) -> dict[str, Any]:
    """openstack/<version>/meta_data.json."""
    doc: dict[str, Any] = {
        "uuid": spec.uuid,
        "name": spec.name,
        "hostname": spec.hostname,
        "launch_index": spec.launch_index,
        "availability_zone": spec.availability_zone,
        "project_id": spec.project_id,
        "meta": dict(spec.meta),
        "devices": [],
    }
    if spec.public_keys:
        doc["public_keys"] = dict(spec.public_keys)
        doc["keys"] = [{"name": n, "type": "ssh", "data": k} for n, k in spec.public_keys.items()]
    return doc


def ec2_meta_data(spec: ConfigDriveSpec) -> dict[str, Any]:
    """ec2/<version>/meta-data.json (the subset cloud-init's ConfigDrive source reads)."""
    doc: dict[str, Any] = {
        "instance-id": spec.uuid,
        "hostname": spec.hostname,
        "local-hostname": spec.hostname,
        "ami-launch-index": spec.launch_index,
        "placement": {"availability-zone": spec.availability_zone},
        "instance-type": spec.instance_type,
    }
    if spec.fixed_ips:
        doc["local-ipv4"] = spec.fixed_ips[0]
    if spec.public_keys:
        doc["public-keys"] = {str(i): {"openssh-key": k} for i, k in enumerate(spec.public_keys.values())}
    return doc


def write_tree(spec: ConfigDriveSpec, root: str | os.PathLike[str]) -> list[str]:
    """Write the drive's files under ``root``; returns their paths relative to it."""
    base = Path(root)
    written: list[str] = []

    def put(rel: str, data: bytes) -> None:
        p = base / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        written.append(rel)

    md = json.dumps(meta_data(spec)).encode()
    nd = json.dumps(dict(spec.network_data)).encode()
    vd = json.dumps(dict(spec.vendor_data)).encode()
    for version in OPENSTACK_VERSIONS:
        put(f"openstack/{version}/meta_data.json", md)
        if spec.user_data is not None:
            put(f"openstack/{version}/user_data", spec.user_data)
        if version == "latest" or version >= NETWORK_DATA_SINCE:
            put(f"openstack/{version}/network_data.json", nd)
            put(f"openstack/{version}/vendor_data.json", vd)
    ec2 = json.dumps(ec2_meta_data(spec)).encode()
    for version in EC2_VERSIONS:
        put(f"ec2/{version}/meta-data.json", ec2)
        if spec.user_data is not None:
            put(f"ec2/{version}/user-data", spec.user_data)
    return written


def build(spec: ConfigDriveSpec, path: str | os.PathLike[str]) -> str:
    """Build the ISO at ``path`` (written beside it and renamed into place); returns the path."""
    tool = shutil.which("genisoimage") or shutil.which("mkisofs")
    if tool is None:
        raise ConfigDriveError("genisoimage is not installed (portal/scripts/system-deps.sh installs it)")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    with tempfile.TemporaryDirectory(prefix="configdrive-") as tree:
        write_tree(spec, tree)
        proc = subprocess.run(
            [tool, "-o", str(tmp), "-ldots", "-allow-lowercase", "-allow-multidot", "-l",
             "-publisher", "Stratus", "-quiet", "-J", "-r", "-V", LABEL, "-input-charset", "utf-8", tree],
            capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        if tmp.exists():
            tmp.unlink()
        raise ConfigDriveError(f"{tool} failed: {proc.stderr.strip()}")
    os.replace(tmp, out)
    return str(out)
