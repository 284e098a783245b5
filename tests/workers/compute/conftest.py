"""Fixtures of the node-task tests: a compute node on libvirt's test driver (its own node XML in tmp,
its own instances dir and image cache), real Glance images uploaded through the images services
(tiny qcow2 files made by qemu-img), and instance rows as the server services leave them for a node."""
from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings

from apps.compute.models import ComputeNode, Instance
from apps.images import services as image_services
from apps.images.models import Image
from apps.networks import services as net_services
from tests.api_client import SeededCloud
from tests.image_api import image_api_in_process
from workers import compute
from workers.drivers.hypervisor.libvirt import LibvirtDriver
from workers.drivers.hypervisor.node import test_node_xml

needs_tools = pytest.mark.skipif(shutil.which("qemu-img") is None or shutil.which("genisoimage") is None,
                                 reason="qemu-img / genisoimage not installed (portal/scripts/system-deps.sh)")


@dataclass
class Node:
    host: str
    driver: LibvirtDriver
    row: ComputeNode
    instances: Path
    cache: Path


def make_qcow2(path: Path, size: str = "64M") -> bytes:
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), size], check=True)
    return path.read_bytes()


def upload_image(actor: Any, data: bytes, *, disk_format: str = "qcow2", name: str = "tiny",
                 visibility: str = "shared", **properties: str) -> Image:
    image = image_services.image_create(actor=actor, name=name, disk_format=disk_format, container_format="bare",
                                        visibility=visibility, properties=properties)
    return image_services.image_upload(actor=actor, image_id=image.id, chunks=iter([data]), expected_size=len(data))


@pytest.fixture
def cloud_api() -> str:
    return "compute"


def control_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """The node tasks called in this process report to and ask the control tier's tasks
    (``workers.compute_control``) in this process too: their real code, run at once on the test's
    database (``Task.apply``), where a node agent's messages travel through the broker to a control
    worker (that path is tested with real node and control processes, ``test_worker.py``)."""
    from celery import current_app

    from workers import control_bus

    def report(task_name: str, /, **kwargs: Any) -> None:
        current_app.tasks[task_name].apply(kwargs=kwargs).get()

    def ask(task_name: str, /, *, timeout: float = 30.0, **kwargs: Any) -> Any:
        return current_app.tasks[task_name].apply(kwargs=kwargs).get()

    monkeypatch.setattr(control_bus, "report", report)
    monkeypatch.setattr(control_bus, "ask", ask)
    image_api_in_process(monkeypatch)  # and reach the image API's signed URLs in this process


def node_spec(instance_id: str, task: str, image_id: str | None = None) -> dict[str, Any]:
    """The spec the server services would send with node task ``task`` now."""
    from apps.compute.selectors.node_specs import server_node_spec

    return server_node_spec(instance_id=instance_id, task=task, image_id=image_id)


def run_task(name: str, instance_id: str, *args: Any, **kwargs: Any) -> Any:
    """Node task ``workers.compute.<name>(instance_id, *args, **kwargs)`` run in this process with the
    spec the server services would send with it now (``node_spec``)."""
    spec = node_spec(instance_id, name, image_id=args[0] if name in ("rebuild", "snapshot") and args else None)
    return getattr(compute, name)(instance_id, *args, spec=spec, **kwargs)


def server_spec(instance_id: str, task: str = "spawn", image_id: str | None = None) -> compute.ServerSpec:
    """``node_spec`` as the node task reads it."""
    return compute.ServerSpec.of(instance_id, node_spec(instance_id, task, image_id))


@pytest.fixture
def node(tmp_path: Path, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Node]:
    """A compute node on libvirt's test driver whose tasks are called in this process (their reports
    applied in this process: ``control_in_process``)."""
    control_in_process(monkeypatch)
    host = f"node-{uuid.uuid4().hex[:8]}"
    settings.STRATUS_INSTANCES_PATH = str(tmp_path / "instances")
    settings.STRATUS_IMAGE_CACHE_PATH = str(tmp_path / "image-cache")
    tn = test_node_xml(tmp_path / f"{host}.xml", host, 8, 16384, disk_gb=100)
    driver = LibvirtDriver(tn.uri, hostname=host, disk_gb=tn.disk_gb)
    # the node's one driver, as the agent hands it to the tasks (workers.agent.driver())
    monkeypatch.setattr(compute, "node_driver", lambda: driver)
    row = ComputeNode.objects.create(host=host, hypervisor_hostname=host, hypervisor_type="test",
                                     libvirt_uri=tn.uri, vcpus=8, memory_mb=16384, local_gb=100)
    yield Node(host=host, driver=driver, row=row, instances=tmp_path / "instances", cache=tmp_path / "image-cache")
    driver.close()


@pytest.fixture
def image(cloud: SeededCloud, tmp_path: Path) -> Image:
    return upload_image(cloud.member_actor, make_qcow2(tmp_path / "tiny.qcow2"))


@pytest.fixture
def network(cloud: SeededCloud) -> Any:
    net = net_services.network_create(actor=cloud.member_actor, name="private")
    net_services.subnet_create(actor=cloud.member_actor, network_id=net.id, cidr="10.77.0.0/24",
                               dns_nameservers=["10.77.0.53"])
    return net


def make_instance(cloud: SeededCloud, node: Node, image: Image, *, name: str = "vm", root_gb: int = 1,
                  ephemeral_gb: int = 0, swap: int = 0, config_drive: bool = False, vm_state: str = "building",
                  task_state: str | None = "spawning", user_data: str | None = None) -> Instance:
    """An instance placed on ``node`` (its claim counted), as server_create leaves it for the spawn."""
    flavor = {"original_name": "m1.test", "vcpus": 1, "ram": 512, "disk": root_gb, "ephemeral": ephemeral_gb,
              "swap": swap, "extra_specs": {}}
    inst = Instance.objects.create(
        project=cloud.demo_project, user_id=cloud.member_actor.user_id, name=name, image_id=image.id,
        flavor_ref="m1.test", vcpus=1, memory_mb=512, root_gb=root_gb, ephemeral_gb=ephemeral_gb, swap=swap,
        flavor=flavor, config_drive=config_drive, vm_state=vm_state, task_state=task_state, node=node.row,
        host=node.host, user_data=user_data, key_name="k1", key_data="ssh-ed25519 AAAAC3 k1")
    ComputeNode.objects.filter(pk=node.row.pk).update(vcpus_used=1, memory_mb_used=512, local_gb_used=inst.disk_gb)
    return inst


def add_port(cloud: SeededCloud, network: Any, instance: Instance) -> Any:
    return net_services.port_create(actor=cloud.member_actor, network_id=network.id,
                                    device_id=instance.id, device_owner="compute:nova")


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def messages(queue: str) -> list[dict]:
    """The messages waiting in a broker queue, taken off it, oldest first: their headers (``task``,
    ``id``, ...) and their ``kwargs``. What this process's task sender thread was handed (a spawn) is
    sent first (``tasks.flush``)."""
    from apps.core import tasks

    assert tasks.flush(), "the task sender thread did not send what it was handed"
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    prefix = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}).get("global_keyprefix", "")
    found = []
    while (raw := broker.rpop(prefix + queue)) is not None:
        message = json.loads(raw)
        _args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        found.append({**message["headers"], "kwargs": kwargs})
    return found


def queued(queue: str) -> list[tuple[str, dict]]:
    """The messages waiting in a broker queue, taken off it, oldest first: (task name, kwargs)."""
    return [(message["task"], message["kwargs"]) for message in messages(queue)]


def network_syncs(host: str) -> list[dict]:
    """The network states pushed to the agent's queue of ``host`` (taken off), as ``{"host": ...}``: the
    compute task asks the control tier for a push (``workers.network_control.push``, run in this
    process by ``control_in_process``), which sends ``workers.network.apply`` with the node's state."""
    messages = queued(f"network.{host}")
    assert {name for name, _ in messages} <= {"workers.network.apply"}
    return [{"host": kwargs["host"]} for _, kwargs in messages]
