"""Samples flow from the compute nodes: a server booted with the CLI on a real compute node (a Celery
worker with its libvirt test hypervisor), that node's pollster (workers.telemetry.poll on its queue)
run twice, its rounds stored by a control worker (workers.telemetry.node_samples), and the server's
meters and cpu_util read back with gnocchiclient's `openstack metric ...`."""
from __future__ import annotations

import json
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from tests.conftest import CeleryWorker

pytestmark = pytest.mark.e2e


def _os(cloud: Any, *args: str) -> Any:
    result = cloud.openstack(*args, "-f", "json", user="demo", check=False)
    assert result.returncode == 0, (args, result.stderr[-2000:])
    return json.loads(result.stdout)


def test_node_pollster_to_metric_cli(live_cloud, compute_nodes, control_worker: CeleryWorker, tmp_path: Path) -> None:
    from django.conf import settings

    cloud = live_cloud
    tag = secrets.token_hex(3)
    disk = tmp_path / "tiny.qcow2"
    subprocess.run(["qemu-img", "create", "-f", "qcow2", str(disk), "64M"], check=True, capture_output=True)
    cloud.openstack("image", "create", "--file", str(disk), "--disk-format", "qcow2", "--container-format", "bare",
                    f"img-{tag}", user="demo")
    cloud.openstack("network", "create", f"net-{tag}", user="demo")
    cloud.openstack("subnet", "create", "--network", f"net-{tag}", "--subnet-range", "10.31.0.0/24", f"sub-{tag}",
                    user="demo")
    server = _os(cloud, "server", "create", "--image", f"img-{tag}", "--flavor", "m1.tiny", "--network",
                 f"net-{tag}", "--wait", f"vm-{tag}")
    assert server["status"] == "ACTIVE", server

    client = Celery("e2e-telemetry", broker=settings.CELERY_BROKER_URL, set_as_current=False)
    client.conf.broker_transport_options = {"global_keyprefix": cloud.env["STRATUS_CELERY_KEYPREFIX"]}
    hosts = [n.host for n in compute_nodes]  # each reports only the instances placed on it
    uuid = server["id"]

    def poll_and_wait(expect: str) -> dict:
        for h in hosts:
            client.send_task("workers.telemetry.poll", kwargs={"host": h}, queue=f"compute.{h}")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            shown = cloud.openstack("metric", "resource", "show", "--type", "instance", uuid, "-f", "json",
                                    user="demo", check=False)
            if shown.returncode == 0 and expect in json.loads(shown.stdout)["metrics"]:
                return json.loads(shown.stdout)
            time.sleep(1)
        raise AssertionError(f"no {expect} for {uuid}: {control_worker.log.read_text()[-3000:]}")

    first = poll_and_wait("cpu")
    assert first["display_name"] == f"vm-{tag}" and first["flavor_id"]
    time.sleep(1.5)
    second = poll_and_wait("cpu_util")
    assert {"cpu", "vcpus", "memory", "cpu_util"} <= set(second["metrics"])
    measures = _os(cloud, "metric", "measures", "show", "--resource-id", uuid, "cpu_util", "--granularity", "300")
    # the test hypervisor's CPU time is its clock (one vCPU busy all the time): about 100 %
    assert len(measures) == 1 and 90.0 <= measures[0]["value"] <= 101.0, measures
    disks = _os(cloud, "metric", "resource", "list", "--type", "instance_disk")
    assert any(d["instance_id"] == uuid for d in disks)
