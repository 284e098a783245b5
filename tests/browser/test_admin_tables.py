"""The admins' Compute services table (apps/compute/views.SERVICES) in real Chromium on a live cloud:
thirty services filtered, paged and sorted without reloading the page; a bulk Disable of a page's 25
rows (the question names the hosts, one request per row, every row answered) after which the rows show
their new status although a compute service's change sends no live event (the table reads itself again
once the bulk has finished); a row's Enable, and its Disable with a reason and a question naming the
host. The nodes are forced down, so that no other test's instance is scheduled on them, and removed."""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import signed_in

pytestmark = pytest.mark.browser

MAKE = ("from apps.compute.models import ComputeNode; from django.utils import timezone; "
        "ComputeNode.objects.bulk_create([ComputeNode(host=f'bt-{i:02d}', hypervisor_hostname=f'bt-{i:02d}', "
        "libvirt_uri='test:///default', vcpus=4, memory_mb=4096, local_gb=40, forced_down=True, "
        "last_heartbeat=timezone.now()) for i in range(30)])")
DROP = "from apps.compute.models import ComputeNode; ComputeNode.objects.filter(host__startswith='bt-').delete()"


def test_services_table_filters_pages_and_switches_in_bulk(live_cloud: Any, new_page: Callable[[], Page]) -> None:
    live_cloud.manage("shell", "-c", MAKE)
    try:
        page = signed_in(new_page(), live_cloud, "admin", live_cloud.admin_password)
        questions: list[str] = []
        page.on("dialog", lambda dialog: questions.append(dialog.message))
        page.goto(f"{live_cloud.url}/dashboard/compute/admin/services/")
        page.evaluate("window.__notReloaded = true")
        page.fill("#services-filter", "bt-")
        rows = page.locator("#services-table tbody tr[data-id]")
        expect(page.locator('#services-pager [data-page="next"]')).to_have_attribute("href", re.compile("q=bt-"))
        expect(rows).to_have_count(25)
        expect(rows.first).to_have_attribute("data-name", "bt-00")
        page.click('#services-pager [data-page="next"]')
        expect(rows).to_have_count(5)
        expect(rows.first).to_have_attribute("data-name", "bt-25")
        assert "marker=" in page.url and "q=bt-" in page.url
        page.click('#services-table th a[data-sort-key="host"]')  # descending now, from the first page
        expect(rows.first).to_have_attribute("data-name", "bt-29")
        page.click('#services-table th a[data-sort-key="host"]')
        expect(rows.first).to_have_attribute("data-name", "bt-00")
        assert page.evaluate("window.__notReloaded === true")

        page.check("#services-table input[data-select-all]")
        expect(page.locator("#services-bulk [data-bulk-count]")).to_have_text("25 selected")
        page.click('#services-bulk [data-bulk-action="disable"]')
        status = page.locator("#services-bulk [data-bulk-status]")
        expect(status).to_have_attribute("data-state", "done", timeout=30_000)
        expect(status).to_contain_text("25 of 25 requested")
        assert questions[-1].startswith("Disable 25 selected: bt-00, bt-01") and "bt-19" in questions[-1]
        expect(page.locator('#services-table tr[data-name="bt-24"] [data-role="status"]')).to_have_text("disabled")
        expect(page.locator('#services-table tr[data-name="bt-00"] .row-outcome')).to_have_text(
            "Compute service on bt-00 disabled.")
        expect(page.locator('#services-table [data-role="status"]:has-text("enabled")')).to_have_count(0)

        row = page.locator('#services-table tr[data-name="bt-03"]')
        row.locator('button[data-action="enable"]').click()
        expect(page.locator(".alert-success")).to_contain_text("Compute service on bt-03 enabled.")
        row = page.locator('#services-table tr[data-name="bt-03"]')
        expect(row.locator('[data-role="status"]')).to_have_text("enabled")
        row.locator('input[name="disabled_reason"]').fill("new disks")
        row.locator('button[data-action="disable"]').click()
        expect(page.locator(".alert-success")).to_contain_text("Compute service on bt-03 disabled.")
        assert questions[-1].startswith("Disable the compute service on bt-03?")
        expect(page.locator('#services-table tr[data-name="bt-03"]')).to_contain_text("new disks")
    finally:
        live_cloud.manage("shell", "-c", DROP)
