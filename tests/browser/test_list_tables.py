"""The task log and the admins' Volume types as live tables in real Chromium on a live cloud: thirty task
records filtered by the table's box, paged and sorted without a reload, the resource form's filter kept
with the sort; three volume types deleted in bulk (one request per row, every row answered) and gone from
the table although volume types send no live event (the table reads itself again after a bulk)."""
from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import signed_in

pytestmark = pytest.mark.browser


def test_the_task_log_filters_pages_and_sorts(live_cloud: Any, new_page: Callable[[], Page]) -> None:
    tag = secrets.token_hex(3)
    live_cloud.manage("shell", "-c", (
        "from apps.core.models import TaskRecord; from apps.identity.models import Project; "
        "p = Project.objects.get(name='demo'); "
        f"TaskRecord.objects.bulk_create([TaskRecord(name='workers.bt.t{{}}'.format(i), queue='q', "
        f"action='bt{tag}-{{:02d}}'.format((i * 7) % 30), resource_type='bt_thing' if i % 2 else 'bt_other', "
        "resource_id='r{}'.format(i), project_id=p.id, status='succeeded') for i in range(30)])"))
    try:
        page = signed_in(new_page(), live_cloud, "demo", live_cloud.demo_password)
        page.goto(f"{live_cloud.url}/dashboard/tasks/")
        page.evaluate("window.__notReloaded = true")
        rows = page.locator("#tasks-table tbody tr[data-id]")
        page.fill("#tasks-filter", f"bt{tag}")
        expect(page.locator('#tasks-pager [data-page="next"]')).to_have_attribute("href", re.compile(f"q=bt{tag}"))
        expect(rows).to_have_count(25)
        expect(rows.first).to_have_attribute("data-task", "workers.bt.t29")  # newest first (made last)
        page.click('#tasks-table th a[data-sort-key="action"]')
        expect(rows.first).to_have_attribute("data-name", f"bt{tag}-00 bt_other")
        page.click('#tasks-pager [data-page="next"]')
        expect(rows).to_have_count(5)
        expect(rows.last).to_have_attribute("data-name", f"bt{tag}-29 bt_thing")
        assert page.evaluate("window.__notReloaded === true")

        page.select_option("#id_resource_type", "bt_thing")  # the form's filter: a new page, sort and box kept
        page.click("#task-filter-submit")
        expect(rows).to_have_count(15)
        expect(rows.first).to_have_attribute("data-name", f"bt{tag}-01 bt_thing")
        assert "resource_type=bt_thing" in page.url and "sort=action" in page.url and f"q=bt{tag}" in page.url
        expect(page.locator('#tasks-table tbody tr[data-resource-type="bt_other"]')).to_have_count(0)
    finally:
        live_cloud.manage("shell", "-c", "from apps.core.models import TaskRecord; "
                                         "TaskRecord.objects.filter(name__startswith='workers.bt.').delete()")


def test_volume_types_go_in_bulk(live_cloud: Any, new_page: Callable[[], Page]) -> None:
    conn = live_cloud.sdk()
    tag = secrets.token_hex(3)
    made = [conn.block_storage.create_type(name=f"bt-{tag}-{i}") for i in range(3)]
    page = signed_in(new_page(), live_cloud, "admin", live_cloud.admin_password)
    questions: list[str] = []
    page.on("dialog", lambda dialog: questions.append(dialog.message))
    page.goto(f"{live_cloud.url}/dashboard/volumes/types/")
    page.fill("#types-filter", f"bt-{tag}")
    rows = page.locator("#types-table tbody tr[data-id]")
    expect(rows).to_have_count(3)
    for vtype in made:
        page.check(f'#types-table input[data-select][value="{vtype.id}"]')
    page.click('#types-bulk [data-bulk-action="delete"]')
    status = page.locator("#types-bulk [data-bulk-status]")
    expect(status).to_have_attribute("data-state", "done", timeout=30_000)
    expect(status).to_contain_text("3 of 3 requested")
    assert questions[-1] == f"Delete 3 selected: bt-{tag}-0, bt-{tag}-1, bt-{tag}-2?"
    expect(rows).to_have_count(0)
    expect(page.locator("#types-table .empty-row")).to_contain_text(f"Nothing matches “bt-{tag}”.")
    assert not [t for t in conn.block_storage.types() if t.name.startswith(f"bt-{tag}")]
