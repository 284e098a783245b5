"""A compute node as it runs: a real Celery worker process consuming ``compute.<host>`` with a thread
pool, its own test-driver hypervisor (node XML in tmp), on the test database. The test sends spawn and
destroy as the server services do and watches the rows and the node's files."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from apps.compute.models import ComputeNode, Instance
from tests.conftest import ROOT, CeleryWorker, _wait_log, database_url, running_worker
from tests.leftovers import stop
from tests.workers.compute.conftest import add_port, make_instance, needs_tools, network_syncs, node_spec
from workers import compute, compute_console
from workers.drivers.hypervisor import disk
from workers.drivers.hypervisor import node as hv_node
from workers.drivers.hypervisor.libvirt import RUNNING

pytestmark = [needs_tools, pytest.mark.django_db(transaction=True)]


@dataclass
class NodeWorker:
    host: str
    queue: str
    row: ComputeNode
    instances: Path
    cache: Path
    log: Path


@pytest.fixture
def control(tmp_path: Path) -> Iterator[CeleryWorker]:
    """A control-queue worker on the test database: it applies what the node reports and answers what
    it asks (``workers.compute_control``; the node holds no database credentials)."""
    env = dict(os.environ, DATABASE_URL=database_url(connection.settings_dict["NAME"]), STRATUS_DB_CONN_MAX_AGE="0")
    with running_worker(env, settings.CELERY_TASK_DEFAULT_QUEUE, name=f"control-{uuid.uuid4().hex[:6]}",
                        log=tmp_path / "control.log", pool="threads", concurrency=4) as worker:
        yield worker


@contextlib.contextmanager
def start_node_worker(tmp_path: Path, *, no_database: bool, web: str) -> Iterator[NodeWorker]:
    """A node worker whose controller is ``web`` (the test database's web server, ``test_db_web``): it
    reads images through the image API's signed URLs, with no image store settings (its data dir is its
    own, holding no image)."""
    host = f"node-{uuid.uuid4().hex[:8]}"
    tn = hv_node.test_node_xml(tmp_path / f"{host}.xml", host, 8, 16384, disk_gb=100)
    row = ComputeNode.objects.create(host=host, hypervisor_hostname=host, hypervisor_type="test",
                                     libvirt_uri=tn.uri, vcpus=8, memory_mb=16384, local_gb=100)
    instances, cache, log = tmp_path / "instances", tmp_path / "image-cache", tmp_path / "worker.log"
    env = dict(os.environ, DATABASE_URL=database_url(connection.settings_dict["NAME"]), STRATUS_DB_CONN_MAX_AGE="0",
               STRATUS_COMPUTE_HOST=host, LIBVIRT_URI=tn.uri, STRATUS_INSTANCES_PATH=str(instances),
               STRATUS_IMAGE_CACHE_PATH=str(cache), STRATUS_COMPUTE_HEARTBEAT_SECONDS="2",
               STRATUS_PUBLIC_URL=web, STRATUS_DATA_DIR=str(tmp_path / "node-data"))
    for name in [n for n in env if n.startswith("STRATUS_IMAGE_") and n != "STRATUS_IMAGE_CACHE_PATH"]:
        env.pop(name)
    if no_database:  # a node as issue 16 wants it: no credentials, any query fails at once
        env.pop("DATABASE_URL")
        env["STRATUS_NO_DATABASE"] = "1"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", compute.queue_for(host),
             "--pool=threads", "--concurrency=4", "-n", f"{host}@%h", "--without-gossip", "--without-mingle",
             "--without-heartbeat", "--loglevel=INFO"],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_log(log, " ready.", proc)
        yield NodeWorker(host=host, queue=compute.queue_for(host), row=row, instances=instances, cache=cache, log=log)
    finally:
        stop(proc)


@pytest.fixture
def node_worker(tmp_path: Path, control: CeleryWorker, test_db_web: str) -> Iterator[NodeWorker]:
    with start_node_worker(tmp_path, no_database=False, web=test_db_web) as worker:
        yield worker


def wait_for(check: Callable[[], bool], timeout: float = 60, what: str = "") -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_spawn_and_destroy_through_a_node_worker(cloud, image, network, node_worker: NodeWorker) -> None:
    inst = make_instance(cloud, node_worker, image, config_drive=True)  # type: ignore[arg-type]
    add_port(cloud, network, inst)
    compute.spawn.apply_async(kwargs={"instance_id": inst.id, "request_id": "req-w1",
                                      "spec": node_spec(inst.id, "spawn")}, queue=node_worker.queue)
    took = wait_for(lambda: Instance.objects.get(pk=inst.id).vm_state != "building", what="the spawn report")
    inst.refresh_from_db()
    assert (inst.vm_state, inst.power_state) == ("active", RUNNING), node_worker.log.read_text()[-3000:]
    print(f"\nspawn through the node worker (send → ACTIVE in the database): {took * 1000:.0f} ms")

    layout_dir = node_worker.instances / inst.id
    assert disk.info(layout_dir / "disk", fmt="qcow2").chain == (str(layout_dir / "disk"),
                                                                 str(node_worker.cache / image.id))
    assert (layout_dir / "disk.config").is_file()
    # the domain lives in the worker's own hypervisor: ask the node itself
    states = compute.sync_power_states.apply_async(kwargs={"host": node_worker.host},
                                                   queue=node_worker.queue).get(timeout=30)
    assert states == {inst.id: RUNNING}
    assert compute_console.console_output.apply_async(kwargs={"instance_id": inst.id},
                                              queue=node_worker.queue).get(timeout=10) == ""
    pushed: list[dict] = []  # plug the tap: the control worker pushes the node's state to its network agent
    wait_for(lambda: pushed.extend(network_syncs(node_worker.host)) or {"host": node_worker.host} in pushed,
             what="the network state pushed to plug the tap", timeout=30)

    compute.destroy.apply_async(kwargs={"instance_id": inst.id, "request_id": "req-w2",
                                        "spec": node_spec(inst.id, "destroy")}, queue=node_worker.queue)
    wait_for(lambda: Instance.objects.get(pk=inst.id).deleted, what="the destroy report")
    assert not layout_dir.exists() and (node_worker.cache / image.id).is_file()
    assert compute.sync_power_states.apply_async(kwargs={"host": node_worker.host},
                                                 queue=node_worker.queue).get(timeout=30) == {}


def test_concurrent_spawns_and_a_delete_racing_its_spawn(cloud, image, node_worker: NodeWorker) -> None:
    count = 8
    insts = [make_instance(cloud, node_worker, image, name=f"vm-{i}") for i in range(count)]  # type: ignore[arg-type]
    started = time.monotonic()
    for inst in insts:
        compute.spawn.apply_async(kwargs={"instance_id": inst.id, "spec": node_spec(inst.id, "spawn")},
                                  queue=node_worker.queue)
    # the last one is deleted while its spawn is on its way: the server services mark it deleting and
    # send destroy right behind the spawn
    racer = insts[-1]
    Instance.objects.filter(pk=racer.id).update(task_state="deleting")
    compute.destroy.apply_async(kwargs={"instance_id": racer.id, "spec": node_spec(racer.id, "destroy")},
                                queue=node_worker.queue)
    ids = [i.id for i in insts[:-1]]
    wait_for(lambda: Instance.objects.filter(pk__in=ids, vm_state="active").count() == len(ids), what="the spawns")
    took = time.monotonic() - started
    wait_for(lambda: Instance.objects.get(pk=racer.id).deleted, what="the racing delete")
    print(f"\n{len(ids)} spawns on one node worker (4 threads): {took * 1000:.0f} ms, "
          f"{len(ids) / took:.1f} boots/s")
    states = compute.sync_power_states.apply_async(kwargs={"host": node_worker.host},
                                                   queue=node_worker.queue).get(timeout=30)
    assert states == dict.fromkeys(ids, RUNNING)  # nothing of the deleted one is left on the node
    assert not (node_worker.instances / racer.id).exists()
    assert sorted(p.name for p in node_worker.instances.iterdir()) == sorted(ids)


def test_spawn_snapshot_destroy_on_a_node_without_a_database(cloud, image, network, control: CeleryWorker,
                                                        tmp_path: Path, test_db_web: str) -> None:
    """Issue 16: a node started with no DATABASE_URL and STRATUS_NO_DATABASE=1 (Django's dummy engine:
    any query fails) and no image store settings builds, boots, snapshots and destroys from the spec it
    is sent, reads the image and writes the snapshot through the image API with the URLs signed for it,
    asks the control tier and reports to it by messages; the control worker applies the reports."""
    with start_node_worker(tmp_path, no_database=True, web=test_db_web) as node_worker:
        inst = make_instance(cloud, node_worker, image, config_drive=True)  # type: ignore[arg-type]
        add_port(cloud, network, inst)
        compute.spawn.apply_async(kwargs={"instance_id": inst.id, "request_id": "req-nodb-1",
                                          "spec": node_spec(inst.id, "spawn")}, queue=node_worker.queue)
        took = wait_for(lambda: Instance.objects.get(pk=inst.id).vm_state != "building", what="the spawn report")
        inst.refresh_from_db()
        assert (inst.vm_state, inst.power_state) == ("active", RUNNING), node_worker.log.read_text()[-3000:]
        print(f"\nspawn on a node without a database (send → ACTIVE in the database): {took * 1000:.0f} ms")
        layout_dir = node_worker.instances / inst.id
        assert disk.info(layout_dir / "disk", fmt="qcow2").chain == (str(layout_dir / "disk"),
                                                                     str(node_worker.cache / image.id))
        assert (layout_dir / "disk.config").is_file()
        pushed: list[dict] = []
        wait_for(lambda: pushed.extend(network_syncs(node_worker.host)) or {"host": node_worker.host} in pushed,
                 what="the network state pushed to plug the tap", timeout=30)

        # a snapshot as the API asks for it: the service sends it on commit, the node streams the bytes to
        # the image API with the write URL signed for it (the image upload path)
        from django.utils import timezone

        from apps.compute.services.server_snapshots import server_image_create
        from apps.images.models import Image

        ComputeNode.objects.filter(pk=node_worker.row.pk).update(last_heartbeat=timezone.now())
        image_id = server_image_create(actor=cloud.member_actor, server_id=inst.id, name="snap",
                                       request_id="req-nodb-snap")
        wait_for(lambda: Instance.objects.get(pk=inst.id).task_state is None, what="the snapshot report")
        snap = Image.objects.get(pk=image_id)
        assert (snap.status, snap.disk_format) == ("active", "qcow2"), node_worker.log.read_text()[-3000:]
        assert snap.size and snap.checksum and snap.os_hash_value

        compute.destroy.apply_async(kwargs={"instance_id": inst.id, "request_id": "req-nodb-2",
                                            "spec": node_spec(inst.id, "destroy")}, queue=node_worker.queue)
        wait_for(lambda: Instance.objects.get(pk=inst.id).deleted, what="the destroy report")
        assert not layout_dir.exists() and (node_worker.cache / image.id).is_file()
        log = node_worker.log.read_text(errors="replace")
        assert "spawn of" not in log and "destroy of" not in log, log[-3000:]  # no failure on the node
