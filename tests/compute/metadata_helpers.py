"""Rows for the metadata tests: an instance (as S's server_create would leave it) and a network."""
from __future__ import annotations

import base64
from typing import Any

from apps.compute.models import Instance
from apps.networks import services as net_services


def make_network(actor: Any, cidr: str, *, dhcp: bool = True, dns: list[str] | None = None) -> tuple[Any, Any]:
    network = net_services.network_create(actor=actor, name=f"net-{cidr}")
    subnet = net_services.subnet_create(actor=actor, network_id=network.id, cidr=cidr, enable_dhcp=dhcp,
                                        dns_nameservers=dns or [])
    return network, subnet


def make_instance(cloud: Any, *, name: str, user_data: bytes | None = None, metadata: dict | None = None,
                  key: tuple[str, str] | None = None, project: Any = None) -> Instance:
    return Instance.objects.create(
        project=project or cloud.demo_project, name=name, flavor_ref="1", vcpus=1, memory_mb=512, root_gb=1,
        flavor={"original_name": "m1.tiny", "vcpus": 1, "ram": 512, "disk": 1, "ephemeral": 0, "swap": 0,
                "extra_specs": {}},
        user_data=base64.b64encode(user_data).decode() if user_data is not None else None,
        metadata=metadata or {}, key_name=key[0] if key else None, key_data=key[1] if key else None,
        image_id="11111111-2222-3333-4444-555555555555", reservation_id="r-abc123", vm_state="active",
        power_state=1)
