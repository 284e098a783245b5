"""The task log in a real browser on a live cloud with real nodes (two compute nodes on the libvirt test
driver, a storage agent, a network agent that computes its desired state without touching this machine,
STRATUS_NETWORK_APPLY=no): demo keeps its Tasks panel open while a server boots, a volume is made and
attached to it, and sees each task arrive and reach "succeeded" without a reload; a task's page shows
its times; the panel filters by resource and state. The admin's Tasks of every project shows the
network agent's syncs, and a new one arrives live when a network change is made."""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from portal.launcher import without_database
from tests.browser.conftest import image_and_network, signed_in
from tests.conftest import ROOT, _wait_log, live_control_worker

pytestmark = pytest.mark.browser

WAIT = 60_000


@pytest.fixture(scope="module")
def network_agent(live_cloud: Any) -> Iterator[str]:
    """A network agent (``celery worker -Q network.<host>``, workers.network, no database) registered with
    the live cloud through a control worker; with STRATUS_NETWORK_APPLY=no it runs every sync (the state
    the control tier pushes, its reports) without changing this machine."""
    host = f"netnode-{secrets.token_hex(3)}"
    env = without_database(dict(live_cloud.env, STRATUS_NETWORK_APPLY="no", PYTHONUNBUFFERED="1"))
    control = live_control_worker(live_cloud, name="task-log-control")
    control.__enter__()
    env.pop("DJANGO_SETTINGS_MODULE", None)
    log = live_cloud.data_dir / "nodes" / f"network-{host}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", f"network.{host}", "--pool=solo",
             "-n", f"network-{host}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
             "--loglevel=INFO"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        _wait_log(log, f"network agent registered for {host}", proc)
        yield host
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        # Forget the agent: it was the first to register, so it hosts DHCP and routers, and the live
        # cloud's later tests (tempest's router interfaces) need a node that really plugs them.
        admin = live_cloud.sdk(user="admin")
        for agent in [a for a in admin.network.agents() if a.host == host]:
            admin.network.delete_agent(agent)
        control.__exit__(None, None, None)


def task_row(page: Page, task: str, resource_id: str) -> Any:
    return page.locator(f'#tasks-table tr[data-task="{task}"][data-resource-id="{resource_id}"]')


def test_a_boot_a_volume_attach_and_a_network_sync_in_the_task_log(
        live_cloud: Any, compute_nodes: list, storage_node: Any, network_agent: str, new_page: Callable[[], Page],
        tmp_path: Any) -> None:
    tag = secrets.token_hex(3)
    conn = live_cloud.sdk(user="demo", project="demo")
    image, network = image_and_network(conn, tag, tmp_path, "10.87.0.0/24")

    # demo's Tasks panel stays open: everything below arrives over the socket
    page = signed_in(new_page(), live_cloud, "demo", live_cloud.demo_password)
    page.click('nav a[href="/dashboard/tasks/"]')
    expect(page).to_have_url(f"{live_cloud.url}/dashboard/tasks/")
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live")
    page.evaluate("window.__notReloaded = true")

    server = conn.compute.create_server(name=f"vm-{tag}", image_id=image.id,
                                        flavor_id=conn.compute.find_flavor("m1.tiny").id,
                                        networks=[{"uuid": network.id}])
    boot = task_row(page, "workers.compute.spawn", server.id)
    expect(boot).to_have_attribute("data-status", "succeeded", timeout=WAIT)
    expect(boot).to_contain_text("create")
    volume = conn.block_storage.create_volume(size=1, name=f"vol-{tag}")
    made = task_row(page, "workers.storage.create_volume", volume.id)
    expect(made).to_have_attribute("data-status", "succeeded", timeout=WAIT)
    conn.compute.wait_for_server(server, status="ACTIVE", wait=WAIT // 1000)
    conn.block_storage.wait_for_status(volume, status="available", wait=WAIT // 1000)
    conn.compute.create_volume_attachment(server, volume=volume)
    attach = task_row(page, "workers.compute_volumes.attach_volume", server.id)
    expect(attach).to_have_attribute("data-status", "succeeded", timeout=WAIT)
    assert page.evaluate("window.__notReloaded === true")  # all of it live, no reload
    assert conn.block_storage.get_volume(volume.id).status == "in-use"

    # one task's page: what, on which queue, its state and times
    boot.locator("a").first.click()
    facts = page.locator("#task-facts")
    expect(facts).to_contain_text("workers.compute.spawn")
    expect(facts).to_contain_text(server.id)
    expect(facts.locator('[data-role="status"]')).to_have_text("succeeded")

    # the panel filters by resource and by state
    page.goto(f"{live_cloud.url}/dashboard/tasks/")
    page.select_option("#id_resource_type", "volume")
    page.select_option("#id_status", "succeeded")
    page.click("#task-filter-submit")
    expect(made).to_be_visible()
    expect(page.locator("#tasks-table tbody tr[data-id]:not([data-resource-type='volume'])")).to_have_count(0)
    expect(attach).to_have_count(0)

    # the admins' log of every project: the network agent's syncs (no project's work), a new one live
    admin = signed_in(new_page(), live_cloud, "admin", live_cloud.admin_password)
    admin.goto(f"{live_cloud.url}/dashboard/tasks/all?resource_type=network_agent&resource_id={network_agent}")
    push = "workers.network_control.push"  # the control task that sends the node its state
    syncs = admin.locator(f'#tasks-table tr[data-task="{push}"][data-resource-id="{network_agent}"]')
    expect(syncs.first).to_have_attribute("data-status", "succeeded", timeout=WAIT)  # the subnet's, the boot's
    expect(admin.locator("#live-indicator")).to_have_attribute("data-state", "live")
    admin.evaluate("window.__notReloaded = true")
    seen = set(admin.eval_on_selector_all("#tasks-table tr[data-id]", "rows => rows.map(r => r.dataset.id)"))
    net2 = conn.network.create_network(name=f"net2-{tag}")  # a change: every agent syncs
    fresh = admin.locator(f'#tasks-table tr[data-task="{push}"][data-resource-id="{network_agent}"]'
                          + "".join(f':not([data-id="{i}"])' for i in seen))
    expect(fresh.first).to_have_attribute("data-status", "succeeded", timeout=WAIT)
    assert admin.evaluate("window.__notReloaded === true")

    # leave the live cloud as it was: the later tests on it count demo's instances and the nodes' load
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=WAIT // 1000)
    conn.block_storage.wait_for_status(volume, status="available", wait=WAIT // 1000)
    conn.block_storage.delete_volume(volume)
    for each in (net2, network):
        conn.network.delete_network(each)
    conn.delete_image(image.id)
