"""Key pair download in a real browser on the live cloud: demo creates a key pair in the Key Pairs
panel, downloads its private key as <name>.pem (offered this once: the page is not cached and a new
visit does not show it), the file is the private half of the public key the Nova API reports, and the
key pair is deleted from its row."""
from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from playwright.sync_api import Page, expect

from tests.browser.conftest import signed_in

pytestmark = pytest.mark.browser


def _public_half(pem: bytes) -> str:
    key = serialization.load_pem_private_key(pem, password=None)
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).decode()


def test_key_pair_download(live_cloud: Any, new_page: Callable[[], Page], tmp_path: Any) -> None:
    name = f"kp-{secrets.token_hex(3)}"
    conn = live_cloud.sdk(user="demo", project="demo")
    try:
        page = signed_in(new_page(), live_cloud, "demo", live_cloud.demo_password)
        page.click("nav >> text=Key Pairs")
        expect(page).to_have_url(f"{live_cloud.url}/dashboard/compute/keypairs/")
        page.fill("#id_name", name)
        with page.expect_response(lambda r: r.request.method == "POST") as posted:
            page.click("#keypair-submit")
        assert posted.value.headers["cache-control"] == "no-store"
        expect(page.locator("#private-key")).to_contain_text(f"Private key of {name}")
        with page.expect_download() as info:
            page.click("#private-key-download")
        download = info.value
        assert download.suggested_filename == f"{name}.pem"
        target = tmp_path / download.suggested_filename
        download.save_as(target)
        pem = target.read_bytes()
        assert pem.startswith(b"-----BEGIN ") and b"PRIVATE KEY-----" in pem
        assert pem.decode().strip() == page.locator("#private-key-text").inner_text().strip()

        keypair = conn.compute.get_keypair(name)  # the API has the public half, never the private one
        assert _public_half(pem).split()[:2] == keypair.public_key.split()[:2]
        assert not getattr(keypair, "private_key", None)

        page.goto(f"{live_cloud.url}/dashboard/compute/keypairs/")  # offered once: not on a new visit
        row = page.locator(f'#keypairs-table tr[data-name="{name}"]')
        expect(row).to_contain_text(keypair.fingerprint)
        expect(page.locator("#private-key")).to_have_count(0)
        expect(page.locator("#private-key-download")).to_have_count(0)

        row.locator("button[type=submit]").click()  # delete (the confirmation is accepted)
        expect(page.locator(".alert-success")).to_contain_text(f"Key pair {name} deleted")
        expect(page.locator(f'#keypairs-table tr[data-name="{name}"]')).to_have_count(0)
        assert conn.compute.find_keypair(name) is None
    finally:
        if conn.compute.find_keypair(name) is not None:
            conn.compute.delete_keypair(name)


def test_key_pairs_live_filter_and_bulk_delete(live_cloud: Any, new_page: Callable[[], Page]) -> None:
    """The key pair table keyed by name: key pairs made through the API while the page is open show
    (the live events), the filter narrows to them, and a bulk delete of the selection (one with a space
    in its name) asks once naming them all, makes one request per key pair, and the rows go."""
    tag = secrets.token_hex(3)
    names = [f"bulk-{tag}-a", f"bulk-{tag} b", f"bulk-{tag}-c"]
    conn = live_cloud.sdk(user="demo", project="demo")
    try:
        page = signed_in(new_page(), live_cloud, "demo", live_cloud.demo_password)
        page.goto(f"{live_cloud.url}/dashboard/compute/keypairs/")
        page.fill("#keypairs-filter", f"bulk-{tag}")
        expect(page.locator("#keypairs-table .empty-row")).to_contain_text(f"bulk-{tag}")
        page.wait_for_function("() => document.documentElement.dataset.live === 'live'", timeout=20_000)
        for name in names:
            conn.compute.create_keypair(name=name)
        rows = page.locator("#keypairs-table tbody tr[data-id]")
        expect(rows).to_have_count(3, timeout=30_000)
        assert sorted(rows.evaluate_all("rows => rows.map(r => r.dataset.id)")) == sorted(names)

        questions: list[str] = []
        page.on("dialog", lambda dialog: questions.append(dialog.message))
        page.check("#keypairs-table input[data-select-all]")
        expect(page.locator("#keypairs-bulk [data-bulk-count]")).to_have_text("3 selected")
        page.click('#keypairs-bulk [data-bulk-action="delete"]')
        expect(page.locator("#keypairs-bulk [data-bulk-status]")).to_contain_text("3 of 3 requested")
        assert questions and all(name in questions[-1] for name in names), questions
        expect(rows).to_have_count(0, timeout=30_000)
        assert all(conn.compute.find_keypair(name) is None for name in names)
    finally:
        for name in names:
            if conn.compute.find_keypair(name) is not None:
                conn.compute.delete_keypair(name)
