"""The scheduler on the real PostgreSQL: filters, weighers, claims, and exactness under concurrency."""
from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from django.db import OperationalError, connection, transaction
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.compute.models import ComputeNode
from apps.compute.scheduler import (
    NO_VALID_HOST,
    NoValidHost,
    PlacementRequest,
    claim_adjust,
    claim_release,
    schedule_and_claim,
)


def make_node(host: str, **kw: Any) -> ComputeNode:
    values: dict[str, Any] = {
        "hypervisor_hostname": host, "hypervisor_type": "QEMU", "libvirt_uri": "qemu:///system",
        "vcpus": 8, "memory_mb": 8192, "local_gb": 100, "cpu_allocation_ratio": 1.0, "ram_allocation_ratio": 1.0,
        "disk_allocation_ratio": 1.0, "last_heartbeat": timezone.now(), "cpu_info": {"arch": "x86_64"}}
    values.update(kw)
    return ComputeNode.objects.create(host=host, **values)


def place(**kw: Any) -> ComputeNode:
    req = PlacementRequest(**{"vcpus": 1, "memory_mb": 512, "disk_gb": 1, **kw})
    with transaction.atomic():
        return schedule_and_claim(req)


@pytest.mark.django_db
def test_spread_picks_most_free_ram_and_claims() -> None:
    make_node("a", memory_mb=4096)
    make_node("b", memory_mb=8192)
    node = place(vcpus=2, memory_mb=1024, disk_gb=10)
    assert node.host == "b"
    b = ComputeNode.objects.get(host="b")
    assert (b.vcpus_used, b.memory_mb_used, b.local_gb_used) == (2, 1024, 10)
    assert ComputeNode.objects.get(host="a").memory_mb_used == 0


@pytest.mark.django_db
def test_stack_weigher_packs(settings: Any) -> None:
    settings.STRATUS_SCHEDULER_WEIGHER = "stack"
    make_node("a", memory_mb=4096)
    make_node("b", memory_mb=8192)
    assert [place().host for _ in range(3)] == ["a", "a", "a"]


@pytest.mark.django_db
def test_spread_alternates() -> None:
    make_node("a", memory_mb=4096)
    make_node("b", memory_mb=4096)
    hosts = [place(memory_mb=1024).host for _ in range(4)]
    assert sorted(hosts) == ["a", "a", "b", "b"]


@pytest.mark.django_db
def test_down_disabled_forced_down_nodes_are_filtered(settings: Any) -> None:
    settings.STRATUS_COMPUTE_SERVICE_DOWN_TIME = 60
    make_node("stale", last_heartbeat=timezone.now() - timedelta(seconds=120), memory_mb=64000)
    make_node("never", last_heartbeat=None, memory_mb=64000)
    make_node("disabled", enabled=False, memory_mb=64000)
    make_node("forced", forced_down=True, memory_mb=64000)
    make_node("ok", memory_mb=1024)
    assert place().host == "ok"
    ComputeNode.objects.filter(host="ok").update(enabled=False)
    with pytest.raises(NoValidHost) as err:
        place()
    assert str(err.value) == NO_VALID_HOST


@pytest.mark.django_db
def test_capacity_uses_allocation_ratios_and_reserved() -> None:
    make_node("n", vcpus=2, cpu_allocation_ratio=4.0, memory_mb=1000, ram_allocation_ratio=1.5,
              reserved_host_memory_mb=500, local_gb=10, disk_allocation_ratio=2.0)
    # free: 8 vCPUs, 1000 MB RAM, 20 GB disk
    with pytest.raises(NoValidHost):
        place(vcpus=9)
    with pytest.raises(NoValidHost):
        place(memory_mb=1001)
    with pytest.raises(NoValidHost):
        place(disk_gb=21)
    assert place(vcpus=8, memory_mb=1000, disk_gb=20).host == "n"
    with pytest.raises(NoValidHost):
        place(vcpus=0, memory_mb=1, disk_gb=0)


@pytest.mark.django_db
def test_zone_exclude_hosts_and_force_host() -> None:
    make_node("a", availability_zone="nova", memory_mb=8192)
    make_node("b", availability_zone="az2", memory_mb=4096)
    make_node("c", availability_zone="az2", memory_mb=2048, enabled=False)
    assert place(availability_zone="az2").host == "b"
    assert place(exclude_hosts=("a",)).host == "b"
    with pytest.raises(NoValidHost):
        place(availability_zone="az2", exclude_hosts=("b",))
    # a forced host skips the enabled/zone filters but not capacity
    assert place(force_host="az2:c").host == "c"
    assert place(force_host="c").host == "c"
    assert place(force_host="az2::c").host == "c"  # zone::node (the hypervisor hostname)
    assert place(force_host="az2:c:c").host == "c"
    with pytest.raises(NoValidHost):
        place(force_host="nova:c")
    with pytest.raises(NoValidHost):
        place(force_host="az2:")
    with pytest.raises(NoValidHost):
        place(force_host="c", memory_mb=4096)


@pytest.mark.django_db
def test_group_policies() -> None:
    make_node("a", memory_mb=8192)
    make_node("b", memory_mb=4096)
    make_node("c", memory_mb=2048)
    # hard affinity: only the members' host (when there are members)
    assert place(group_policy="affinity", group_hosts=("c",)).host == "c"
    assert place(group_policy="affinity").host == "a"
    with pytest.raises(NoValidHost):
        place(group_policy="affinity", group_hosts=("c",), memory_mb=4096)
    # hard anti-affinity: never a member's host
    assert place(group_policy="anti-affinity", group_hosts=("a", "b")).host == "c"
    with pytest.raises(NoValidHost):
        place(group_policy="anti-affinity", group_hosts=("a", "b", "c"))
    # soft: weigh, never filter
    assert place(group_policy="soft-affinity", group_hosts=("b", "c", "c")).host == "c"
    assert place(group_policy="soft-anti-affinity", group_hosts=("a", "b", "c")).host == "a"
    assert place(group_policy="soft-anti-affinity", group_hosts=("a", "a", "b")).host == "c"


@pytest.mark.django_db
def test_image_properties() -> None:
    make_node("qemu", hypervisor_type="QEMU", cpu_info={"arch": "x86_64"}, memory_mb=2048)
    make_node("test", hypervisor_type="test", cpu_info={"arch": "x86_64"}, memory_mb=4096)
    make_node("arm", hypervisor_type="QEMU", cpu_info={"arch": "aarch64"}, memory_mb=8192)
    assert place(image_properties={"hypervisor_type": "qemu", "architecture": "x86_64"}).host == "qemu"
    assert place(image_properties={"hypervisor_type": "kvm", "architecture": "amd64"}).host == "qemu"
    assert place(image_properties={"hypervisor_type": "test"}).host == "test"
    assert place(image_properties={"architecture": "aarch64"}).host == "arm"
    with pytest.raises(NoValidHost):
        place(image_properties={"hypervisor_type": "xen"})
    with pytest.raises(NoValidHost):
        place(image_properties={"architecture": "ppc64le"})


@pytest.mark.django_db
def test_a_placement_is_one_statement() -> None:
    """Filters and weighers run over the process's view of the nodes: a placement is the claim's one
    conditional UPDATE, whatever the number of nodes."""
    for i in range(30):
        make_node(f"n{i}", memory_mb=4096 + i)
    assert place().host == "n29"  # loads the view
    for _ in range(5):
        with CaptureQueriesContext(connection) as queries, transaction.atomic():
            schedule_and_claim(PlacementRequest(vcpus=1, memory_mb=512, disk_gb=1))
        statements = [q["sql"] for q in queries.captured_queries  # (the test's own atomic is a savepoint)
                      if "SAVEPOINT" not in q["sql"] and q["sql"] not in ("BEGIN", "COMMIT")]
        assert len(statements) == 1 and statements[0].startswith("UPDATE"), statements


@pytest.mark.django_db
def test_a_stale_view_never_overcommits() -> None:
    """Another process fills the best node behind this process's view (no signal here): the claim's
    UPDATE re-checks the row, so the placement goes to the next node, then NoValidHost."""
    make_node("big", memory_mb=8192)
    make_node("small", memory_mb=2048)
    assert place().host == "big"
    ComputeNode.objects.filter(host="big").update(memory_mb_used=F("memory_mb") - 100)
    assert place(memory_mb=1024).host == "small"
    ComputeNode.objects.filter(host="small").update(vcpus_used=F("vcpus"))
    with pytest.raises(NoValidHost):
        place(memory_mb=1024)
    ComputeNode.objects.filter(host="big").update(enabled=False, memory_mb_used=0)
    with pytest.raises(NoValidHost):  # disabled behind the view's back: still filtered
        place(memory_mb=1024)
    for node in ComputeNode.objects.all():
        assert node.memory_mb_used <= node.memory_mb and node.vcpus_used <= node.vcpus


@pytest.mark.django_db
def test_a_stale_view_never_refuses_wrongly() -> None:
    """Room freed behind the view (another process released claims, or enabled a node): the placement
    still finds it, NoValidHost only when the database has no room."""
    make_node("a", vcpus=1)
    assert place().host == "a"
    with pytest.raises(NoValidHost):
        place()
    ComputeNode.objects.filter(host="a").update(vcpus_used=0, memory_mb_used=0, local_gb_used=0)
    assert place().host == "a"
    ComputeNode.objects.filter(host="a").update(vcpus_used=0, enabled=False)
    with pytest.raises(NoValidHost):
        place()
    ComputeNode.objects.filter(host="a").update(enabled=True)
    assert place().host == "a"


@pytest.mark.django_db
def test_claim_rolls_back_with_the_callers_transaction() -> None:
    make_node("a")
    with pytest.raises(RuntimeError), transaction.atomic():
        schedule_and_claim(PlacementRequest(vcpus=1, memory_mb=512, disk_gb=1))
        raise RuntimeError("the server create failed after the claim")
    assert ComputeNode.objects.get(host="a").vcpus_used == 0


@pytest.mark.django_db(transaction=True)
def test_must_run_in_a_transaction() -> None:
    make_node("a")
    with pytest.raises(RuntimeError):
        schedule_and_claim(PlacementRequest(vcpus=1, memory_mb=512, disk_gb=1))


@pytest.mark.django_db
def test_release_and_adjust() -> None:
    node = make_node("a", vcpus=4, memory_mb=4096, local_gb=40)
    place(vcpus=2, memory_mb=2048, disk_gb=20)
    claim_adjust(node_id=node.id, vcpus=2, memory_mb=-1024, disk_gb=20)
    node.refresh_from_db()
    assert (node.vcpus_used, node.memory_mb_used, node.local_gb_used) == (4, 1024, 40)
    with pytest.raises(NoValidHost):
        claim_adjust(node_id=node.id, vcpus=1, memory_mb=0, disk_gb=0)
    node.refresh_from_db()
    assert node.vcpus_used == 4
    claim_release(node_id=node.id, vcpus=3, memory_mb=5000, disk_gb=10)
    node.refresh_from_db()
    assert (node.vcpus_used, node.memory_mb_used, node.local_gb_used) == (1, 0, 30)  # never below 0
    claim_release(node_id=999999, vcpus=1, memory_mb=1, disk_gb=1)  # gone: nothing to give back


@pytest.mark.django_db(transaction=True)
def test_100_concurrent_claims_are_exact() -> None:
    """100 threads, each its own connection and transaction, claim at once against nodes that fit 12
    in all: exactly 12 succeed, 88 get NoValidHost, and no node goes over its capacity."""
    make_node("a", vcpus=4, memory_mb=8192, local_gb=100)       # 4 (vCPUs)
    make_node("b", vcpus=5, memory_mb=8192, local_gb=100)       # 5 (vCPUs)
    make_node("c", vcpus=16, memory_mb=1536, local_gb=100)      # 3 (RAM)
    make_node("d", vcpus=16, memory_mb=8192, local_gb=0)        # 0 (disk)
    barrier = threading.Barrier(100)
    results: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def attempt() -> str:
        # PostgreSQL's max_connections (100 here) is shared with other test runs: a thread that cannot
        # connect yet waits for a slot and tries again (its transaction had not begun)
        for _ in range(200):
            try:
                connection.ensure_connection()
                break
            except OperationalError as exc:
                if "too many clients" not in str(exc) and "connection slots" not in str(exc):
                    raise
                time.sleep(0.05)
        with transaction.atomic():
            return schedule_and_claim(PlacementRequest(vcpus=1, memory_mb=512, disk_gb=10)).host

    def claim() -> None:
        try:
            barrier.wait(30)
            outcome = attempt()
        except NoValidHost:
            outcome = "none"
        except BaseException as exc:  # noqa: BLE001 - reported below
            with lock:
                errors.append(exc)
            return
        finally:
            connection.close()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=claim) for _ in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:3]
    assert len(results) == 100
    assert results.count("none") == 88
    assert {h: results.count(h) for h in "abcd"} == {"a": 4, "b": 5, "c": 3, "d": 0}
    for node in ComputeNode.objects.all():
        assert node.vcpus_used <= node.vcpus * node.cpu_allocation_ratio
        assert node.memory_mb_used <= node.memory_mb * node.ram_allocation_ratio
        assert node.local_gb_used <= node.local_gb * node.disk_allocation_ratio
    used = {n.host: (n.vcpus_used, n.memory_mb_used, n.local_gb_used) for n in ComputeNode.objects.all()}
    assert used == {"a": (4, 2048, 40), "b": (5, 2560, 50), "c": (3, 1536, 30), "d": (0, 0, 0)}


@pytest.mark.django_db(transaction=True)
def test_a_node_held_by_another_claim_is_waited_for() -> None:
    """The only node that fits is locked by a transaction still claiming on it: a second placement
    skips it, finds no free node, waits for the lock and claims what is left after the first commits."""
    make_node("only", vcpus=2, memory_mb=8192, local_gb=100)
    holding, release = threading.Event(), threading.Event()

    def first() -> None:
        try:
            with transaction.atomic():
                schedule_and_claim(PlacementRequest(vcpus=1, memory_mb=512, disk_gb=1))
                holding.set()
                release.wait(10)
        finally:
            connection.close()

    t = threading.Thread(target=first)
    t.start()
    assert holding.wait(10)
    threading.Timer(1.0, release.set).start()
    started = time.monotonic()
    with transaction.atomic():
        assert schedule_and_claim(PlacementRequest(vcpus=1, memory_mb=512, disk_gb=1)).host == "only"
    assert time.monotonic() - started >= 0.8  # it waited for the first transaction
    t.join(10)
    with pytest.raises(NoValidHost):
        place()
    assert ComputeNode.objects.get(host="only").vcpus_used == 2
