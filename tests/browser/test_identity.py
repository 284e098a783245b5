"""The admins' identity forms in a real browser on the live cloud (issue 11, item 6): a quota edited in
Identity > Projects > Quotas is what the Nova and Neutron APIs then report for the project."""
from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import signed_in

pytestmark = pytest.mark.browser


def test_admin_quota_edit_seen_by_the_api(live_cloud: Any, new_page: Callable[[], Page]) -> None:
    conn = live_cloud.sdk()
    project = conn.identity.create_project(name=f"quota-{secrets.token_hex(3)}", domain_id="default")
    try:
        page = signed_in(new_page(), live_cloud, "admin", live_cloud.admin_password)
        page.click("nav >> text=Projects")
        page.locator(f'#projects-table tr[data-name="{project.name}"] [data-action="quotas"]').click()
        expect(page.locator("h1")).to_contain_text(f"Quotas of project {project.name}")
        expect(page.locator("#id_ram")).to_have_value("50 GiB")
        expect(page.locator('label[for="id_floatingip"]')).to_have_text("Floating IPs")
        page.fill("#id_instances", "23")
        page.fill("#id_ram", "96 GiB")
        page.fill("#id_floatingip", "unlimited")
        page.click("#form-submit")
        expect(page.locator(".alert-success")).to_have_text(f"Saved the quotas of project {project.name}.")

        compute = conn.compute.get_quota_set(project.id)
        assert (compute.instances, compute.ram, compute.cores) == (23, 96 * 1024, 20)
        assert conn.network.get_quota(project.id).floating_ips == -1

        page.locator(f'#projects-table tr[data-name="{project.name}"] [data-action="quotas"]').click()
        expect(page.locator("#id_ram")).to_have_value("96 GiB")  # as the admin typed it, not 98304
        page.fill("#id_cores", "0.5")
        page.click("#form-submit")
        expect(page.locator(".field-error")).to_have_text("Enter a whole number, or -1 for unlimited.")
        assert conn.compute.get_quota_set(project.id).cores == 20
    finally:
        conn.identity.delete_project(project)
