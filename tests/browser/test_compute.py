"""The compute panels in a real browser on a live cloud with two real compute nodes (Celery node
workers, each with its own libvirt test-driver hypervisor): demo launches an instance through the
wizard, sees it become Active in the open list without a reload (the socket's instance events),
opens its page, shuts it off from there and sees Shutoff arrive live, then deletes it from the list
and sees its row go. The admin's panels show the nodes and the instance."""
from __future__ import annotations

import secrets
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import signed_in

pytestmark = pytest.mark.browser

BOOT_TIMEOUT = 60_000


def test_launch_see_active_live_stop_and_delete(live_cloud: Any, compute_nodes: list, new_page: Callable[[], Page],
                                               tmp_path: Any) -> None:
    tag = secrets.token_hex(3)
    image, net, vm = f"img-{tag}", f"net-{tag}", f"vm-{tag}"
    conn = live_cloud.sdk(user="demo", project="demo")
    disk = tmp_path / "tiny.qcow2"
    subprocess.run(["qemu-img", "create", "-f", "qcow2", str(disk), "64M"], check=True, capture_output=True)
    conn.create_image(image, filename=str(disk), disk_format="qcow2", container_format="bare", wait=True)
    network = conn.network.create_network(name=net)
    conn.network.create_subnet(network_id=network.id, cidr="10.88.0.0/24", ip_version=4, name=f"{net}-sub")

    # a second browser keeps the Instances list open the whole time: it must follow by the socket alone
    watcher = signed_in(new_page(), live_cloud, "demo", live_cloud.demo_password)
    watcher.goto(f"{live_cloud.url}/dashboard/compute/instances/")
    expect(watcher.locator("#live-indicator")).to_have_attribute("data-state", "live")
    watcher.evaluate("window.__notReloaded = true")

    page = signed_in(new_page(), live_cloud, "demo", live_cloud.demo_password)
    page.click("nav >> text=Instances")
    expect(page).to_have_url(f"{live_cloud.url}/dashboard/compute/instances/")
    page.click("#launch-instance")

    # the wizard: name, image, flavor (with the quota left), network, default security group
    page.fill("#id_name", vm)
    page.select_option("#id_image", label=f"{image} (qcow2)")
    expect(page.locator("#quota-left")).to_contain_text("instances")
    page.check('#flavor-table tr[data-flavor="m1.tiny"] input[type="radio"]')
    page.check(f'input[name="networks"][value="{network.id}"]')
    page.fill("#id_count", "1")
    page.click("#launch-submit")
    expect(page.locator(".alert-success")).to_contain_text(f"Launched 1 instance: {vm}")
    expect(page).to_have_url(f"{live_cloud.url}/dashboard/compute/instances/")
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live")
    page.evaluate("window.__notReloaded = true")

    row = page.locator(f'#instances-table tr[data-name="{vm}"]')
    expect(row).to_have_attribute("data-status", "ACTIVE", timeout=BOOT_TIMEOUT)
    expect(row).to_contain_text("10.88.0.")
    expect(row).to_contain_text("Running")
    assert page.evaluate("window.__notReloaded === true")  # the page was not reloaded
    watched = watcher.locator(f'#instances-table tr[data-name="{vm}"]')
    expect(watched).to_have_attribute("data-status", "ACTIVE", timeout=BOOT_TIMEOUT)
    assert watcher.evaluate("window.__notReloaded === true")
    assert watcher.evaluate("window.Stratus.received") >= 2  # created (portal), then spawned (the node)
    server = conn.compute.find_server(vm)
    assert conn.compute.get_server(server.id).status == "ACTIVE"

    # its page: overview and action log; shut it off, Shutoff arrives live
    row.locator(f"text={vm}").click()
    expect(page.locator("#instance-status")).to_have_text("ACTIVE")
    expect(page.locator('#actions-table tr[data-action="create"]')).to_be_visible()
    expect(page.locator("#action-start")).to_have_count(0)
    page.click("#console-link")  # the console log, asked from the node through the service
    expect(page.locator("#console-output")).to_be_visible(timeout=15_000)
    expect(page.locator("#console-error")).to_have_count(0)
    page.go_back()
    expect(page.locator("#instance-status")).to_have_text("ACTIVE")
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live")
    received = watcher.evaluate("window.Stratus.received")
    page.click("#action-stop")
    expect(page.locator(".alert-success")).to_contain_text(f"Shutting off instance {vm}.")
    page.evaluate("window.__notReloaded = true")
    expect(page.locator("#instance-status")).to_have_text("SHUTOFF", timeout=BOOT_TIMEOUT)
    expect(page.locator("#instance-power")).to_have_text("Shutdown")
    expect(page.locator("#action-start")).to_be_visible()
    expect(page.locator("#action-stop")).to_have_count(0)
    expect(page.locator('#actions-table tr[data-action="stop"]')).to_be_visible()
    assert page.evaluate("window.__notReloaded === true")
    expect(watched).to_have_attribute("data-status", "SHUTOFF", timeout=BOOT_TIMEOUT)
    expect(watched.locator('[data-role="power"]')).to_have_text("Shutdown")
    after = watcher.evaluate("[window.Stratus.received, window.StratusResyncs]")
    assert after[0] >= received + 2, (received, after)  # powering-off, then the node's report
    assert watcher.evaluate("window.__notReloaded === true")

    # the admin sees the nodes and the instance in every project's list
    admin = signed_in(new_page(), live_cloud, "admin", live_cloud.admin_password)
    admin.click("nav >> text=Hypervisors")
    for node in compute_nodes:
        expect(admin.locator(f'#hypervisors-table tr[data-host="{node.host}"] [data-role="state"]')).to_have_text("up")
    admin.click("nav >> text=All Instances")
    expect(admin.locator(f'#instances-table tr[data-name="{vm}"]')).to_have_attribute("data-status", "SHUTOFF")

    # delete from the list: the row goes once the node has destroyed it
    page.click("nav >> text=Instances")
    page.evaluate("window.__notReloaded = true")
    row = page.locator(f'#instances-table tr[data-name="{vm}"]')
    row.locator('button[data-action="delete"]').click()
    expect(page.locator(".alert-success")).to_contain_text(f"Deletion of instance {vm} requested")
    expect(page.locator(f'#instances-table tr[data-name="{vm}"]')).to_have_count(0, timeout=BOOT_TIMEOUT)
    expect(watched).to_have_count(0)
    assert watcher.evaluate("window.__notReloaded === true")
    assert conn.compute.find_server(vm) is None
    conn.network.delete_network(network)
    conn.delete_image(image)
