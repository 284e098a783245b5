"""A real qemu guest's CPU burn shows in cpu_util (issue 14): a guest on a real compute node
(qemu:///system, TCG; ``tests/browser/qemu_guest.qemu_node``) booted with a config drive whose user
data is a shell script that spins for ``BURN_SECONDS`` (the test guest's init starts such a script, as
cloud-init does, ``tests/qemu_support.GUEST_INIT``), then stops; the node's pollster
(workers.telemetry.poll on its queue) is run in rounds and each round stored by a control worker
(workers.telemetry.node_samples), which turns libvirt's cumulative CPU time into cpu_util at ingestion.
With gnocchiclient (demo's token) the instance's cpu_util is read back: clearly busy during the burn,
near idle after it. The instance's cpu_util metric is made by the admin (the pollster's resources are
changed by admins only) on the resource the first round created, on the shipped ``high`` archive
policy (1-second points), so that each round's value shows as a point of its own (the default rule's
``low`` policy would average them into one 5-minute bucket).
Skipped (with the reason) when not root or without qemu/libvirtd."""
from __future__ import annotations

import sys
import time
from typing import Any

import pytest
from celery import Celery

from tests.browser.qemu_guest import QemuNode, booted_guest, qemu_node  # noqa: F401 - the fixture
from tests.conftest import CeleryWorker, Cloud, wait_for
from tests.qemu_support import skip_reason

SKIP = skip_reason()
if SKIP:
    print(f"\n[qemu telemetry test skipped] {SKIP}", file=sys.stderr)

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(bool(SKIP), reason=SKIP or "ok")]

BURN_SECONDS = 40
# the guest's clock is its uptime: spin (shell arithmetic, no fork per turn) until it has run BURN_SECONDS
BURN = f"""#!/bin/sh
echo STRATUS-BURN-START
end=$(( $(cut -d. -f1 /proc/uptime) + {BURN_SECONDS} ))
while [ "$(cut -d. -f1 /proc/uptime)" -lt "$end" ]; do
  i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done
done
echo STRATUS-BURN-END
"""


def test_a_qemu_guest_cpu_burn_shows_in_cpu_util(live_cloud: Cloud, qemu_node: QemuNode,  # noqa: F811
                                                  control_worker: CeleryWorker) -> None:
    from gnocchiclient.v1 import client as gnocchi_client

    cloud, qn = live_cloud, qemu_node
    demo = cloud.sdk(user="demo")
    admin = cloud.sdk()
    gnocchi = gnocchi_client.Client(session=demo.session, adapter_options={"interface": "public",
                                                                          "region_name": "RegionOne"})
    gnocchi_admin = gnocchi_client.Client(session=admin.session, adapter_options={"interface": "public",
                                                                                 "region_name": "RegionOne"})
    made: dict[str, Any] = {}
    celery = Celery("e2e-telemetry-qemu", broker=_broker(), set_as_current=False)
    celery.conf.broker_transport_options = {"global_keyprefix": cloud.env["STRATUS_CELERY_KEYPREFIX"]}

    def logs() -> str:
        node = qn.node.log.read_text(errors="replace")[-2000:] if qn.node.log.exists() else ""
        worker = control_worker.log.read_text(errors="replace")[-2000:]
        return f"{console()[-1500:]}\n--- control worker\n{worker}\n--- node\n{node}"

    def console() -> str:
        return demo.compute.get_server_console_output(made["server"])["output"] or ""

    def cpu_util() -> list[float]:
        return [v for _, _, v in gnocchi.metric.get_measures("cpu_util", resource_id=made["server"], granularity=1)]

    def cpu_samples() -> int:
        """How many cpu samples the instance has (the shipped rule's policy keeps a 5-minute count)."""
        return int(sum(v for _, _, v in gnocchi.metric.get_measures("cpu", resource_id=made["server"],
                                                                     granularity=300, aggregation="count")))

    def poll_round() -> None:
        """One pollster round on the node, waited for until stored (the instance's cpu samples grow)."""
        before = cpu_samples() if "cpu" in made else 0
        celery.send_task("workers.telemetry.poll", kwargs={"host": qn.host}, queue=f"compute.{qn.host}")
        if "cpu" not in made:
            wait_for(lambda: _has_cpu(gnocchi, made["server"]), "the first round stored the instance's cpu",
                     details=logs)
            made["cpu"] = True
        else:
            wait_for(lambda: cpu_samples() > before, "the round stored", details=logs)

    # (the server's telemetry resource stays at the end, ended by the delete: erasing it would erase the
    # project's usage of the day, which os-simple-tenant-usage still counts)
    with booted_guest(cloud, qn, user_data=BURN) as server:
        made["server"] = server.id
        wait_for(lambda: "STRATUS-USER-DATA=started" in console(), "the guest starts its user data", timeout=30,
                 details=logs)
        wait_for(lambda: "STRATUS-BURN-START" in console(), "the burn starts", timeout=30, details=logs)

        # during the burn: three rounds (the first makes the resource; then the admin gives it a 1-second
        # cpu_util metric: the pollster's resources are changed by admins only), each ~2 s apart
        poll_round()
        metric = gnocchi_admin.metric.create(name="cpu_util", resource_id=made["server"],
                                             archive_policy_name="high", unit="%")
        assert metric["archive_policy"]["name"] == "high"
        for _ in range(2):
            time.sleep(2)
            poll_round()
        busy = cpu_util()
        assert "STRATUS-BURN-END" not in console(), "the burn ended before its rounds: raise BURN_SECONDS"
        assert len(busy) >= 1, busy
        # the guest spins one vCPU: a TCG vCPU thread as busy as the host lets it be (2 shared cores)
        assert min(busy) >= 25.0, busy

        # after the burn: two rounds ~3 s apart; the newest point is the idle guest's
        wait_for(lambda: "STRATUS-BURN-END" in console(), "the burn ends", timeout=BURN_SECONDS + 30, details=logs)
        poll_round()
        time.sleep(3)
        poll_round()
        after = cpu_util()
        idle = after[-1]
        assert len(after) > len(busy), after
        assert idle < 15.0 and idle < min(busy) / 3, (busy, after)
        print(f"\ncpu_util of the qemu guest: burning {[round(v, 1) for v in busy]} %, idle {idle:.1f} %")


def _broker() -> str:
    from django.conf import settings

    return settings.CELERY_BROKER_URL


def _has_cpu(gnocchi: Any, server_id: str) -> bool:
    from gnocchiclient import exceptions

    try:
        return "cpu" in gnocchi.resource.get("instance", server_id)["metrics"]
    except exceptions.NotFound:
        return False
