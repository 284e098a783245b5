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
