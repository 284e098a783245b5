"""The Reports panel in a real browser on the live cloud, with a control-queue worker: demo schedules a
report (a bad cron expression refused with the service's words), runs it now, sees the run succeed in
the runs table, downloads its CSV, HTML (charts as inline SVG) and PDF, finds it mailed (the live
cloud's file mail backend under its data dir), edits the schedule and deletes it with its runs.
Another project's member never sees it (a 404 for its download)."""
from __future__ import annotations

import csv
import io
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import signed_in
from tests.conftest import CeleryWorker, live_control_worker

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def control_worker(live_cloud: Any) -> Iterator[CeleryWorker]:
    """A control-queue worker for the live cloud (a report run is a control-queue task), for the module."""
    with live_control_worker(live_cloud, name="reports", pool="threads", concurrency=2) as worker:
        yield worker


def _download(page: Page, row: Any, kind: str, tmp_path: Path) -> bytes:
    with page.expect_download() as info:
        row.locator(f'a[data-kind="{kind}"]').click()
    download = info.value
    assert download.suggested_filename.endswith(f".{kind}"), download.suggested_filename
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    return target.read_bytes()


def test_reports_panel(live_cloud: Any, control_worker: Any, new_page: Callable[[], Page], tmp_path: Path) -> None:
    name = f"Usage {secrets.token_hex(3)}"
    recipient = f"ops-{secrets.token_hex(3)}@example.com"
    page = signed_in(new_page(), live_cloud, "demo", live_cloud.demo_password)
    page.click("nav >> text=Reports")
    expect(page).to_have_url(f"{live_cloud.url}/dashboard/reports/")

    page.fill("#id_name", name)
    page.select_option("#id_frequency", "cron")
    page.fill("#id_cron", "61 * * * *")
    page.fill("#id_recipients", recipient)
    page.click("#report-submit")
    expect(page.locator("#report-form")).to_contain_text("Invalid cron expression")
    page.fill("#id_cron", "*/5 * * * *")  # a project's report runs at most hourly
    page.click("#report-submit")
    expect(page.locator("#report-form")).to_contain_text("a project's reports may run at most once every")
    page.fill("#id_cron", "0 */6 * * *")
    page.click("#report-submit")
    expect(page.locator(".alert-success")).to_contain_text(f"Report {name} scheduled")
    row = page.locator(f'#report-schedules-table tr[data-name="{name}"]')
    expect(row).to_contain_text("0 */6 * * *")
    expect(row).to_contain_text(recipient)

    row.locator('button[data-action="run"]').click()
    expect(page.locator(".alert-success")).to_contain_text(f"Report {name} started")

    page.click("#report-runs-link")
    expect(page).to_have_url(f"{live_cloud.url}/dashboard/reports/runs/")
    run_row = page.locator(f'#report-runs-table tr[data-name="{name}"]')
    deadline = time.monotonic() + 60
    while "succeeded" not in (run_row.inner_text() if run_row.count() else ""):
        assert time.monotonic() < deadline, page.locator("#report-runs-table").inner_text()
        time.sleep(1)
        page.reload()
    csv_body = _download(page, run_row, "csv", tmp_path).decode()
    header = next(csv.reader(io.StringIO(csv_body)))
    assert header[:5] == ["project_id", "project_name", "flavor", "instance_hours", "vcpu_hours"]
    html = _download(page, run_row, "html", tmp_path)
    assert b"<svg" in html and b"<script" not in html and name.encode() in html
    assert _download(page, run_row, "pdf", tmp_path).startswith(b"%PDF-")
    run_id = run_row.get_attribute("data-id")
    # the run is a task in the task log: its link opens the task's page
    run_row.locator("td a").first.click()
    expect(page.locator("main")).to_contain_text("workers.reports.run")

    mails = [p.read_text(errors="replace") for p in (live_cloud.data_dir / "mail").glob("*.log")]
    assert any(f"To: {recipient}" in text and name in text for text in mails), mails[-1:] if mails else "no mail"

    # another project's member sees none of it, and the download URL answers 404
    admin = live_cloud.sdk(user="admin")
    tag = secrets.token_hex(3)
    project = admin.identity.create_project(name=f"rep-{tag}", domain_id="default")
    password = f"pw-{tag}-{secrets.token_hex(4)}"
    user = admin.identity.create_user(name=f"rep-{tag}", password=password, domain_id="default",
                                      default_project_id=project.id)
    admin.identity.assign_project_role_to_user(project, user, admin.identity.find_role("member"))
    other = signed_in(new_page(), live_cloud, f"rep-{tag}", password)
    other.goto(f"{live_cloud.url}/dashboard/reports/runs/")
    expect(other.locator("#report-runs-table")).not_to_contain_text(name)
    response = other.request.get(f"{live_cloud.url}/dashboard/reports/runs/{run_id}/download/csv")
    assert response.status == 404 and name not in response.text()
    other.goto(f"{live_cloud.url}/dashboard/reports/")
    expect(other.locator("#report-schedules-table")).not_to_contain_text(name)

    page.goto(f"{live_cloud.url}/dashboard/reports/")
    row.locator("td a").first.click()  # the name links to the edit form
    page.select_option("#id_frequency", "monthly")
    page.click("#form-submit")
    expect(page.locator(".alert-success")).to_contain_text(f"Report {name} saved")
    expect(row).to_contain_text("Monthly")
    expect(row).to_contain_text("Previous month")

    row.locator('button[data-action="delete"]').click()
    expect(page.locator(".alert-success")).to_contain_text(f"Report {name} deleted")
    expect(row).to_have_count(0)
    page.goto(f"{live_cloud.url}/dashboard/reports/runs/")
    expect(page.locator(f'#report-runs-table tr[data-name="{name}"]')).to_have_count(0)
