"""For the metadata tests: rows (an instance as server_create would leave it, a network), the headers the
network's metadata proxy sends, and a request to the metadata service."""
from __future__ import annotations

import base64
from typing import Any

from django.conf import settings
from django.test import Client

from apps.compute.models import Instance
from apps.networks import services as net_services
from workers.drivers.network import metadata_proxy


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


def proxied(instance_id: str, network_id: str, address: str, *, secret: str | None = None) -> dict[str, str]:
    """What the network's metadata proxy sends upstream for a guest at ``address`` on ``network_id``
    (signed as the proxy signs)."""
    secret = secret or settings.STRATUS_METADATA_SECRET
    return {"HTTP_X_INSTANCE_ID": instance_id,
            "HTTP_X_INSTANCE_ID_SIGNATURE": metadata_proxy.sign(instance_id, secret),
            "HTTP_X_FORWARDED_FOR": address, "HTTP_X_NEUTRON_NETWORK_ID": network_id,
            "HTTP_X_NEUTRON_NETWORK_ID_SIGNATURE": metadata_proxy.sign_network(instance_id, network_id, address,
                                                                               secret)}


def metadata_get(path: str, headers: dict[str, str] | None = None) -> Any:
    """``GET /metadata/<path>`` with ``headers`` (Django META keys)."""
    return Client().get("/metadata/" + path.lstrip("/"), **(headers or {}))
