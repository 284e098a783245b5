"""No lockout from the dashboard, in a real browser (issue 11): the signed-in admin presses Disable
on its own row, is asked first (the confirmation names the user), and the services refuse: a
message says why, the row stays Enabled and the admin stays signed in. Another admin exists (made
here, deleted after), so the refusal is the self rule, not the last-admin one."""
from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import keystoneauth1.exceptions.http
import openstack
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import signed_in

pytestmark = pytest.mark.browser


@pytest.fixture
def second_admin(live_cloud: Any) -> Iterator[tuple[str, str]]:
    """Another admin of the admin project; at teardown, the admin is enabled again through it if a
    broken rule let the admin disable itself (the live cloud is shared), then it is deleted."""
    conn = live_cloud.sdk()
    name, password = f"admin-{secrets.token_hex(3)}", "pw-" + secrets.token_hex(6)
    user = conn.identity.create_user(name=name, password=password, domain_id="default")
    project = conn.identity.find_project("admin", domain_id="default")
    role = conn.identity.find_role("admin")
    conn.identity.assign_project_role_to_user(project, user, role)
    yield name, password
    try:
        conn = live_cloud.sdk()
        conn.identity.get_user(user.id)
    except (openstack.exceptions.HttpException, keystoneauth1.exceptions.http.Unauthorized):  # it was disabled
        other = live_cloud.sdk(user=name, project="admin", password=password)
        other.identity.update_user(other.identity.find_user("admin", domain_id="default"), is_enabled=True)
        conn = live_cloud.sdk()
    conn.identity.delete_user(user)


def test_the_signed_in_admin_cannot_disable_itself(live_cloud: Any, new_page: Callable[[], Page],
                                                    second_admin: tuple[str, str]) -> None:
    admin = signed_in(new_page(), live_cloud, "admin", live_cloud.admin_password)
    asked: list[str] = []
    admin.on("dialog", lambda dialog: asked.append(dialog.message))  # the fixture's handler accepts it
    admin.goto(f"{live_cloud.url}/dashboard/identity/users")
    row = admin.locator('#users-table tr[data-name="admin"]')
    expect(row.locator(".chip-current")).to_have_text("you")
    expect(row.locator(".badge")).to_have_text("Enabled")

    row.locator('button:has-text("Disable")').click()
    expect(admin.locator(".alert-error")).to_have_text("You cannot disable the account you are signed in with.")
    assert asked == ["Disable user admin (you)? They can no longer sign in, and their tokens are revoked."]
    row = admin.locator('#users-table tr[data-name="admin"]')
    expect(row.locator(".badge")).to_have_text("Enabled")

    admin.goto(f"{live_cloud.url}/dashboard/identity/projects")  # still signed in
    expect(admin.locator("#projects-table")).to_be_visible()
    assert live_cloud.sdk().identity.find_user("admin", domain_id="default").is_enabled

    other = admin.locator(f'#users-table tr[data-name="{second_admin[0]}"]')
    admin.goto(f"{live_cloud.url}/dashboard/identity/users")
    other.locator('button:has-text("Disable")').click()  # another admin may be disabled
    expect(admin.locator(".alert-success")).to_have_text(f"Disabled user {second_admin[0]}.")
    expect(other.locator(".badge")).to_have_text("Disabled")
    assert asked[-1] == f"Disable user {second_admin[0]}? They can no longer sign in, and their tokens are revoked."


def test_a_bulk_disable_refuses_the_own_row_only(live_cloud: Any, new_page: Callable[[], Page],
                                                 second_admin: tuple[str, str]) -> None:
    """The users table's selection: the admin's own row and another admin's, Disable selected: one
    request per row, the own row answers the refusal, the other is disabled (the live event shows it)."""
    admin = signed_in(new_page(), live_cloud, "admin", live_cloud.admin_password)
    asked: list[str] = []
    admin.on("dialog", lambda dialog: asked.append(dialog.message))  # the fixture's handler accepts it
    admin.goto(f"{live_cloud.url}/dashboard/identity/users?q=admin")
    own = admin.locator('#users-table tr[data-name="admin"]')
    other = admin.locator(f'#users-table tr[data-name="{second_admin[0]}"]')
    own.locator("input[data-select]").check()
    other.locator("input[data-select]").check()
    expect(admin.locator("#users-bulk [data-bulk-count]")).to_have_text("2 selected")
    admin.click('#users-bulk [data-bulk-action="disable"]')
    expect(admin.locator("#users-bulk [data-bulk-status]")).to_contain_text("1 of 2 requested, 1 refused")
    assert asked == [f"Disable 2 selected: admin, {second_admin[0]}?"]
    # the rows go side by side (PARALLEL requests): when the other admin's row commits before the own row's
    # check, the own row's refusal is that it would leave no enabled admin (LastAdmin, checked first; it
    # names the admins enabled when its transaction began: one or both), else that it is one's own
    expect(own.locator('.row-outcome[data-outcome="failed"]')).to_have_text(re.compile(
        r"^(You cannot disable the account you are signed in with\.|Refused: [^,\s]+(, [^,\s]+)? (is the last enabled "
        r"admin|are the last enabled admins) of the cloud\. Give another enabled user the admin role first\.)$"))
    expect(other.locator(".badge")).to_have_text("Disabled")  # the live refresh
    expect(other.locator('.row-outcome[data-outcome="ok"]')).to_have_text(f"Disabled user {second_admin[0]}.")
    expect(own.locator(".badge")).to_have_text("Enabled")
    conn = live_cloud.sdk()
    assert conn.identity.find_user("admin", domain_id="default").is_enabled
    assert not conn.identity.find_user(second_admin[0], domain_id="default").is_enabled
