"""The volume panels in a real browser on a live cloud with real compute nodes (libvirt test driver)
and a real storage agent: demo creates a volume in the Volumes panel and sees it become available in
the open table without a reload, attaches it to a running instance from the panel and sees it In-use
live (named after the instance, on its device), finds it on the instance page's Volumes section,
detaches it from there and sees the section empty itself live, then deletes it from the panel and
sees its row go."""
from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import image_and_network, signed_in

pytestmark = pytest.mark.browser

WAIT = 60_000


def test_create_attach_in_use_live_detach_delete(live_cloud: Any, compute_nodes: list, storage_node: Any,
                                                  new_page: Callable[[], Page], tmp_path: Any) -> None:
    tag = secrets.token_hex(3)
    vm, vol = f"vm-{tag}", f"vol-{tag}"
    conn = live_cloud.sdk(user="demo", project="demo")
    image, network = image_and_network(conn, tag, tmp_path, "10.89.0.0/24")
    flavor = conn.compute.find_flavor("m1.tiny")
    server = conn.compute.create_server(name=vm, image_id=image.id, flavor_id=flavor.id,
                                        networks=[{"uuid": network.id}])

    # the Volumes panel: create a blank volume; it becomes available in the open table
    page = signed_in(new_page(), live_cloud, "demo", live_cloud.demo_password)
    page.click('nav a[href="/dashboard/volumes/"]')
    expect(page).to_have_url(f"{live_cloud.url}/dashboard/volumes/")
    page.fill("#id_name", vol)
    page.fill("#id_size", "1")
    page.click("#create-submit")
    expect(page.locator(".alert-success")).to_contain_text(f"Creating volume {vol}")
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live")
    page.evaluate("window.__notReloaded = true")
    row = page.locator(f'#volumes-table tr[data-name="{vol}"]')
    expect(row).to_have_attribute("data-status", "available", timeout=WAIT)
    conn.compute.wait_for_server(server, status="ACTIVE", wait=WAIT // 1000)

    # attach it to the running instance from the panel; In-use arrives live with the instance's name
    row.locator('[data-action="attach"]').click()
    page.select_option("#id_server", label=vm)
    page.click("#form-submit")
    expect(page.locator(".alert-success")).to_contain_text(f"Attaching volume {vol} to instance {vm} on /dev/vdb")
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live")
    page.evaluate("window.__notReloaded = true")
    expect(row).to_have_attribute("data-status", "in-use", timeout=WAIT)
    expect(row.locator('[data-role="attachments"]')).to_contain_text(f"{vm} on /dev/vdb")
    assert page.evaluate("window.__notReloaded === true")
    assert conn.block_storage.get_volume(conn.block_storage.find_volume(vol).id).status == "in-use"

    # the instance page lists it; detach there and the section empties itself live
    row.locator(f"text={vm}").click()
    expect(page.locator("#instance-status")).to_have_text("ACTIVE")
    attached = page.locator("#instance-volumes-table tr[data-device='/dev/vdb']")
    expect(attached).to_contain_text(vol)
    expect(attached).to_contain_text("1 GiB")
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live")
    attached.locator('[data-action="detach"]').click()
    expect(page.locator(".alert-success")).to_contain_text(f"Detaching volume {vol} from instance {vm}")
    page.evaluate("window.__notReloaded = true")
    expect(page.locator("#instance-volumes-table")).to_contain_text("No volumes attached.", timeout=WAIT)
    expect(page.locator("#attach-volume-form option", has_text=vol)).to_have_count(1)
    assert page.evaluate("window.__notReloaded === true")

    # back in the panel: available again, then deleted; the row goes
    page.click('nav a[href="/dashboard/volumes/"]')
    row = page.locator(f'#volumes-table tr[data-name="{vol}"]')
    expect(row).to_have_attribute("data-status", "available")
    page.evaluate("window.__notReloaded = true")
    row.locator('[data-action="delete"]').click()
    expect(page.locator(".alert-success")).to_contain_text(f"Deleting volume {vol}")
    expect(page.locator(f'#volumes-table tr[data-name="{vol}"]')).to_have_count(0, timeout=WAIT)
    assert conn.block_storage.find_volume(vol) is None

    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=WAIT // 1000)
    conn.network.delete_network(network)
    conn.delete_image(image.id)
