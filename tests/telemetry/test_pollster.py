"""The pollster: the stats driver reads libvirt's counters (the test hypervisor's), and the control
task stores a node's rounds as Ceilometer's meters on Gnocchi resources, with rates at ingestion;
a node reports only for its own instances; the API then shows them to the instance's project only."""
from __future__ import annotations

import time

import libvirt
import pytest

from tests.api_client import SeededCloud
from workers import telemetry as tasks
from workers.drivers.hypervisor.stats import domain_stats

pytestmark = pytest.mark.django_db


@pytest.fixture
def conn() -> libvirt.virConnect:
    return libvirt.open("test:///default")


def test_driver_reads_every_running_domain(conn: libvirt.virConnect) -> None:
    (domain,) = domain_stats(conn)
    assert domain["uuid"] == conn.listAllDomains()[0].UUIDString()
    assert domain["cpu_time_ns"] > 0 and domain["vcpus"] == 2 and domain["memory_mb"] == 2048.0
    assert domain["memory_usage_mb"] == 1024.0
    assert [d["device"] for d in domain["disks"]] == ["vda"] and domain["disks"][0]["read_bytes"] > 0
    assert [(n["device"], n["mac"]) for n in domain["nics"]] == [("testnet0", "aa:bb:cc:dd:ee:ff")]


def _instance(cloud: SeededCloud, uuid: str, host: str) -> None:
    from apps.compute.models import Instance

    Instance.objects.create(id=uuid, project=cloud.demo_project, user=cloud.demo_user, name="vm-polled",
                            flavor_ref="1", vcpus=2, memory_mb=2048, host=host)


def test_rounds_become_meters_and_rates(cloud: SeededCloud, conn: libvirt.virConnect) -> None:
    from apps.telemetry.models import Metric, Resource

    first = domain_stats(conn)
    uuid = first[0]["uuid"]
    _instance(cloud, uuid, "node-a")
    assert tasks.node_samples("node-b", first) == 0  # not that node's instance: ignored
    assert not Resource.objects.exists()
    stored = tasks.node_samples("node-a", first)
    assert stored == 4 + 4 + 6  # instance meters, one disk's, one interface's; no rate yet
    time.sleep(0.3)
    second = domain_stats(conn)
    assert tasks.node_samples("node-a", second) == 14 + 1 + 4 + 6  # and cpu_util and the .rate meters
    instance = Resource.objects.get(pk=uuid)
    assert instance.type_id == "instance" and instance.project_id == cloud.demo_project.id
    assert instance.attributes["host"] == "node-a" and instance.attributes["display_name"] == "vm-polled"
    names = set(Metric.objects.filter(resource=instance).values_list("name", flat=True))
    assert names == {"cpu", "cpu_util", "vcpus", "memory", "memory.usage"}
    assert Resource.objects.filter(type_id="instance_disk", attributes__instance_id=uuid).count() == 1
    # the API, as the instance's project sees it
    member = cloud.member
    shown = member.get(f"resource/instance/{uuid}").json()
    assert shown["display_name"] == "vm-polled" and "cpu_util" in shown["metrics"]
    util = member.get(f"resource/instance/{uuid}/metric/cpu_util/measures?granularity=300").json()
    # the test hypervisor's CPU time is its clock: one vCPU-second per second of two = 50 %
    assert len(util) == 1 and util[0][2] == pytest.approx(50.0, abs=5.0)
    disk = member.get(f"resource/instance_disk/{uuid}-vda").json()
    assert set(disk["metrics"]) >= {"disk.device.read.bytes", "disk.device.read.bytes.rate"}
    nic = member.get(f"resource/instance_network_interface/{uuid}-testnet0/metric/network.incoming.bytes.rate"
                     "/measures").json()
    assert nic and nic[0][2] > 0
    assert cloud.other.get(f"resource/instance/{uuid}").status_code == 404
    assert cloud.other.get("resource/generic").json() == []
