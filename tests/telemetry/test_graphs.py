"""The dashboard's graphs: an instance's four charts (disks and interfaces summed) at a step chosen from
the archive policy, in a constant number of queries; each pollster round is one live event per project
with the new readings; a node's capacity is recorded on its rounds and charted for admins only."""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from apps.core.errors import BadRequest, Forbidden
from apps.telemetry import graphs
from apps.telemetry.services import samples_from_node
from tests.api_client import SeededCloud

pytestmark = pytest.mark.django_db

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def _domain(uid: str, at: dt.datetime, n: int, *, disks: int = 2) -> dict[str, Any]:
    """What the stats driver reads at round ``n``: counters growing by known amounts per second (60 s apart)."""
    return {"uuid": uid, "timestamp": at.timestamp(), "cpu_time_ns": n * 60 * 1e9 * 0.5, "vcpus": 1,
            "memory_mb": 2048.0, "memory_usage_mb": 500.0 + n,
            "disks": [{"device": f"vd{chr(97 + i)}", "read_bytes": n * 60 * 1000 * (i + 1), "read_requests": n,
                       "write_bytes": n * 60 * 10, "write_requests": n} for i in range(disks)],
            "nics": [{"device": "tap0", "rx_bytes": n * 60 * 300, "tx_bytes": n * 60 * 100, "rx_packets": n,
                      "tx_packets": n, "rx_drop": 0, "tx_drop": 0}]}


def _instance(cloud: SeededCloud, host: str, project: Any = None) -> str:
    from apps.compute.models import Instance

    uid = str(uuid.uuid4())
    Instance.objects.create(id=uid, project=project or cloud.demo_project, user=cloud.demo_user, name="vm-graphed",
                            flavor_ref="1", vcpus=1, memory_mb=2048, host=host)
    return uid


def _rounds(host: str, uids: list[str], count: int, start: dt.datetime) -> None:
    for n in range(count):
        samples_from_node(host=host, domains=[_domain(u, start + dt.timedelta(seconds=60 * n), n) for u in uids])


def test_pick_step_from_the_policy() -> None:
    low = [(300, 30 * 86400)]
    assert graphs.pick_step(low, 3600) == (300, 300)
    assert graphs.pick_step(low, 7 * 86400) == (300, 1800)  # 2,016 buckets shown as 336
    high = [(1, 3600), (60, 7 * 86400), (3600, 365 * 86400)]
    assert graphs.pick_step(high, 3600) == (1, 9)
    assert graphs.pick_step(high, 86400) == (60, 240)
    assert graphs.pick_step([(60, 86400)], 7 * 86400) == (60, 1560)  # nothing covers a week: the longest kept
    assert graphs.pick_step([], 3600) is None


def test_instance_charts_sum_disks_and_interfaces(cloud: SeededCloud) -> None:
    uid = _instance(cloud, "node-g")
    _rounds("node-g", [uid], 4, NOW - dt.timedelta(minutes=30))
    data = graphs.instance_graphs(actor=cloud.member_actor, instance_id=uid, window="hour")
    charts = data["charts"]
    assert set(charts) == {"cpu", "memory", "disk", "network"}
    cpu = charts["cpu"]["lines"][0]
    assert cpu["key"] == "cpu_util" and cpu["step"] == 300 and cpu["points"]
    assert all(p[1] == pytest.approx(50.0) for p in cpu["points"])
    read, write = charts["disk"]["lines"]
    # two disks: 1,000 and 2,000 B/s read, 10 B/s write each; summed per bucket
    assert {p[1] for p in read["points"]} == {3000.0} and {p[1] for p in write["points"]} == {20.0}
    net_in, net_out = charts["network"]["lines"]
    assert {p[1] for p in net_in["points"]} == {300.0} and {p[1] for p in net_out["points"]} == {100.0}
    assert charts["memory"]["lines"][0]["points"]
    # points are [epoch ms, value], bucket starts, inside the window
    assert all(p[0] % 300_000 == 0 and p[0] >= (NOW.timestamp() - 3900) * 1000 for p in cpu["points"])


def test_windows_other_projects_and_bad_input(cloud: SeededCloud) -> None:
    uid = _instance(cloud, "node-g")
    _rounds("node-g", [uid], 2, NOW - dt.timedelta(days=2))
    hour = graphs.instance_graphs(actor=cloud.member_actor, instance_id=uid, window="hour")
    assert hour["charts"]["memory"]["lines"][0]["points"] == []  # two days old: not in the last hour
    week = graphs.instance_graphs(actor=cloud.member_actor, instance_id=uid, window="week")
    assert week["charts"]["memory"]["lines"][0]["points"] and week["charts"]["memory"]["lines"][0]["step"] == 1800
    other = graphs.instance_graphs(actor=cloud.other_actor, instance_id=uid, window="week")
    assert all(not line["points"] for chart in other["charts"].values() for line in chart["lines"])
    with pytest.raises(BadRequest):
        graphs.instance_graphs(actor=cloud.member_actor, instance_id=uid, window="year")


def test_constant_queries_whatever_the_disks_and_rounds(cloud: SeededCloud, django_assert_max_num_queries: Any) -> None:
    small = _instance(cloud, "node-g")
    big = _instance(cloud, "node-g")
    samples_from_node(host="node-g", domains=[_domain(small, NOW - dt.timedelta(minutes=20), 0, disks=1)])
    samples_from_node(host="node-g", domains=[_domain(small, NOW - dt.timedelta(minutes=10), 1, disks=1)])
    for n in range(6):
        samples_from_node(host="node-g", domains=[_domain(big, NOW - dt.timedelta(minutes=50 - 8 * n), n, disks=5)])
    for uid in (small, big):
        with django_assert_max_num_queries(2):
            graphs.instance_graphs(actor=cloud.member_actor, instance_id=uid, window="day")


def test_a_round_is_one_event_per_project(cloud: SeededCloud, monkeypatch: Any,
                                          django_capture_on_commit_callbacks: Any) -> None:
    from apps.core import events

    seen: list[tuple[str, dict]] = []
    monkeypatch.setattr(events, "send_all", seen.extend)
    demo_a, demo_b = _instance(cloud, "node-g"), _instance(cloud, "node-g")
    other = _instance(cloud, "node-g", project=cloud.other_project)
    start = NOW - dt.timedelta(minutes=5)
    with django_capture_on_commit_callbacks(execute=True):
        samples_from_node(host="node-g", domains=[_domain(u, start, 1) for u in (demo_a, demo_b, other)])
    first = [e for _, e in seen if e["kind"] == "measures"]
    assert len(first) == 2  # one per project; no rates yet: memory only
    assert first[0]["data"]["instances"][demo_a]["memory_usage"] == 501.0
    seen.clear()
    with django_capture_on_commit_callbacks(execute=True):
        samples_from_node(host="node-g", domains=[_domain(u, start + dt.timedelta(seconds=60), 2)
                                                  for u in (demo_a, demo_b, other)])
    by_group = {g: e for g, e in seen if e["kind"] == "measures"}
    assert set(by_group) == {f"project.{cloud.demo_project.id}", f"project.{cloud.other_project.id}"}
    demo = by_group[f"project.{cloud.demo_project.id}"]
    assert set(demo["data"]["instances"]) == {demo_a, demo_b}  # never another project's instance
    reading = demo["data"]["instances"][demo_a]
    assert reading["at"] == int((start + dt.timedelta(seconds=60)).timestamp() * 1000)
    assert reading["cpu_util"] == pytest.approx(50.0) and reading["disk_read"] == pytest.approx(3000.0)
    assert reading["net_in"] == pytest.approx(300.0) and reading["memory_usage"] == 502.0


def test_node_capacity_recorded_and_charted_for_admins(cloud: SeededCloud) -> None:
    from apps.compute.models import ComputeNode

    for host, used in (("node-c1", 2), ("node-c2", 6)):
        ComputeNode.objects.create(host=host, hypervisor_hostname=host, libvirt_uri="test:///default", vcpus=8,
                                   memory_mb=16384, local_gb=200, vcpus_used=used, memory_mb_used=used * 512,
                                   local_gb_used=used * 10)
        samples_from_node(host=host, domains=[])
    # a later round of a node with no instance: its resources (its host resource among them), its row, its
    # metrics, one ingestion statement; nothing made again
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        samples_from_node(host="node-c1", domains=[])
    statements = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(statements) == 4, statements
    data = graphs.host_graphs(actor=cloud.admin_actor, window="day")
    assert set(data["hosts"]) == {"node-c1", "node-c2"}
    used, total = data["hosts"]["node-c2"]["vcpus"]["lines"]
    assert used["points"][-1][1] == 6.0 and total["points"][-1][1] == 8.0
    assert data["hosts"]["node-c1"]["memory"]["lines"][0]["points"][-1][1] == 1024.0
    with pytest.raises(Forbidden):
        graphs.host_graphs(actor=cloud.member_actor, window="day")
    from apps.telemetry import selectors
    assert not selectors.resources(actor=cloud.member_actor, type_name="host").exists()
