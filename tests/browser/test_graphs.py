"""The instance page's live graphs in a real browser on a live cloud with two real compute nodes: a member
boots a server (SDK), opens its page, and each round of its node's pollster (workers.telemetry.poll on
the node's queue, stored by a control worker through workers.telemetry.node_samples) adds points to the
graphs over the socket, without a reload; read again, the page draws the rollups; the admin's capacity
page charts each node's vCPUs, RAM and disk, used against total."""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from playwright.sync_api import Page, expect

from tests.browser.conftest import image_and_network, signed_in
from tests.conftest import CeleryWorker

pytestmark = pytest.mark.browser


def _points(page: Page, chart: str) -> int:
    return int(page.locator(f'#instance-graphs canvas[data-chart="{chart}"]').get_attribute("data-points") or 0)


def _wait_points(page: Page, chart: str, at_least: int, log: Path, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _points(page, chart)
        if found >= at_least:
            return found
        time.sleep(0.25)
    raise AssertionError(f"{chart}: {_points(page, chart)} points, wanted {at_least}\n{log.read_text()[-3000:]}")


def test_graphs_move_live_and_capacity(live_cloud: Any, compute_nodes: list, control_worker: CeleryWorker,
                                       new_page: Callable[[], Page], tmp_path: Path) -> None:
    from django.conf import settings

    tag = secrets.token_hex(3)
    # a project of its own: the Usage page's figures are the project's, and the session's other tests
    # boot servers in demo (with other flavors) the same day
    member = f"graphs-{tag}"
    password = live_cloud.new_member(member)
    conn = live_cloud.sdk(user=member, project=member, password=password)
    image, network = image_and_network(conn, tag, tmp_path, "10.89.0.0/24")
    flavor = conn.compute.find_flavor("m1.tiny", ignore_missing=False)
    server = conn.compute.create_server(name=f"vm-{tag}", image_id=image.id, flavor_id=flavor.id,
                                        networks=[{"uuid": network.id}])
    server = conn.compute.wait_for_server(server, status="ACTIVE", wait=120)
    assert server.status == "ACTIVE"
    client = Celery("browser-graphs", broker=settings.CELERY_BROKER_URL, set_as_current=False)
    client.conf.broker_transport_options = {"global_keyprefix": live_cloud.env["STRATUS_CELERY_KEYPREFIX"]}

    def pollster_round() -> None:
        for node in compute_nodes:  # each node reports only the instances placed on it
            client.send_task("workers.telemetry.poll", kwargs={"host": node.host}, queue=node.queue)

    page = signed_in(new_page(), live_cloud, member, password)
    page.goto(f"{live_cloud.url}/dashboard/compute/instances/{server.id}/")
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live")
    expect(page.locator("#instance-graphs")).to_have_attribute("data-loaded", re.compile(r"^[1-9]"))
    for chart in ("cpu", "memory", "disk", "network"):
        assert _points(page, chart) == 0  # nothing measured yet
    page.evaluate("window.__notReloaded = true")

    # round 1: the counters need a second reading to become rates (and the test hypervisor's domains
    # report no memory statistics, so memory.usage stays empty here: tests/telemetry/test_graphs.py has it)
    pollster_round()
    time.sleep(2)
    assert _points(page, "cpu") == 0
    # round 2 (a second later): the rates arrive, one point on each line
    pollster_round()
    _wait_points(page, "cpu", 1, control_worker.log)
    _wait_points(page, "disk", 2, control_worker.log)  # read and write
    _wait_points(page, "network", 2, control_worker.log)  # in and out
    # round 3: every chart moves again
    time.sleep(1.2)
    pollster_round()
    _wait_points(page, "cpu", 2, control_worker.log)
    _wait_points(page, "disk", 4, control_worker.log)
    _wait_points(page, "network", 4, control_worker.log)
    assert page.evaluate("window.__notReloaded === true")  # all of it over the socket
    assert page.evaluate("Number(document.getElementById('instance-graphs').dataset.live)") == 2
    # the live CPU point: the test hypervisor's CPU time is its clock (one vCPU of one busy): about 100 %
    cpu = page.evaluate("Chart.getChart(document.querySelector('canvas[data-chart=\"cpu\"]')).data.datasets[0].data")
    assert 80.0 <= cpu[-1]["y"] <= 101.0, cpu

    # read again: the rollups (one 5-minute bucket, or two across a boundary), then another period
    # (the page loads its series once, and again when its socket connects: what came in between was not
    # sent; so the count of loads is 1 or 2 here, and what a load showed is told by data-loaded-window)
    page.reload()
    expect(page.locator("#instance-graphs")).to_have_attribute("data-loaded", re.compile(r"^[1-9]"))
    expect(page.locator("#instance-graphs")).to_have_attribute("data-loaded-window", "hour")
    assert 1 <= _points(page, "cpu") <= 2 and 2 <= _points(page, "disk") <= 4
    page.click('#instance-graphs button[data-window="week"]')
    expect(page.locator('#instance-graphs button[data-window="week"]')).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#instance-graphs")).to_have_attribute("data-loaded-window", "week")
    assert _points(page, "cpu") == 1  # one 30-minute step of the week
    # an instance the caller may not see (unknown, or another project's) is a 404, as its page is
    other = page.request.get(f"{live_cloud.url}/dashboard/telemetry/instances/{secrets.token_hex(16)}/graphs")
    assert other.status == 404

    # the admin: each node's capacity, recorded on its pollster rounds
    admin = signed_in(new_page(), live_cloud, "admin", live_cloud.admin_password)
    admin.click("nav >> text=Capacity")
    expect(admin).to_have_url(f"{live_cloud.url}/dashboard/telemetry/admin/capacity/")
    for node in compute_nodes:
        canvas = admin.locator(f'canvas[data-host="{node.host}"][data-chart="vcpus"]')
        expect(canvas).not_to_have_attribute("data-points", "0")  # drawn (the page's script has run)
        assert int(canvas.get_attribute("data-points") or 0) >= 2  # used and total: a bucket or two each
    host = live_cloud.sdk().compute.get_server(server.id).compute_host
    totals = admin.evaluate(
        "(h) => Chart.getChart(document.querySelector(`canvas[data-host='${h}'][data-chart='vcpus']`))"
        ".data.datasets.map(d => d.data[d.data.length - 1].y)", host)
    # 8 vCPUs each; the server's m1.tiny claims one: the bucket's mean is above 0 (below 1 when the session's
    # earlier tests polled the node in the same bucket while it ran nothing)
    assert totals[1] == 8.0 and totals[0] > 0.0, totals
    member_capacity = page.request.get(f"{live_cloud.url}/dashboard/telemetry/admin/capacity/")
    assert member_capacity.status == 403

    # the Alarms panel: a threshold alarm on the server's cpu_util, made from the form; the evaluator
    # (the beat's task, run here once) moves it to "alarm" and the open list shows it without a reload
    page.click("#graphs-alarm")  # from the instance's graphs: the form names the instance already
    expect(page.locator("#id_resource_id")).to_have_value(server.id)
    page.fill("#id_name", f"cpu-{tag}")
    page.fill("#id_threshold", "50")
    page.fill("#id_granularity", "300")
    page.fill("#id_evaluation_periods", "1")
    page.click("#alarm-submit")
    expect(page.locator(".alert-success")).to_contain_text(f"Alarm cpu-{tag} created.")
    row = page.locator(f'#alarms-table tr[data-name="cpu-{tag}"]')
    expect(row.locator('[data-role="state"]')).to_have_text("insufficient data")
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live")
    page.evaluate("window.__notReloaded = true")
    client.send_task("workers.telemetry.evaluate_alarms", queue=live_cloud.env["STRATUS_CONTROL_QUEUE"])
    expect(row.locator('[data-role="state"]')).to_have_text("alarm", timeout=30_000)
    expect(row).to_have_attribute("data-state", "alarm")
    assert page.evaluate("window.__notReloaded === true")
    row.locator(f"text=cpu-{tag}").click()
    expect(page.locator("#alarm-state")).to_have_text("alarm")
    expect(page.locator('#alarm-history-table tr[data-type="state transition"]')).to_have_count(1)
    expect(page.locator('#alarm-history-table tr[data-type="creation"]')).to_have_count(1)

    # the Usage page: once the server is deleted its usage no longer grows; the page's figures, its
    # charts and its CSV say what os-simple-tenant-usage (`openstack usage show`) says for the day
    conn.compute.delete_server(server.id)
    conn.compute.wait_for_delete(server, wait=60)
    today = dt.datetime.now(dt.UTC).date()
    midnight = dt.datetime(today.year, today.month, today.day)
    exact = live_cloud.sdk().compute.get_usage(server.project_id, start=midnight, end=midnight + dt.timedelta(days=1))
    assert exact.total_hours > 0
    page.click("nav >> text=Usage")
    page.fill("#id_start", today.isoformat())
    page.fill("#id_end", today.isoformat())
    page.click("#usage-show")
    expect(page.locator("body")).to_have_attribute("data-charts-drawn", "1")
    wanted = {"instance_hours": exact.total_hours, "vcpu_hours": exact.total_vcpus_usage,
              "memory_mb_hours": exact.total_memory_mb_usage, "disk_gb_hours": exact.total_local_gb_usage}
    for key, value in wanted.items():
        expect(page.locator(f'#usage-figures dd[data-measure="{key}"]')).to_have_text(f"{value:.4f}")
    bars = page.evaluate("""() => Object.fromEntries(['flavors', 'compute'].map(k => [k,
        Chart.getChart(document.querySelector(`canvas[data-usage-chart='${k}']`)).data]))""")
    assert bars["flavors"]["labels"] == ["m1.tiny"]
    assert bars["flavors"]["datasets"][0]["data"] == [pytest.approx(exact.total_hours, abs=5e-5)]
    assert bars["compute"]["datasets"][0]["data"] == [pytest.approx(exact.total_hours, abs=5e-5),
                                                      pytest.approx(exact.total_vcpus_usage, abs=5e-5)]
    assert int(page.locator('canvas[data-usage-chart="compute"]').get_attribute("data-points") or 0) == 2
    with page.expect_download() as info:
        page.click("#usage-csv")
    rows = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text())))
    assert len(rows) == 1 and rows[0]["project_id"] == server.project_id
    for key, value in wanted.items():
        assert rows[0][key] == f"{value:.4f}", (key, rows[0])
