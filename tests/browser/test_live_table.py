"""The live table (apps/dashboard/tables.py, static/dashboard/table.js) in a real browser on a live
cloud with real compute and storage nodes: demo selects ten instances, and then ten volumes, and
deletes them with one bulk action (one request per row, each row's outcome shown, the rows going as
the nodes finish); and a change made while the page's socket is down shows once it reconnects (the
resync on every connection), the socket being dropped in the middle of a volume's extension."""
from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, WebSocketRoute, expect

from tests.browser.conftest import image_and_network, signed_in

pytestmark = pytest.mark.browser

WAIT = 90_000


def _wait(check: Callable[[], bool], what: str, timeout: float = WAIT / 1000) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def _bulk_delete(page: Page, table: str, names: list[str], *, requested: int) -> None:
    """Select every row of the page, press the bar's Delete (the question names the rows; the
    dialog is accepted) and wait for the answer of each row."""
    questions: list[str] = []
    page.on("dialog", lambda dialog: questions.append(dialog.message))
    page.check(f"#{table}-table input[data-select-all]")
    expect(page.locator(f"#{table}-bulk [data-bulk-count]")).to_have_text(f"{len(names)} selected")
    page.click(f'#{table}-bulk [data-bulk-action="delete"]')
    status = page.locator(f"#{table}-bulk [data-bulk-status]")
    expect(status).to_contain_text(f"{requested} of {len(names)} requested", timeout=WAIT)
    assert questions and all(name in questions[-1] for name in names), questions


def test_bulk_delete_ten_instances(live_cloud: Any, compute_nodes: list, new_page: Callable[[], Page],
                                   tmp_path: Any) -> None:
    """Eleven instances, one of them locked: the bulk delete requests ten deletions, the locked row says
    why it was refused and stays, the ten rows go as their nodes destroy them."""
    tag = secrets.token_hex(3)
    admin = live_cloud.sdk()
    admin.set_compute_quotas("demo", instances=11)
    conn = live_cloud.sdk(user="demo", project="demo")
    image, network = image_and_network(conn, tag, tmp_path, "10.91.0.0/24")
    flavor = conn.compute.find_flavor("m1.tiny")
    names = [f"bulk-{tag}-{i}" for i in range(11)]
    servers = [conn.compute.create_server(name=name, image_id=image.id, flavor_id=flavor.id,
                                          networks=[{"uuid": network.id}]) for name in names]
    try:
        for server in servers:
            conn.compute.wait_for_server(server, status="ACTIVE", wait=WAIT // 1000)
        conn.compute.lock_server(servers[-1])
        page = signed_in(new_page(), live_cloud, "demo", live_cloud.demo_password)
        page.goto(f"{live_cloud.url}/dashboard/compute/instances/?q=bulk-{tag}")
        expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live")
        expect(page.locator("#instances-table tbody tr[data-id]")).to_have_count(11)
        page.evaluate("window.__notReloaded = true")

        _bulk_delete(page, "instances", names, requested=10)
        status = page.locator("#instances-bulk [data-bulk-status]")
        expect(status).to_contain_text("1 refused")
        locked = page.locator(f'#instances-table tr[data-name="{names[-1]}"]')
        expect(locked.locator('.row-outcome[data-outcome="failed"]')).to_contain_text("is locked")
        expect(page.locator("#instances-table tbody tr[data-id]")).to_have_count(1, timeout=WAIT)
        expect(status).to_contain_text("10 gone")
        expect(locked.locator('.row-outcome[data-outcome="failed"]')).to_contain_text("is locked")
        assert page.evaluate("window.__notReloaded === true")
        _wait(lambda: [s.name for s in conn.compute.servers() if s.name in names] == [names[-1]], "the servers to go")
    finally:
        conn.compute.unlock_server(servers[-1])
        for server in conn.compute.servers():
            if server.name in names:
                conn.compute.delete_server(server)
                conn.compute.wait_for_delete(server, wait=WAIT // 1000)
        conn.network.delete_network(network)
        conn.delete_image(image.id)
        admin.delete_compute_quotas("demo")


def test_bulk_delete_ten_volumes(live_cloud: Any, storage_node: Any, new_page: Callable[[], Page]) -> None:
    tag = secrets.token_hex(3)
    conn = live_cloud.sdk(user="demo", project="demo")
    names = [f"bulkvol-{tag}-{i}" for i in range(10)]
    volumes = [conn.block_storage.create_volume(name=name, size=1) for name in names]
    try:
        for volume in volumes:
            conn.block_storage.wait_for_status(volume, "available", wait=WAIT // 1000)
        page = signed_in(new_page(), live_cloud, "demo", live_cloud.demo_password)
        page.goto(f"{live_cloud.url}/dashboard/volumes/")
        page.fill("#volumes-filter", f"bulkvol-{tag}")  # the server filters (Cinder's name~)
        expect(page.locator("#volumes-table tbody tr[data-id]")).to_have_count(10)
        expect(page).to_have_url(re.compile(f"q=bulkvol-{tag}"))
        expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live")
        page.evaluate("window.__notReloaded = true")

        _bulk_delete(page, "volumes", names, requested=10)
        expect(page.locator("#volumes-table tbody tr[data-id]")).to_have_count(0, timeout=WAIT)
        expect(page.locator("#volumes-bulk [data-bulk-status]")).to_contain_text("10 gone")
        assert page.evaluate("window.__notReloaded === true")
        _wait(lambda: not [v for v in conn.block_storage.volumes() if v.name in names], "the volumes to go")
    finally:
        for volume in conn.block_storage.volumes():
            if volume.name in names:
                conn.block_storage.delete_volume(volume)


def test_a_change_made_while_the_socket_is_down_shows_after_it_reconnects(
        live_cloud: Any, storage_node: Any, new_page: Callable[[], Page]) -> None:
    tag = secrets.token_hex(3)
    conn = live_cloud.sdk(user="demo", project="demo")
    name = f"resync-{tag}"
    volume = conn.block_storage.create_volume(name=name, size=1)
    conn.block_storage.wait_for_status(volume, "available", wait=WAIT // 1000)
    online = {"yes": True}
    held: list[WebSocketRoute] = []

    def socket(route: WebSocketRoute) -> None:
        """The page's live socket, through to the server while online; held open unanswered (no
        hello: the page stays "connecting") while offline."""
        held.append(route)
        if online["yes"]:
            route.connect_to_server()

    try:
        page = new_page()
        page.route_web_socket("**/ws/live/", socket)
        signed_in(page, live_cloud, "demo", live_cloud.demo_password)
        page.goto(f"{live_cloud.url}/dashboard/volumes/")
        expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live")
        row = page.locator(f'#volumes-table tr[data-name="{name}"]')
        expect(row).to_have_attribute("data-status", "available")
        expect(row).to_contain_text("1 GiB")
        page.evaluate("window.__notReloaded = true")

        # drop the socket; the page reconnects into a socket that never says hello
        online["yes"] = False
        connections = len(held)
        held[-1].close()
        expect(page.locator("#live-indicator")).to_have_attribute("data-state", "connecting")
        for _ in range(100):  # playwright runs the route's handler while the page is waited on
            if len(held) > connections:
                break
            page.wait_for_timeout(200)
        assert len(held) > connections, "the page did not reconnect"
        resyncs = page.evaluate("window.StratusResyncs")

        # the change happens entirely while the page hears nothing
        conn.block_storage.extend_volume(volume, 2)
        _wait(lambda: (lambda v: v.status == "available" and v.size == 2)(conn.block_storage.get_volume(volume.id)),
              "the extension to finish")
        page.wait_for_timeout(1500)
        expect(row).to_contain_text("1 GiB")  # nothing told the page

        # back online: the held socket closes, the next one joins, the page catches up
        online["yes"] = True
        held[-1].close()
        expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live", timeout=20_000)
        expect(row).to_contain_text("2 GiB")
        expect(row).to_have_attribute("data-status", "available")
        assert page.evaluate("window.StratusResyncs") == resyncs + 1
        assert page.evaluate("window.__notReloaded === true")
    finally:
        conn.block_storage.delete_volume(volume)
        _wait(lambda: conn.block_storage.find_volume(name) is None, "the volume to go")
