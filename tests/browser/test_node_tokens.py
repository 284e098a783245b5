"""Admin > Node enrolment (apps/compute/views_node_tokens.py) in real Chromium on a live cloud: the admin
makes a token in the page (a bad name first: a form error, nothing made), reads it and the command for the
new machine on the next page (once: a reload shows it no more), the token is exchanged at the live
controller's POST /v1/nodes/enrol as `make node` does, the table shows it used with its enrolled node,
and the row's Revoke (after its question) and a bulk Revoke refuse the tokens from then on. A member has no
such panel and gets a 403."""
from __future__ import annotations

import json
import re
import secrets
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import signed_in

pytestmark = pytest.mark.browser


def _enrol(url: str, body: dict[str, str]) -> int:
    request = urllib.request.Request(f"{url}/v1/nodes/enrol", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_make_read_use_and_revoke_node_tokens(live_cloud: Any, new_page: Callable[[], Page]) -> None:
    tag = secrets.token_hex(3)
    name, other = f"bn-{tag}", f"bo-{tag}"
    drop = ("from apps.compute.models import EnrolledNode, NodeToken; "
            f"EnrolledNode.objects.filter(name__in=['{name}', '{other}']).delete(); "
            f"NodeToken.objects.filter(name__in=['{name}', '{other}', 'bad name']).delete()")
    try:
        page = signed_in(new_page(), live_cloud, "admin", live_cloud.admin_password)
        questions: list[str] = []
        page.on("dialog", lambda dialog: questions.append(dialog.message))
        page.goto(f"{live_cloud.url}/dashboard/compute/admin/hypervisors/")
        page.click('nav a:has-text("Node enrolment")')
        expect(page).to_have_url(f"{live_cloud.url}/dashboard/compute/admin/node-tokens/")

        page.fill("#id_name", "bad name")
        page.select_option("#id_role", "storage")
        page.click("#node-token-submit")
        expect(page.locator("#node-token-form")).to_contain_text("Invalid node name")
        expect(page.locator("#node-tokens-table tr[data-name='bad name']")).to_have_count(0)

        page.fill("#id_name", name)
        page.select_option("#id_role", "storage")
        page.fill("#id_expires_hours", "2")
        page.click("#node-token-submit")
        expect(page).to_have_url(f"{live_cloud.url}/dashboard/compute/admin/node-tokens/created")
        expect(page.locator("#node-token-warning")).to_contain_text("shown this once")
        token = page.locator("#node-token-text").inner_text().strip()
        assert re.fullmatch(r"stn_[\w-]{40,}", token), token
        expect(page.locator("#node-token-command")).to_have_text(
            f"make node CONTROLLER={live_cloud.url} TOKEN={token} ROLE=storage")
        page.reload()  # shown once: the reload lands on the table, without it
        expect(page).to_have_url(f"{live_cloud.url}/dashboard/compute/admin/node-tokens/")
        assert token not in page.content()
        row = page.locator(f'#node-tokens-table tr[data-name="{name}"]')
        expect(row.locator('[data-role="state"]')).to_have_text("usable")

        # what `make node` does with it (manage.py node_enrol): the token is good, once
        assert _enrol(live_cloud.url, {"token": token, "name": name, "role": "storage",
                                       "address": "192.0.2.44"}) == 201
        assert _enrol(live_cloud.url, {"token": token, "name": name, "role": "storage"}) == 401
        page.reload()
        row = page.locator(f'#node-tokens-table tr[data-name="{name}"]')
        expect(row.locator('[data-role="state"]')).to_contain_text("used")
        expect(row.locator('[data-role="node"]')).to_contain_text(f"storage node {name} (192.0.2.44)")

        row.locator('button[data-action="revoke"]').click()
        expect(page.locator(".alert-success")).to_contain_text(f"Revoked the storage node token for {name}.")
        assert questions[-1].startswith(f"Revoke the storage node token for {name}?")
        row = page.locator(f'#node-tokens-table tr[data-name="{name}"]')
        expect(row.locator('[data-role="state"]')).to_contain_text("revoked")
        expect(row.locator('button[data-action="revoke"]')).to_have_count(0)

        # a second one, revoked in bulk before it is used: refused afterwards
        page.fill("#id_name", other)
        page.click("#node-token-submit")
        second = page.locator("#node-token-text").inner_text().strip()
        page.click("#node-token-done")
        page.fill("#node-tokens-filter", other)
        rows = page.locator("#node-tokens-table tbody tr[data-id]")
        expect(rows).to_have_count(1)
        page.check("#node-tokens-table input[data-select-all]")
        page.click('#node-tokens-bulk [data-bulk-action="revoke"]')
        expect(page.locator("#node-tokens-bulk [data-bulk-status]")).to_have_attribute("data-state", "done")
        assert questions[-1].startswith("Revoke 1 selected") and other in questions[-1]
        expect(page.locator(f'#node-tokens-table tr[data-name="{other}"] [data-role="state"]')).to_contain_text(
            "revoked")
        assert _enrol(live_cloud.url, {"token": second, "name": other, "role": "compute"}) == 401

        member = new_page()
        demo = signed_in(member, live_cloud, "demo", live_cloud.demo_password)
        expect(demo.locator('nav a:has-text("Node enrolment")')).to_have_count(0)
        answer = demo.goto(f"{live_cloud.url}/dashboard/compute/admin/node-tokens/")
        assert answer is not None and answer.status == 403
    finally:
        live_cloud.manage("shell", "-c", drop)
