"""What the server tests share: a cloud with an active public image, a private network of the demo
project and compute nodes registered directly (rows with a fresh heartbeat; no node agent runs)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.utils import timezone

from apps.compute.models import ComputeNode, Flavor, Instance
from apps.compute.services import servers
from apps.images import services as image_services
from apps.images.models import Image
from apps.networks import services as network_services
from apps.networks.models import Network
from tests.api_client import SeededCloud
from tests.images.disks import qcow2_bytes


def make_node(host: str, *, vcpus: int = 8, memory_mb: int = 16384, local_gb: int = 200, zone: str = "nova",
              up: bool = True) -> ComputeNode:
    return ComputeNode.objects.create(
        host=host, hypervisor_hostname=f"{host}.local", hypervisor_type="QEMU", libvirt_uri="test:///default",
        vcpus=vcpus, memory_mb=memory_mb, local_gb=local_gb, availability_zone=zone, cpu_allocation_ratio=1.0,
        ram_allocation_ratio=1.0, disk_allocation_ratio=1.0,
        last_heartbeat=timezone.now() if up else timezone.now() - timezone.timedelta(hours=1))


@dataclass
class Env:
    cloud: SeededCloud
    image: Image
    network: Network
    nodes: list[ComputeNode] = field(default_factory=list)

    @property
    def tiny(self) -> Flavor:
        return Flavor.objects.get(name="m1.tiny")

    def boot(self, actor: Any = None, **kw: Any) -> Instance:
        return self.boot_many(actor, **kw)[0]

    def boot_many(self, actor: Any = None, **kw: Any) -> list[Instance]:
        args: dict[str, Any] = {"name": "vm", "image_ref": self.image.id, "flavor_ref": self.tiny.flavorid,
                                "networks": [{"uuid": self.network.id}], "request_id": f"req-{uuid.uuid4()}"}
        args.update(kw)
        return servers.server_create(actor=actor or self.cloud.member_actor, **args)


@pytest.fixture(name="image_dir")
def image_dir_fixture(settings: Any, tmp_path: Any) -> Any:
    from apps.images import storage

    settings.STRATUS_IMAGE_STORE = "file"
    settings.STRATUS_IMAGE_DIR = str(tmp_path / "images")
    storage.reset()
    yield settings.STRATUS_IMAGE_DIR
    storage.reset()


@pytest.fixture(name="env")
def env_fixture(cloud: SeededCloud, image_dir: Any) -> Env:
    admin = cloud.admin_actor
    image = image_services.image_create(actor=admin, name="cirros", disk_format="qcow2", container_format="bare",
                                        visibility="public")
    image = image_services.image_upload(actor=admin, image_id=image.id, chunks=[qcow2_bytes()])
    network = network_services.network_create(actor=cloud.member_actor, name="private")
    network_services.subnet_create(actor=cloud.member_actor, network_id=network.id, cidr="10.0.0.0/24",
                                   ip_version=4, name="private-subnet")
    nodes = [make_node("node-a"), make_node("node-b")]
    return Env(cloud=cloud, image=image, network=network, nodes=nodes)


def reload(instance: Instance) -> Instance:
    return Instance.objects.get(pk=instance.pk)
