"""The dashboard in a real browser: login, project switch, an admin creating a user, live updates."""
from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import login, signed_in

pytestmark = pytest.mark.browser


def test_login_with_wrong_then_right_password_and_logout(live_cloud: Any, new_page: Callable[[], Page]) -> None:
    page = new_page()
    page.goto(f"{live_cloud.url}/dashboard/")
    expect(page).to_have_url(f"{live_cloud.url}/dashboard/login?next=/dashboard/")
    expect(page.locator("#id_domain")).to_have_value("Default")

    login(page, live_cloud.url, "admin", "not-" + live_cloud.admin_password)
    expect(page.locator("#login-error")).to_contain_text("Invalid credentials")
    expect(page.locator("#current-project")).to_have_count(0)

    page.fill("#id_password", live_cloud.admin_password)
    page.click("#login-submit")
    expect(page).to_have_url(f"{live_cloud.url}/dashboard/")
    expect(page.locator("#current-project")).to_have_text("admin")
    expect(page.locator("#overview-project")).to_have_text("admin")
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live")
    other_tab = page.context.new_page()
    other_tab.goto(f"{live_cloud.url}/dashboard/")
    expect(other_tab.locator("#live-indicator")).to_have_attribute("data-state", "live")

    page.click("#user-menu summary")
    page.click("#logout")
    expect(page).to_have_url(f"{live_cloud.url}/dashboard/login")
    expect(page.locator(".alert")).to_contain_text("signed out")
    # Signing out closes the session's live sockets in every tab.
    expect(other_tab.locator("#live-indicator")).to_have_attribute("data-state", "offline")
    page.goto(f"{live_cloud.url}/dashboard/")
    expect(page.locator("#login-submit")).to_be_visible()


def switch_to(page: Page, project: str) -> None:
    page.click("#project-switcher summary")
    page.click(f'#project-switcher button[data-project="{project}"]')


def test_admin_switches_projects_and_demo_sees_only_demo(live_cloud: Any, new_page: Callable[[], Page]) -> None:
    admin = signed_in(new_page(), live_cloud, "admin", live_cloud.admin_password)
    expect(admin.locator("#overview-project")).to_have_text("admin")
    switch_to(admin, "demo")
    expect(admin.locator("#current-project")).to_have_text("demo")
    expect(admin.locator("#overview-project")).to_have_text("demo")
    expect(admin.locator(".alert-success")).to_contain_text("Switched to project demo")
    admin.reload()
    expect(admin.locator("#overview-project")).to_have_text("demo")
    switch_to(admin, "admin")
    expect(admin.locator("#overview-project")).to_have_text("admin")

    demo = signed_in(new_page(), live_cloud, "demo", live_cloud.demo_password)
    expect(demo.locator("#overview-project")).to_have_text("demo")
    demo.click("#project-switcher summary")
    expect(demo.locator("#project-switcher button[data-project]")).to_have_count(1)
    expect(demo.locator('#project-switcher button[data-project="demo"]')).to_be_visible()
    expect(demo.locator('.nav-section[data-section="Identity"]')).to_have_count(0)
    response = demo.goto(f"{live_cloud.url}/dashboard/identity/users")
    assert response is not None and response.status == 403


def test_admin_creates_a_user_who_then_logs_in(live_cloud: Any, new_page: Callable[[], Page]) -> None:
    name, password = f"user-{secrets.token_hex(3)}", "pw-" + secrets.token_hex(6)
    admin = signed_in(new_page(), live_cloud, "admin", live_cloud.admin_password)
    admin.click('.nav a:has-text("Users")')
    admin.click("#create-user")
    admin.fill("#id_name", name)
    admin.fill("#id_email", f"{name}@example.org")
    admin.fill("#id_password", password)
    admin.fill("#id_confirm_password", password)
    admin.select_option("#id_project_id", label="demo")
    admin.select_option("#id_role_id", label="member")
    admin.click("#form-submit")
    expect(admin.locator(".alert-success")).to_contain_text(f"Created user {name}")
    row = admin.locator(f'#users-table tr[data-name="{name}"]')
    expect(row).to_contain_text("demo")

    user = new_page()
    login(user, live_cloud.url, name, password)
    expect(user.locator("#current-project")).to_have_text("demo")
    expect(user.locator("#overview-roles")).to_contain_text("member")
    expect(user.locator('.nav-section[data-section="Identity"]')).to_have_count(0)


def test_projects_list_updates_live_when_the_api_creates_one(live_cloud: Any, new_page: Callable[[], Page]) -> None:
    admin = signed_in(new_page(), live_cloud, "admin", live_cloud.admin_password)
    admin.goto(f"{live_cloud.url}/dashboard/identity/projects")
    expect(admin.locator("#live-indicator")).to_have_attribute("data-state", "live")
    admin.evaluate("window.__notReloaded = true")

    name = f"live-{secrets.token_hex(3)}"
    conn = live_cloud.sdk()
    project = conn.identity.create_project(name=name, domain_id="default", description="made by the API")

    row = admin.locator(f'#projects-table tr[data-name="{name}"]')
    expect(row).to_be_visible()
    expect(row).to_have_class(re.compile(r"\blive-new\b"))
    assert admin.evaluate("window.__notReloaded") is True  # updated in place, no reload

    conn.identity.update_project(project, enabled=False)
    expect(row.locator(".badge")).to_have_text("Disabled")
    conn.identity.delete_project(project)
    expect(row).to_have_count(0)
    assert admin.evaluate("window.__notReloaded") is True
