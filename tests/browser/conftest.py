"""Headless Chromium (Debian's) driven by playwright against the live_cloud server."""
from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

expect.set_options(timeout=10_000)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser: Browser) -> Iterator[Callable[[], Page]]:
    """Pages in fresh contexts (each one its own cookie jar, so its own session)."""
    contexts = []

    def make() -> Page:
        context = browser.new_context(viewport={"width": 1360, "height": 860})
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.on("dialog", lambda dialog: dialog.accept())
        return page

    yield make
    for context in contexts:
        context.close()


def login(page: Page, base_url: str, user: str, password: str, domain: str = "Default") -> None:
    page.goto(f"{base_url}/dashboard/login")
    page.fill("#id_domain", domain)
    page.fill("#id_username", user)
    page.fill("#id_password", password)
    page.click("#login-submit")


def signed_in(page: Page, cloud: Any, user: str, password: str) -> Page:
    login(page, cloud.url, user, password)
    expect(page.locator("#current-project")).to_be_visible()
    return page


def image_and_network(conn: Any, tag: str, tmp_path: Path, cidr: str) -> tuple[Any, Any]:
    """Through the SDK connection ``conn``: a tiny blank qcow2 image ``img-<tag>`` and a network
    ``net-<tag>`` with a subnet ``sub-<tag>`` on ``cidr`` (what a server needs to boot)."""
    disk = tmp_path / "tiny.qcow2"
    subprocess.run(["qemu-img", "create", "-f", "qcow2", str(disk), "64M"], check=True, capture_output=True)
    image = conn.create_image(f"img-{tag}", filename=str(disk), disk_format="qcow2", container_format="bare",
                              wait=True)
    network = conn.network.create_network(name=f"net-{tag}")
    conn.network.create_subnet(network_id=network.id, cidr=cidr, ip_version=4, name=f"sub-{tag}")
    return image, network
