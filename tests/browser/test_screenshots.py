"""Every dashboard panel, as demo and as admin, at 1400x900 and at a phone's width (390x844): no
console error (the favicon included), no page wider than the window, the admin sidebar inside a 900 px
window (scrolling what does not fit), and a screenshot of each written to var/screenshots/ (README.md,
"Screenshots") so that a reviewer can look at them all in one place. Then the pages no sidebar link
reaches, the same way: the launch form, the floating IP form of an instance (demo's, on a test-driver
node), a public and a private flavor's page with extra specs, and the default volume type's page; and the
Object Store's container page, a folder in it and an object's page."""
from __future__ import annotations

import re
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import signed_in

pytestmark = pytest.mark.browser

SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
SIZES = {"desktop": {"width": 1400, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(scope="module")
def shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob("*.png"):
        old.unlink()
    return SHOTS


@pytest.fixture
def page_at(browser: Browser) -> Iterator[Any]:
    contexts = []

    def make(size: str) -> tuple[Page, list[str]]:
        context = browser.new_context(viewport=SIZES[size])
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda msg: errors.append(f"{page.url}: {msg.text}") if msg.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}"))
        page.on("response", lambda r: errors.append(f"{r.url}: HTTP {r.status}") if r.status >= 400 else None)
        return page, errors

    yield make
    for context in contexts:
        context.close()


def _slug(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", path.removeprefix("/dashboard").lower()).strip("-") or "overview"


def _overflow(page: Page) -> int:
    """By how many pixels the page is wider than the window (0: it fits)."""
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


def _visit(page: Page, live_cloud: Any, link: str, shot: Path, problems: list[str], size: str) -> None:
    """Open ``link``: a 200 with its heading and the live socket up, photographed to ``shot``; a page
    wider than the window goes to ``problems``."""
    response = page.goto(f"{live_cloud.url}{link}")
    assert response is not None and response.status == 200, (link, response and response.status)
    expect(page.locator("h1")).to_be_visible()
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live")
    page.screenshot(path=str(shot), full_page=True)
    if (wider := _overflow(page)) > 0:
        problems.append(f"{link} is {wider}px wider than the {size} window")


@pytest.mark.parametrize("size", ["desktop", "phone"])
@pytest.mark.parametrize("user", ["demo", "admin"])
def test_every_panel_renders_cleanly_and_is_photographed(live_cloud: Any, page_at: Any, shots: Path, user: str,
                                                         size: str) -> None:
    page, errors = page_at(size)
    signed_in(page, live_cloud, user, getattr(live_cloud, f"{user}_password"))
    links = page.eval_on_selector_all(".nav a", "links => links.map(a => a.getAttribute('href'))")
    assert "/dashboard/" in links and len(links) >= 8, links
    if user == "admin":
        assert any("/identity/" in link for link in links)
    problems: list[str] = []
    for link in links:
        _visit(page, live_cloud, link, shots / f"{user}-{size}-{_slug(link)}.png", problems, size)
    if size == "desktop":
        page.goto(f"{live_cloud.url}/dashboard/")
        fits = page.evaluate("(() => { const s = document.querySelector('.sidebar');"
                             " return [s.scrollHeight, s.clientHeight]; })()")
        # The sidebar stays inside the window; what does not fit scrolls inside it (the test below).
        assert fits[1] <= SIZES[size]["height"], f"the {user} sidebar is {fits[1]}px tall for {fits[0]}px of links"
    assert not errors, errors
    assert not problems, problems


def test_the_sidebar_scrolls_when_the_window_is_short(live_cloud: Any, page_at: Any) -> None:
    page, errors = page_at("desktop")
    page.set_viewport_size({"width": 1400, "height": 480})
    signed_in(page, live_cloud, "admin", live_cloud.admin_password)
    sidebar = page.locator(".sidebar")
    before = page.locator(".nav a").last.bounding_box()
    assert before is not None and before["y"] > 480  # below the window: the sidebar must scroll to it
    sidebar.hover()
    page.mouse.wheel(0, 2000)
    expect(page.locator(".nav a").last).to_be_in_viewport()
    assert not errors, errors


@pytest.fixture(scope="module")
def unlinked_pages(live_cloud: Any, compute_nodes: list,
                   tmp_path_factory: Any) -> Iterator[dict[str, list[tuple[str, str]]]]:
    """The pages no sidebar link reaches, by user: demo's launch form and the floating IP form of an
    ACTIVE instance of demo's (an image, a network with a subnet, a server on a test-driver node); the
    admin's pages of a public flavor and of a private one with extra specs and a project given access, and
    of the default volume type. All made here are deleted at the end."""
    tag = secrets.token_hex(3)
    demo = live_cloud.sdk(user="demo", project="demo")
    admin = live_cloud.sdk()
    disk = tmp_path_factory.mktemp("shots") / "tiny.qcow2"
    subprocess.run(["qemu-img", "create", "-f", "qcow2", str(disk), "64M"], check=True, capture_output=True)
    image = demo.create_image(f"shot-img-{tag}", filename=str(disk), disk_format="qcow2", container_format="bare",
                              wait=True)
    network = demo.network.create_network(name=f"shot-net-{tag}")
    demo.network.create_subnet(network_id=network.id, cidr="10.77.0.0/24", ip_version=4, name=f"shot-sub-{tag}")
    tiny = admin.compute.find_flavor("m1.tiny")
    private = admin.compute.create_flavor(name=f"shot-private-{tag}", vcpus=2, ram=2048, disk=20, is_public=False)
    admin.compute.create_flavor_extra_specs(private, {"hw:cpu_policy": "dedicated",
                                                      "quota:disk_read_bytes_sec": "10485760",
                                                      "aggregate_instance_extra_specs:storage": "ssd-raid10"})
    admin.compute.flavor_add_tenant_access(private, demo.current_project_id)
    server = demo.compute.create_server(name=f"shot-vm-{tag}", image_id=image.id, flavor_id=tiny.id,
                                        networks=[{"uuid": network.id}])
    try:
        server = demo.compute.wait_for_server(server, status="ACTIVE", failures=["ERROR"], wait=60)
        default_type = next(t for t in admin.block_storage.types() if t.name == "__DEFAULT__")
        yield {"demo": [("launch", "/dashboard/compute/instances/launch"),
                        ("instance-floating-ip", f"/dashboard/compute/instances/{server.id}/floating-ips/associate")],
               "admin": [("flavor-public", f"/dashboard/compute/flavors/{tiny.id}/"),
                         ("flavor-private", f"/dashboard/compute/flavors/{private.id}/"),
                         ("volume-type-default", f"/dashboard/volumes/types/{default_type.id}/")]}
    finally:
        demo.compute.delete_server(server)
        demo.compute.wait_for_delete(server, wait=60)
        demo.network.delete_network(network)
        demo.delete_image(image.id)
        admin.compute.delete_flavor(private)


@pytest.mark.parametrize("size", ["desktop", "phone"])
@pytest.mark.parametrize("user", ["demo", "admin"])
def test_the_pages_behind_the_panels_render_cleanly_and_are_photographed(
        live_cloud: Any, page_at: Any, shots: Path, unlinked_pages: dict[str, list[tuple[str, str]]], user: str,
        size: str) -> None:
    page, errors = page_at(size)
    signed_in(page, live_cloud, user, getattr(live_cloud, f"{user}_password"))
    problems: list[str] = []
    for name, link in unlinked_pages[user]:
        _visit(page, live_cloud, link, shots / f"{user}-{size}-{name}.png", problems, size)
    assert not errors, errors
    assert not problems, problems


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_the_object_store_pages_render_cleanly_and_are_photographed(live_cloud: Any, page_at: Any, shots: Path,
                                                                   size: str) -> None:
    """demo's container page (a folder, objects with long names), a folder in it and an object's page."""
    store = live_cloud.sdk(user="demo", project="demo").object_store
    container = f"shots-{secrets.token_hex(3)}"
    store.create_container(name=container)
    names = ["readme.txt", "photos/2024/holiday-at-the-seaside-with-a-rather-long-file-name.jpg", "photos/cat.jpg"]
    for name in names:
        store.upload_object(container=container, name=name, data=b"x" * 1500)
    try:
        page, errors = page_at(size)
        signed_in(page, live_cloud, "demo", live_cloud.demo_password)
        problems: list[str] = []
        base = f"/dashboard/objects/containers/{container}/"
        for name, link in [("container", base), ("folder", base + "?prefix=photos%2F2024%2F"),
                           ("object", base + "object?object=photos%2Fcat.jpg")]:
            _visit(page, live_cloud, link, shots / f"demo-{size}-objects-{name}.png", problems, size)
        assert not errors, errors
        assert not problems, problems
    finally:
        for name in names:
            store.delete_object(name, container=container)
        store.delete_container(container)
