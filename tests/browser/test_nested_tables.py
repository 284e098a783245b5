"""Tables inside an object's page (apps/dashboard/tables.nested_action_view) in real Chromium on a live
cloud: a security group's thirty rules filtered, sorted and paged without a reload, then a page of them
deleted in bulk (the question names each rule in words, one request per row, every row answered, the
rows going live); and a project's members removed in bulk by the admin, its own row refused by the
identity services' lockout rule with that row's own outcome while the others go."""
from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import signed_in

pytestmark = pytest.mark.browser


def test_a_security_groups_rules_filter_page_and_go_in_bulk(live_cloud: Any, new_page: Callable[[], Page]) -> None:
    conn = live_cloud.sdk(user="demo", project="demo")
    group = conn.network.create_security_group(name=f"bt-{secrets.token_hex(3)}")
    try:
        for i in range(30):
            conn.network.create_security_group_rule(security_group_id=group.id, direction="ingress",
                                                    ethertype="IPv4", protocol="tcp", port_range_min=2000 + i,
                                                    port_range_max=2000 + i, remote_ip_prefix="10.9.0.0/16")
        page = signed_in(new_page(), live_cloud, "demo", live_cloud.demo_password)
        questions: list[str] = []
        page.on("dialog", lambda dialog: questions.append(dialog.message))
        page.goto(f"{live_cloud.url}/dashboard/networks/security-groups/{group.id}/")
        page.evaluate("window.__notReloaded = true")
        rows = page.locator("#rules-table tbody tr[data-id]")
        page.fill("#rules-filter", "tcp")  # not its two egress rules
        expect(page.locator('#rules-pager [data-page="next"]')).to_have_attribute("href", re.compile("q=tcp"))
        expect(rows).to_have_count(25)
        page.click('#rules-table th a[data-sort-key="port_range_min"]')
        expect(rows.first).to_have_attribute("data-name", "ingress TCP 2000 from 10.9.0.0/16")
        page.click('#rules-table th a[data-sort-key="port_range_min"]')  # descending
        expect(rows.first).to_have_attribute("data-name", "ingress TCP 2029 from 10.9.0.0/16")
        page.click('#rules-pager [data-page="next"]')
        expect(rows).to_have_count(5)
        expect(rows.first).to_have_attribute("data-name", "ingress TCP 2004 from 10.9.0.0/16")
        page.click('#rules-pager [data-page="previous"]')
        expect(rows).to_have_count(25)
        assert page.evaluate("window.__notReloaded === true") and "marker=" in page.url

        page.check("#rules-table input[data-select-all]")
        expect(page.locator("#rules-bulk [data-bulk-count]")).to_have_text("25 selected")
        page.click('#rules-bulk [data-bulk-action="delete"]')
        status = page.locator("#rules-bulk [data-bulk-status]")
        expect(status).to_have_attribute("data-state", "done", timeout=30_000)
        expect(status).to_contain_text("25 of 25 requested")
        assert questions[-1].startswith("Delete 25 selected: ingress TCP 2029 from 10.9.0.0/16, ingress TCP 2028")
        page.click('#rules-table th a[data-sort-key="port_range_min"]')
        expect(rows).to_have_count(5)
        expect(rows.first).to_have_attribute("data-name", "ingress TCP 2000 from 10.9.0.0/16")
        assert page.evaluate("window.__notReloaded === true")
        left = sorted(r.port_range_min for r in conn.network.security_group_rules(security_group_id=group.id)
                      if r.protocol == "tcp")
        assert left == [2000, 2001, 2002, 2003, 2004]
    finally:
        conn.network.delete_security_group(group)


def test_a_projects_members_go_in_bulk_but_the_admins_own_row(live_cloud: Any,
                                                              new_page: Callable[[], Page]) -> None:
    conn = live_cloud.sdk()
    tag = secrets.token_hex(3)
    project = conn.identity.create_project(name=f"bt-{tag}", domain_id="default")
    me = conn.identity.find_user("admin", domain_id="default")
    admin_role, member = conn.identity.find_role("admin"), conn.identity.find_role("member")
    users = [conn.identity.create_user(name=f"bt-{tag}-{i}", password="pw-" + tag * 3, domain_id="default")
             for i in range(3)]
    try:
        conn.identity.assign_project_role_to_user(project, me, admin_role)
        for user in users:
            conn.identity.assign_project_role_to_user(project, user, member)
        page = signed_in(new_page(), live_cloud, "admin", live_cloud.admin_password)
        questions: list[str] = []
        page.on("dialog", lambda dialog: questions.append(dialog.message))
        page.goto(f"{live_cloud.url}/dashboard/identity/projects/{project.id}/members")
        rows = page.locator("#members-table tbody tr[data-id]")
        expect(rows).to_have_count(4)
        page.check("#members-table input[data-select-all]")
        page.click('#members-bulk [data-bulk-action="remove"]')
        status = page.locator("#members-bulk [data-bulk-status]")
        expect(status).to_have_attribute("data-state", "partial", timeout=30_000)
        expect(status).to_contain_text("Remove: 3 of 4 requested, 1 refused")
        assert questions[-1] == f"Remove 4 selected: admin, bt-{tag}-0, bt-{tag}-1, bt-{tag}-2?"
        mine = page.locator('#members-table tr[data-name="admin"]')
        expect(mine.locator('.row-outcome[data-outcome="failed"]')).to_have_text(
            "You cannot remove the admin role from the account you are signed in with.")
        expect(rows).to_have_count(1)  # the others went (the table reads itself again)
        assigned = [a.user["id"] for a in conn.identity.role_assignments(scope_project_id=project.id)]
        assert assigned == [me.id]
    finally:
        for user in users:
            conn.identity.delete_user(user)
        conn.identity.delete_project(project)
