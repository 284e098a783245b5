"""The node agent in-process: registration from the libvirt test driver, heartbeats, the power sync."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from apps.compute.models import ComputeNode
from workers import agent
from workers.drivers.hypervisor import node as hv_node


@pytest.fixture
def test_node(tmp_path: Path, settings: Any) -> str:
    node = hv_node.test_node_xml(tmp_path / "nodes" / "compute9.xml", "compute9", 4, 8192, disk_gb=50)
    settings.LIBVIRT_URI = node.uri
    settings.STRATUS_COMPUTE_HOST = "compute9"
    settings.STRATUS_NODE_DISK_GB = 50
    settings.STRATUS_INSTANCES_PATH = str(tmp_path / "instances")
    settings.STRATUS_COMPUTE_HOST_IP = "192.0.2.9"
    return node.uri


@pytest.mark.django_db
def test_register_from_the_test_driver(test_node: str) -> None:
    drv = agent.driver()
    assert drv is agent.driver() and drv.uri == test_node  # one per process
    node = agent.register("compute9")
    assert (node.host, node.hypervisor_hostname, node.hypervisor_type) == ("compute9", "compute9", "test")
    assert (node.vcpus, node.memory_mb, node.local_gb) == (4, 8192, 50)
    assert node.libvirt_uri == test_node and node.host_ip == "192.0.2.9"
    assert node.cpu_info["arch"] == "x86_64" and node.hypervisor_version > 0
    assert node.cpu_allocation_ratio == 16.0 and node.availability_zone == "nova"


@pytest.mark.django_db
def test_heartbeat_counts_running_domains_and_reregisters(test_node: str) -> None:
    from workers.drivers.hypervisor.libvirt import DomainSpec

    agent.register("compute9")
    ComputeNode.objects.filter(host="compute9").update(last_heartbeat=timezone.now() - timedelta(hours=1))
    uuid = "6f1a3c1e-0000-4000-8000-000000000001"
    agent.driver().spawn(DomainSpec(uuid=uuid, vcpus=1, memory_mb=128))
    try:
        agent.heartbeat("compute9")
        node = ComputeNode.objects.get(host="compute9")
        assert node.running_vms == 1 and timezone.now() - node.last_heartbeat < timedelta(seconds=5)
    finally:
        agent.driver().destroy(uuid)
    ComputeNode.objects.filter(host="compute9").delete()
    agent.heartbeat("compute9")  # unknown: registers again
    assert ComputeNode.objects.filter(host="compute9").exists()


def test_worker_command_and_simulated_node_environ(tmp_path: Path) -> None:
    argv = agent.worker_argv("/usr/bin/python3", "compute3")
    assert argv[argv.index("-Q") + 1] == "compute.compute3" and "--pool=threads" in argv
    env = agent.simulated_node_environ("compute3", tmp_path, vcpus=2, memory_mb=2048, disk_gb=20)
    assert env["STRATUS_COMPUTE_HOST"] == "compute3"
    assert env["LIBVIRT_URI"] == f"test://{tmp_path.resolve()}/nodes/compute3.xml"
    assert Path(env["LIBVIRT_URI"][len("test://"):]).exists() and env["STRATUS_NODE_DISK_GB"] == "20"
