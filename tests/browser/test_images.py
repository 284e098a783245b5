"""The images panel in a real browser: upload a file with the progress bar, see it listed as
active, edit it, delete it."""
from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import signed_in

pytestmark = pytest.mark.browser


def test_upload_with_progress_list_edit_delete(live_cloud: Any, new_page: Callable[[], Page], tmp_path) -> None:
    page = signed_in(new_page(), live_cloud, "demo", live_cloud.demo_password)
    page.click("nav >> text=Images")
    expect(page).to_have_url(f"{live_cloud.url}/dashboard/images/")
    name = f"web-{secrets.token_hex(3)}"
    path = tmp_path / "disk.raw"
    path.write_bytes(os.urandom(24 * 1024 * 1024))

    page.fill("#id_name", name)
    page.select_option("#id_disk_format", "raw")
    page.select_option("#id_visibility", "private")
    expect(page.locator("#id_visibility option[value=public]")).to_have_count(0)  # members do not publicize
    page.set_input_files("#image-file", str(path))
    page.click("#upload-submit")
    expect(page.locator("#upload-status")).to_have_attribute("data-done", "active", timeout=60_000)
    expect(page.locator("#upload-progress")).to_have_js_property("value", 100)
    assert int(page.locator("#upload-progress").get_attribute("data-events") or 0) >= 1
    expect(page.locator("#upload-text")).to_contain_text("25165824 bytes")
    row = page.locator(f'#images-table tr[data-name="{name}"]')
    expect(row).to_contain_text("active")
    expect(row).to_contain_text("24.0")  # MB

    # the same image seen through the API, with its data
    conn = live_cloud.sdk(user="demo", project="demo")
    image = conn.image.find_image(name)
    assert image.status == "active" and image.size == 24 * 1024 * 1024

    row.locator("text=Edit").click()
    page.fill("#id_name", name + "-renamed")
    page.fill("#id_min_disk", "2")
    page.click("#form-submit")
    expect(page.locator(".alert-success")).to_contain_text(f"Saved image {name}-renamed")
    renamed = page.locator(f'#images-table tr[data-name="{name}-renamed"]')
    expect(renamed).to_be_visible()
    assert conn.image.get_image(image.id).min_disk == 2

    renamed.locator("button[title=Delete]").click()  # the confirm dialog is accepted by the fixture
    expect(page.locator(".alert-success")).to_contain_text(f"Deleted image {name}-renamed")
    expect(page.locator(f'#images-table tr[data-name="{name}-renamed"]')).to_have_count(0)
    assert conn.image.find_image(image.id) is None
