"""The user's own settings (issue 11, item 6), from the user menu: change one's password through
identity's password service (the current password required, the session kept, the rest signed out),
and API access: the catalog's public endpoints, an openrc (v3) and a clouds.yaml for the session's
project, with no password in them."""
from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml
from django.test import Client

from apps.identity import services
from apps.identity.models import Token, User
from tests.api_client import SeededCloud
from tests.dashboard.conftest import DEMO_PW, make_user, sign_in
from tests.identity import factories

PASSWORD = "/dashboard/settings/password"


def _token(name: str, password: str, project: Any) -> str:
    return services.token_issue(auth=factories.password_auth(name, password, project=project.name))[0]


def test_the_user_menu_leads_to_both_pages(demo_client: Client) -> None:
    page = demo_client.get("/dashboard/").content.decode()
    menu = page.split('id="user-menu"')[1].split("</details>")[0]
    assert f'href="{PASSWORD}"' in menu and 'href="/dashboard/settings/api"' in menu
    assert demo_client.get(PASSWORD).status_code == 200
    assert demo_client.get("/dashboard/settings/api").status_code == 200


def test_signed_out_visitors_are_sent_to_the_login(client: Client, cloud: SeededCloud) -> None:
    for url in (PASSWORD, "/dashboard/settings/api", "/dashboard/settings/openrc", "/dashboard/settings/clouds.yaml"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/dashboard/login"), url


def test_changing_ones_password_keeps_this_session_and_ends_the_others(demo_client: Client,
                                                                      cloud: SeededCloud) -> None:
    demo = cloud.demo_project
    other_session = Client()
    assert sign_in(other_session, "demo", DEMO_PW).status_code == 302
    _token("demo", DEMO_PW, demo)
    response = demo_client.post(PASSWORD, {"current_password": DEMO_PW, "password": "n3w-secret-pw",
                                           "confirm_password": "n3w-secret-pw"})
    assert response.status_code == 302 and response["Location"] == "/dashboard/settings/api"
    page = demo_client.get(response["Location"])
    assert page.status_code == 200 and b"Your password was changed. You stay signed in here" in page.content
    assert demo_client.get("/dashboard/").status_code == 200  # still signed in
    assert other_session.get("/dashboard/").status_code == 302  # the other session is signed out
    assert not Token.objects.filter(user=cloud.demo_user).exists()  # its API token revoked
    assert sign_in(Client(), "demo", DEMO_PW).status_code == 400
    assert sign_in(Client(), "demo", "n3w-secret-pw").status_code == 302


def test_the_current_password_is_required_and_checked(demo_client: Client, cloud: SeededCloud) -> None:
    """Security: a borrowed session (an unlocked screen, a stolen cookie) cannot take over the account."""
    response = demo_client.post(PASSWORD, {"password": "taken-over", "confirm_password": "taken-over"})
    assert response.status_code == 400 and b"This field is required." in response.content
    response = demo_client.post(PASSWORD, {"current_password": "guess", "password": "taken-over",
                                           "confirm_password": "taken-over"})
    assert response.status_code == 400 and b"That is not your current password" in response.content
    assert b'value="guess"' not in response.content and b'value="taken-over"' not in response.content
    response = demo_client.post(PASSWORD, {"current_password": DEMO_PW, "password": "a", "confirm_password": "b"})
    assert response.status_code == 400 and b"The two passwords do not match." in response.content
    assert User.objects.get(name="demo").check_password(DEMO_PW)


def test_guessing_the_current_password_locks_the_account_like_the_sign_in(settings: Any, demo_client: Client,
                                                                          cloud: SeededCloud) -> None:
    """Security: the form is no way around the lockout: wrong current passwords count as failed sign-ins."""
    settings.STRATUS_LOCKOUT_FAILURE_ATTEMPTS = 3
    for guess in ("one", "two", "three"):
        assert demo_client.post(PASSWORD, {"current_password": guess, "password": "x-pw-1",
                                           "confirm_password": "x-pw-1"}).status_code == 400
    response = demo_client.post(PASSWORD, {"current_password": DEMO_PW, "password": "x-pw-1",
                                           "confirm_password": "x-pw-1"})
    assert response.status_code == 400 and b"locked the account" in response.content
    assert User.objects.get(name="demo").check_password(DEMO_PW)
    assert sign_in(Client(), "demo", DEMO_PW).status_code == 400  # locked for the sign-in too


def test_the_password_form_needs_its_csrf_token(cloud: SeededCloud) -> None:
    client = Client(enforce_csrf_checks=True)
    page = client.get("/dashboard/login")
    client.post("/dashboard/login", {"domain": "Default", "username": "demo", "password": DEMO_PW,
                                     "csrfmiddlewaretoken": page.context["csrf_token"]})
    assert client.get("/dashboard/").status_code == 200
    response = client.post(PASSWORD, {"current_password": DEMO_PW, "password": "csrf-pw",
                                      "confirm_password": "csrf-pw"})
    assert response.status_code == 403
    assert User.objects.get(name="demo").check_password(DEMO_PW)


def test_api_access_lists_the_public_endpoints(demo_client: Client) -> None:
    page = demo_client.get("/dashboard/settings/api").content.decode()
    for kind, url in (("identity", "http://testserver/identity"), ("compute", "http://testserver/compute/v2.1"),
                      ("network", "http://testserver/network"), ("image", "http://testserver/image")):
        assert f'<tr data-type="{kind}">' in page and f"<code>{url}" in page, kind
    assert '<code id="auth-url">http://testserver/identity/v3</code>' in page
    assert 'id="download-openrc"' in page and 'id="download-clouds-yaml"' in page
    assert "source demo-openrc.sh" in page


def test_the_openrc_names_the_project_user_region_and_asks_for_the_password(demo_client: Client,
                                                                            cloud: SeededCloud) -> None:
    response = demo_client.get("/dashboard/settings/openrc")
    assert response.status_code == 200 and response["Content-Disposition"] == 'attachment; filename="demo-openrc.sh"'
    assert response["Cache-Control"] == "no-store"
    env = _sourced(response.content.decode(), password="typed-at-the-prompt")
    assert env["OS_AUTH_URL"] == "http://testserver/identity/v3"
    assert (env["OS_PROJECT_ID"], env["OS_PROJECT_NAME"]) == (cloud.demo_project.id, "demo")
    assert (env["OS_USERNAME"], env["OS_USER_DOMAIN_NAME"]) == ("demo", "Default")
    assert env["OS_PROJECT_DOMAIN_ID"] == "default"
    assert (env["OS_REGION_NAME"], env["OS_IDENTITY_API_VERSION"], env["OS_INTERFACE"]) == ("RegionOne", "3", "public")
    assert env["OS_PASSWORD"] == "typed-at-the-prompt"  # asked for, never written in the file
    assert DEMO_PW not in response.content.decode() and "OS_PASSWORD=" not in response.content.decode().replace(
        'OS_PASSWORD="$OS_PASSWORD_INPUT"', "")


def test_the_clouds_yaml_names_the_same_and_no_password(demo_client: Client, cloud: SeededCloud) -> None:
    response = demo_client.get("/dashboard/settings/clouds.yaml")
    assert response.status_code == 200 and response["Content-Disposition"] == 'attachment; filename="clouds.yaml"'
    data = yaml.safe_load(response.content)
    assert data == {"clouds": {"openstack": {
        "auth": {"auth_url": "http://testserver/identity/v3", "username": "demo", "user_domain_name": "Default",
                 "project_id": cloud.demo_project.id, "project_name": "demo", "project_domain_id": "default"},
        "region_name": "RegionOne", "interface": "public", "identity_api_version": 3}}}
    assert b"password:" not in response.content


def test_hostile_names_stay_names_in_the_openrc_and_clouds_yaml(cloud: SeededCloud, tmp_path: Any) -> None:
    """Security: a project or user name is anyone's text; sourcing the file must not run it."""
    admin = cloud.admin_actor
    marker = tmp_path / "pwned"
    hostile = f"x$(touch {marker})`touch {marker}`'\"; touch {marker}; #\nexport OS_AUTH_URL=http://evil"
    project = services.project_create(actor=admin, name=hostile[:64])
    user = make_user(cloud, f"u$(touch {marker})")
    member = services.selectors.role_list().get(name="member")
    services.role_grant(actor=admin, role_id=member.id, user_id=user.id, project_id=project.id)
    client = Client()
    assert sign_in(client, user.name, "pw-12345678").status_code == 302
    client.post("/dashboard/switch", {"project_id": project.id})
    response = client.get("/dashboard/settings/openrc")
    filename = response["Content-Disposition"]
    assert filename.startswith('attachment; filename="x_touch_') and filename.endswith('-openrc.sh"')
    assert "/" not in filename.split("filename=")[1].strip('"')
    env = _sourced(response.content.decode(), password="pw")
    assert not marker.exists()
    assert (env["OS_PROJECT_NAME"], env["OS_USERNAME"]) == (hostile[:64], user.name)
    assert env["OS_AUTH_URL"] == "http://testserver/identity/v3"
    data = yaml.safe_load(client.get("/dashboard/settings/clouds.yaml").content)
    assert data["clouds"]["openstack"]["auth"]["project_name"] == hostile[:64]
    assert data["clouds"]["openstack"]["auth"]["auth_url"] == "http://testserver/identity/v3"


def test_without_a_project_there_is_nothing_to_download(client: Client, cloud: SeededCloud) -> None:
    make_user(cloud, "loner")
    sign_in(client, "loner", "pw-12345678")
    page = client.get("/dashboard/settings/api").content.decode()
    assert "You have no role on any project yet" in page and 'id="download-openrc"' not in page
    assert client.get("/dashboard/settings/openrc").status_code == 404
    assert client.get("/dashboard/settings/clouds.yaml").status_code == 404


def _sourced(script: str, *, password: str) -> dict[str, str]:
    """The OS_* environment after `source`-ing ``script`` in bash, ``password`` typed at its prompt."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "openrc.sh")
        path.write_text(script)
        done = subprocess.run(["bash", "-c", 'source "$1" >/dev/null && env -0', "bash", str(path)],
                              input=f"{password}\n", env=env, capture_output=True, text=True, check=False,
                              timeout=10, cwd=folder)
    assert done.returncode == 0, done.stderr
    pairs = (item.split("=", 1) for item in done.stdout.split("\0") if "=" in item)
    return {k: v for k, v in pairs if k.startswith("OS_")}
