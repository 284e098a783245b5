"""Keystone with the real `openstack` CLI: the flows a user types (issue 2). Each call costs about a
second, so breadth lives in test_identity_sdk.py; here are the commands themselves, and the setup and
checks around them (a user to add, a list that shows the change, a 404 after a delete) go through
openstacksdk in-process."""
from __future__ import annotations

import json
import secrets
import subprocess

import pytest
from openstack import exceptions as sdk_exceptions

from tests.conftest import VENV_BIN

pytestmark = pytest.mark.e2e


def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"  # the session's cloud is shared by every e2e test


def _json(result: subprocess.CompletedProcess) -> dict | list:
    return json.loads(result.stdout)


def _refused(result: subprocess.CompletedProcess, status: int) -> None:
    assert result.returncode != 0, result.stdout
    assert f"HTTP {status}" in result.stderr, result.stderr


def _gone(result: subprocess.CompletedProcess, kind: str) -> None:
    """A name-or-id lookup of something deleted: the CLI got 404 for the id and an empty list for
    the name filter, and says so."""
    assert result.returncode != 0, result.stdout
    assert f"no {kind} found for" in result.stderr.lower() or "HTTP 404" in result.stderr, result.stderr


def _sdk_gone(find) -> None:  # type: ignore[no-untyped-def]
    """The SDK's get of something deleted: a 404."""
    with pytest.raises(sdk_exceptions.NotFoundException):
        find()


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """The CLI with an environment of the test's own (token or application credential auth)."""
    return subprocess.run([str(VENV_BIN / "openstack"), *args], env=env, capture_output=True, text=True, timeout=120)


def test_done_when_member_of_p1_gets_a_token_in_p1_and_nowhere_else(live_cloud):
    """openstack project create p1 && openstack user create --project p1 --password x u1 &&
    openstack role add --project p1 --user u1 member; then u1's token works in p1 only."""
    p1, u1 = _name("p1"), _name("u1")
    project = _json(live_cloud.openstack("project", "create", p1, "-f", "json"))
    user = _json(live_cloud.openstack("user", "create", "--project", p1, "--password", "x", u1, "-f", "json"))
    assert user["default_project_id"] == project["id"]
    live_cloud.openstack("role", "add", "--project", p1, "--user", u1, "member")

    token = _json(live_cloud.openstack("token", "issue", "-f", "json", user=u1, project=p1, password="x"))
    assert token["project_id"] == project["id"] and token["user_id"] == user["id"]

    refused = live_cloud.openstack("token", "issue", "-f", "json", user=u1, project="demo", password="x", check=False)
    _refused(refused, 401)

    admin = live_cloud.sdk()
    assignments = list(admin.identity.role_assignments(user_id=user["id"], scope_project_id=project["id"]))
    assert [(a.role["id"], a.user["id"], a.scope["project"]["id"]) for a in assignments] == [
        (admin.identity.find_role("member", ignore_missing=False).id, user["id"], project["id"])]


def test_token_issue_then_revoke_refuses_the_token(live_cloud):
    token = live_cloud.openstack("token", "issue", "-f", "value", "-c", "id").stdout.strip()
    env = live_cloud.cli_env()
    for key in ("OS_USERNAME", "OS_PASSWORD", "OS_USER_DOMAIN_NAME"):
        env.pop(key)
    env.update(OS_AUTH_TYPE="token", OS_TOKEN=token)
    works = _run("project", "show", "admin", "-f", "json", env=env)
    assert works.returncode == 0, works.stderr
    assert json.loads(works.stdout)["name"] == "admin"

    live_cloud.openstack("token", "revoke", token)
    _refused(_run("project", "show", "admin", "-f", "json", env=env), 401)
    _refused(live_cloud.openstack("token", "revoke", token, check=False), 404)


def test_project_create_list_show_set_delete(live_cloud):
    name, renamed = _name("proj"), _name("proj-renamed")
    created = _json(live_cloud.openstack("project", "create", "--description", "first", "--tag", "blue", name,
                                         "-f", "json"))
    assert created["domain_id"] == "default" and created["enabled"] is True and created["tags"] == ["blue"]
    admin = live_cloud.sdk()
    assert name in {p.name for p in admin.identity.projects()}

    live_cloud.openstack("project", "set", "--name", renamed, "--description", "second", "--disable", name)
    shown = _json(live_cloud.openstack("project", "show", renamed, "-f", "json"))
    assert (shown["id"], shown["description"], shown["enabled"]) == (created["id"], "second", False)

    live_cloud.openstack("project", "delete", renamed)
    _gone(live_cloud.openstack("project", "show", created["id"], check=False), "project")


def test_user_create_list_show_disable_delete(live_cloud):
    name = _name("user")
    created = _json(live_cloud.openstack("user", "create", "--project", "demo", "--password", "pw1",
                                         "--email", "u@example.org", name, "-f", "json"))
    admin = live_cloud.sdk()
    admin.identity.assign_project_role_to_user(admin.identity.find_project("demo", ignore_missing=False),
                                               created["id"], admin.identity.find_role("reader", ignore_missing=False))
    assert name in {u.name for u in admin.identity.users()}
    shown = _json(live_cloud.openstack("user", "show", name, "-f", "json"))
    assert (shown["id"], shown["email"], shown["enabled"]) == (created["id"], "u@example.org", True)

    assert live_cloud.sdk(user=name, project="demo", password="pw1").authorize()
    live_cloud.openstack("user", "set", "--disable", name)
    _refused(live_cloud.openstack("token", "issue", user=name, project="demo", password="pw1", check=False), 401)

    live_cloud.openstack("user", "delete", name)
    _sdk_gone(lambda: admin.identity.get_user(created["id"]))


def test_group_create_add_user_list_delete(live_cloud):
    group, user = _name("group"), _name("user")
    admin = live_cloud.sdk()
    user_id = admin.identity.create_user(name=user, password="pw", domain_id="default").id
    live_cloud.openstack("group", "create", "--description", "testers", group)
    live_cloud.openstack("group", "add", "user", group, user)
    contains = live_cloud.openstack("group", "contains", "user", group, user)
    assert f"{user} in group {group}" in contains.stdout
    assert [g.name for g in admin.identity.user_groups(user_id)] == [group]
    group_id = admin.identity.find_group(group, ignore_missing=False).id
    live_cloud.openstack("group", "delete", group)
    _sdk_gone(lambda: admin.identity.get_group(group_id))


def test_role_create_list_add_assignment_remove_delete(live_cloud):
    role, user = _name("role"), _name("user")
    admin = live_cloud.sdk()
    user_id = admin.identity.create_user(name=user, password="pw", domain_id="default").id
    live_cloud.openstack("role", "create", role)
    assert {"admin", "member", "reader", role} <= {r.name for r in admin.identity.roles()}

    live_cloud.openstack("role", "add", "--project", "demo", "--user", user, role)
    listed = _json(live_cloud.openstack("role", "assignment", "list", "--user", user, "--names", "-f", "json"))
    assert [(a["Role"], a["User"], a["Project"]) for a in listed] == [(role, f"{user}@Default", "demo@Default")]

    live_cloud.openstack("role", "remove", "--project", "demo", "--user", user, role)
    assert list(admin.identity.role_assignments(user_id=user_id)) == []
    live_cloud.openstack("role", "delete", role)


def test_application_credential_create_and_authenticate_with_it(live_cloud):
    name = _name("appcred")
    cred = _json(live_cloud.openstack("application", "credential", "create", "--description", "ci", name,
                                      "-f", "json", user="demo"))
    assert cred["Secret"] and [r["name"] for r in cred["Roles"]] == ["member", "reader"]

    env = {k: v for k, v in live_cloud.cli_env(user="demo").items()
           if k not in {"OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_NAME", "OS_USER_DOMAIN_NAME",
                        "OS_PROJECT_DOMAIN_NAME"}}
    env.update(OS_AUTH_TYPE="v3applicationcredential", OS_APPLICATION_CREDENTIAL_ID=cred["ID"],
               OS_APPLICATION_CREDENTIAL_SECRET=cred["Secret"])
    token = _run("token", "issue", "-f", "json", env=env)
    assert token.returncode == 0, token.stderr
    demo = live_cloud.sdk().identity.find_project("demo", ignore_missing=False)
    assert json.loads(token.stdout)["project_id"] == demo.id

    live_cloud.openstack("application", "credential", "delete", name, user="demo")
    _refused(_run("token", "issue", "-f", "json", env=env), 401)
