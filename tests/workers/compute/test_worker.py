"""A compute node as it runs: a real Celery worker process consuming ``compute.<host>`` with a thread
pool, its own test-driver hypervisor (node XML in tmp), on the test database. The test sends spawn and
destroy as the server services do and watches the rows and the node's files."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.db import connection

from apps.compute.models import ComputeNode, Instance
from tests.conftest import ROOT, _wait_log, database_url
from tests.leftovers import stop
from tests.workers.compute.conftest import add_port, make_instance, needs_tools, network_syncs
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
def node_worker(tmp_path: Path) -> Iterator[NodeWorker]:
    host = f"node-{uuid.uuid4().hex[:8]}"
    tn = hv_node.test_node_xml(tmp_path / f"{host}.xml", host, 8, 16384, disk_gb=100)
    row = ComputeNode.objects.create(host=host, hypervisor_hostname=host, hypervisor_type="test",
                                     libvirt_uri=tn.uri, vcpus=8, memory_mb=16384, local_gb=100)
    instances, cache, log = tmp_path / "instances", tmp_path / "image-cache", tmp_path / "worker.log"
    env = dict(os.environ, DATABASE_URL=database_url(connection.settings_dict["NAME"]), STRATUS_DB_CONN_MAX_AGE="0",
               STRATUS_COMPUTE_HOST=host, LIBVIRT_URI=tn.uri, STRATUS_INSTANCES_PATH=str(instances),
               STRATUS_IMAGE_CACHE_PATH=str(cache), STRATUS_COMPUTE_HEARTBEAT_SECONDS="2")
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
    compute.spawn.apply_async(kwargs={"instance_id": inst.id, "request_id": "req-w1"}, queue=node_worker.queue)
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
    assert {"host": node_worker.host} in network_syncs(node_worker.host)  # plug the tap

    compute.destroy.apply_async(kwargs={"instance_id": inst.id, "request_id": "req-w2"}, queue=node_worker.queue)
    wait_for(lambda: Instance.objects.get(pk=inst.id).deleted, what="the destroy report")
    assert not layout_dir.exists() and (node_worker.cache / image.id).is_file()
    assert compute.sync_power_states.apply_async(kwargs={"host": node_worker.host},
                                                 queue=node_worker.queue).get(timeout=30) == {}


def test_concurrent_spawns_and_a_delete_racing_its_spawn(cloud, image, node_worker: NodeWorker) -> None:
    count = 8
    insts = [make_instance(cloud, node_worker, image, name=f"vm-{i}") for i in range(count)]  # type: ignore[arg-type]
    started = time.monotonic()
    for inst in insts:
        compute.spawn.apply_async(kwargs={"instance_id": inst.id}, queue=node_worker.queue)
    # the last one is deleted while its spawn is on its way: the server services mark it deleting and
    # send destroy right behind the spawn
    racer = insts[-1]
    Instance.objects.filter(pk=racer.id).update(task_state="deleting")
    compute.destroy.apply_async(kwargs={"instance_id": racer.id}, queue=node_worker.queue)
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
