"""Concurrent creates and deletes on real PostgreSQL transactions: the quota is exact, no node is
overcommitted, and creates racing deletes do not deadlock."""
from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from django.db import connection, transaction

from apps.compute.models import ComputeNode, Instance
from apps.compute.services import NovaQuotaExceeded, server_reports
from apps.identity import selectors as identity_selectors
from apps.identity import services as identity_services
from apps.identity.models import Project
from tests.compute.test_servers_support import Env, env_fixture, image_dir_fixture, make_node  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def _parallel(count: int, work: Any) -> list[Any]:
    results: list[Any] = [None] * count
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except Exception as exc:  # noqa: BLE001 - collected for the assertions
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


def test_concurrent_creates_respect_quota_and_capacity(env: Env) -> None:
    project = env.cloud.demo_project.id
    identity_services.quota_set(actor=env.cloud.admin_actor, project_id=project, limits={"instances": 12})
    ComputeNode.objects.all().delete()
    make_node("small-1", vcpus=4, memory_mb=4096)
    make_node("small-2", vcpus=4, memory_mb=4096)
    results = _parallel(16, lambda i: env.boot(name=f"c{i}", request_id=f"req-{uuid.uuid4()}"))
    made = [r for r in results if isinstance(r, Instance)]
    refused = [r for r in results if isinstance(r, NovaQuotaExceeded)]
    assert len(made) == 12 and len(refused) == 4, [r for r in results if not isinstance(r, Instance)]
    usage = identity_selectors.quota_usage(project=Project(id=project))
    assert usage["instances"]["in_use"] == 12 and usage["cores"]["in_use"] == 12
    placed = Instance.objects.filter(node__isnull=False).count()
    assert placed == 8  # 2 nodes of 4 vCPUs at ratio 1.0; the rest: ERROR, No valid host
    assert Instance.objects.filter(vm_state="error").count() == 4
    for node in ComputeNode.objects.all():
        assert node.vcpus_used == 4 == Instance.objects.filter(node=node).count()


def test_creates_racing_deletes_do_not_deadlock(env: Env) -> None:
    identity_services.quota_set(actor=env.cloud.admin_actor, project_id=env.cloud.demo_project.id,
                                limits={"instances": -1, "cores": -1, "ram": -1})
    first = [env.boot(name=f"old{i}") for i in range(6)]

    def work(index: int) -> Any:
        if index < 6:  # the node reports each old server destroyed while new ones are created
            instance = Instance.objects.get(pk=first[index].pk)
            server_reports.server_destroyed(instance_id=instance.id, host=instance.host)
            return "deleted"
        return env.boot(name=f"new{index}")

    results = _parallel(12, work)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert Instance.objects.filter(deleted=True).count() == 6
    assert Instance.objects.filter(deleted=False).count() == 6
    assert sum(ComputeNode.objects.values_list("vcpus_used", flat=True)) == 6


def test_quota_rows_are_not_locked_through_port_creation(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """While one create makes its ports (holding the network's locks), another create of the project
    can reserve its quota: the quota rows are locked only with the rows they count (issue 12)."""
    from apps.compute.services import servers

    in_ports, go_on = threading.Event(), threading.Event()
    make_ports = servers._make_ports

    def slow_ports(*args: Any, **kwargs: Any) -> None:
        in_ports.set()
        assert go_on.wait(60)
        make_ports(*args, **kwargs)

    monkeypatch.setattr(servers, "_make_ports", slow_ports)
    results = []
    thread = threading.Thread(target=lambda: results.extend(_parallel(1, lambda _: env.boot(name="slow"))))
    thread.start()
    try:
        assert in_ports.wait(60)
        with transaction.atomic():  # would wait for the slow create's commit if it still held the quota rows
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '3s'")
            identity_services.quota_reserve(project_id=env.cloud.demo_project.id, deltas={"instances": 1})
    finally:
        go_on.set()
        thread.join(60)
    assert isinstance(results[0], Instance), results
    assert Instance.objects.get(pk=results[0].pk).task_state == "spawning"
    usage = identity_selectors.quota_usage(project=Project(id=env.cloud.demo_project.id))
    assert usage["instances"]["in_use"] == 2


def test_create_refused_after_its_rows_leaves_nothing(env: Env) -> None:
    """Over the port quota: the instance rows, the quota and the node's claim made before the ports are
    all undone (the create answers 403 and nothing is left)."""
    from apps.networks import services as network_services

    project = env.cloud.demo_project.id
    network_services.network_quota_set(actor=env.cloud.admin_actor, project_id=project, limits={"port": 0})
    with pytest.raises(NovaQuotaExceeded, match="ports"):
        env.boot_many(name="np", min_count=2, max_count=2)
    assert not Instance.objects.filter(name__startswith="np").exists()
    usage = identity_selectors.quota_usage(project=Project(id=project))
    assert usage["instances"]["in_use"] == 0 and usage["cores"]["in_use"] == 0 and usage["ram"]["in_use"] == 0
    assert sum(ComputeNode.objects.values_list("vcpus_used", flat=True)) == 0
