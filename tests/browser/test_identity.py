"""The identity forms in a real browser on the live cloud (issue 11, item 6): a quota edited in Identity >
Projects > Quotas is what the Nova and Neutron APIs then report for the project; a user's API access
downloads work with the real CLI, and the password changed in Settings is the one the API then takes."""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
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


def _cli(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, input=stdin, capture_output=True, text=True, timeout=120, check=False)


def test_settings_downloads_work_with_the_real_cli_and_the_password_changes(
        live_cloud: Any, new_page: Callable[[], Page], tmp_path: Path) -> None:
    """A user of demo opens API access from the user menu, downloads the openrc and clouds.yaml, and the
    real `openstack` CLI signs in with each (the password typed at the openrc's prompt); then changes
    the password in Settings, stays signed in, and the CLI needs the new one."""
    conn = live_cloud.sdk()
    name, password = f"set-{secrets.token_hex(3)}", "pw-" + secrets.token_hex(6)
    user = conn.identity.create_user(name=name, password=password, domain_id="default")
    demo = conn.identity.find_project("demo", domain_id="default")
    conn.identity.assign_project_role_to_user(demo, user, conn.identity.find_role("member"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    openstack = str(Path(sys.executable).parent / "openstack")
    try:
        page = signed_in(new_page(), live_cloud, name, password)
        page.click("#user-menu summary")
        page.click("#menu-api-access")
        expect(page.locator("#auth-url")).to_have_text(f"{live_cloud.url}/identity/v3")
        expect(page.locator('#endpoints-table tr[data-type="compute"]')).to_contain_text(live_cloud.url)
        files = {}
        for button in ("#download-openrc", "#download-clouds-yaml"):
            with page.expect_download() as info:
                page.click(button)
            files[button] = tmp_path / info.value.suggested_filename
            info.value.save_as(files[button])
        assert files["#download-openrc"].name == "demo-openrc.sh"
        assert password not in files["#download-openrc"].read_text() + files["#download-clouds-yaml"].read_text()

        sourced = _cli("bash", "-c", f'source "$1" >/dev/null && exec {openstack} project show -f value -c name '
                       '"$OS_PROJECT_ID"', "bash", str(files["#download-openrc"]), env=env, stdin=password + "\n")
        assert sourced.returncode == 0 and sourced.stdout.strip() == "demo", sourced.stderr
        with_yaml = {**env, "OS_CLIENT_CONFIG_FILE": str(files["#download-clouds-yaml"])}
        shown = _cli(openstack, "--os-cloud", "openstack", "--os-password", password, "token", "issue", "-f", "value",
                     "-c", "project_id", env=with_yaml)
        assert shown.returncode == 0 and shown.stdout.strip() == demo.id, shown.stderr

        page.click("#user-menu summary")
        page.click("#menu-password")
        new = "pw-" + secrets.token_hex(6)
        page.fill("#id_current_password", password)
        page.fill("#id_password", new)
        page.fill("#id_confirm_password", new)
        page.click("#form-submit")
        expect(page.locator(".alert-success")).to_contain_text("Your password was changed. You stay signed in here")
        page.click("nav >> text=Overview")
        expect(page.locator("#current-project")).to_contain_text("demo")  # still signed in
        old = _cli(openstack, "--os-cloud", "openstack", "--os-password", password, "token", "issue", env=with_yaml)
        assert old.returncode != 0
        fresh = _cli(openstack, "--os-cloud", "openstack", "--os-password", new, "token", "issue", env=with_yaml)
        assert fresh.returncode == 0, fresh.stderr
    finally:
        conn.identity.delete_user(user)
