"""The node agent in-process: registration from the libvirt test driver, heartbeats, the power sync. The
agent reads its hypervisor only and sends plain values; the control tasks (``workers.compute_control``)
apply them here as a control worker would (a real node without a database:
tests/workers/test_node_without_db.py)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.compute.models import ComputeNode
from tests.control_reports import take_messages
from workers import agent, compute_control
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


def plain(values: dict[str, Any]) -> dict[str, Any]:
    """As the message carries them (JSON)."""
    return json.loads(json.dumps(values))


@pytest.mark.django_db
def test_register_from_the_test_driver(test_node: str) -> None:
    drv = agent.driver()
    assert drv is agent.driver() and drv.uri == test_node  # one per process
    with CaptureQueriesContext(connection) as queries:
        values = plain(agent.registration("compute9"))
    assert not queries.captured_queries  # the node reads its hypervisor, not the database
    node_uuid = compute_control.node_register(host="compute9", node=values)
    node = ComputeNode.objects.get(host="compute9")
    assert node.uuid == node_uuid
    assert (node.host, node.hypervisor_hostname, node.hypervisor_type) == ("compute9", "compute9", "test")
    assert (node.vcpus, node.memory_mb, node.local_gb) == (4, 8192, 50)
    assert node.libvirt_uri == test_node and node.host_ip == "192.0.2.9"
    assert node.cpu_info["arch"] == "x86_64" and node.hypervisor_version > 0
    assert node.cpu_allocation_ratio == 16.0 and node.availability_zone == "nova"


@pytest.mark.django_db
def test_heartbeat_counts_running_domains_and_reregisters(test_node: str) -> None:
    from workers.drivers.hypervisor.libvirt import DomainSpec

    compute_control.node_register(host="compute9", node=plain(agent.registration("compute9")))
    ComputeNode.objects.filter(host="compute9").update(last_heartbeat=timezone.now() - timedelta(hours=1))
    uuid = "6f1a3c1e-0000-4000-8000-000000000001"
    agent.driver().spawn(DomainSpec(uuid=uuid, vcpus=1, memory_mb=128))
    try:
        with CaptureQueriesContext(connection) as queries:
            report = plain(agent.heartbeat_report("compute9"))
        assert not queries.captured_queries and report["running_vms"] == 1
        assert compute_control.node_heartbeat(**report) == "alive"
        node = ComputeNode.objects.get(host="compute9")
        assert node.running_vms == 1 and timezone.now() - node.last_heartbeat < timedelta(seconds=5)
    finally:
        agent.driver().destroy(uuid)
    ComputeNode.objects.filter(host="compute9").delete()
    # unknown to the control tier: the heartbeat carries the registration, the control task registers
    assert compute_control.node_heartbeat(**plain(agent.heartbeat_report("compute9"))) == "registered"
    assert ComputeNode.objects.get(host="compute9").vcpus == 4


@pytest.mark.django_db
def test_the_heartbeat_goes_by_a_message_that_expires(test_node: str, settings: Any) -> None:
    """``agent.heartbeat`` sends the report to the control queue (nothing written here), with an expiry:
    a heartbeat no control worker took in time is dropped, not applied late."""
    settings.STRATUS_COMPUTE_SERVICE_DOWN_TIME = 30
    take_messages("workers.compute_control.node_heartbeat")
    with CaptureQueriesContext(connection) as queries:
        agent.heartbeat("compute9")
    assert not queries.captured_queries
    [message] = take_messages("workers.compute_control.node_heartbeat")
    kwargs = message["kwargs"]
    expires = datetime.fromisoformat(message["expires"])
    assert timedelta(seconds=25) < expires - timezone.now() <= timedelta(seconds=30)
    assert kwargs["host"] == "compute9" and kwargs["running_vms"] == 0 and kwargs["node"]["vcpus"] == 4
    assert not ComputeNode.objects.filter(host="compute9").exists()


def test_worker_command_and_simulated_node_environ(tmp_path: Path) -> None:
    argv = agent.worker_argv("/usr/bin/python3", "compute3")
    assert argv[argv.index("-Q") + 1] == "compute.compute3" and "--pool=threads" in argv
    env = agent.simulated_node_environ("compute3", tmp_path, vcpus=2, memory_mb=2048, disk_gb=20)
    assert env["STRATUS_COMPUTE_HOST"] == "compute3"
    assert env["LIBVIRT_URI"] == f"test://{tmp_path.resolve()}/nodes/compute3.xml"
    assert Path(env["LIBVIRT_URI"][len("test://"):]).exists() and env["STRATUS_NODE_DISK_GB"] == "20"
