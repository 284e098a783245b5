"""Names, not ids, on the compute pages and the admin console (issue 11, item 3): the action log names
the user who acted (a link to the user's page for admins), an action's page names its user and project,
the instance page's queries stay constant as the log grows, and Django's admin greets the operator by
name."""
from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.compute.models import InstanceAction
from tests.compute.test_dashboard_instances import D, act, client_for, messages_of, spawned
from tests.compute.test_servers_support import Env, env_fixture, image_dir_fixture  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=False)


def _shown(html: str) -> str:
    return re.sub(r"<[^>]*>", " ", html)


def test_the_action_log_names_who_acted(env: Env) -> None:
    inst = spawned(env.boot(name="web"))
    alice_user = env.cloud.member_actor.user
    alice = client_for("alice")
    html = alice.get(f"{D}/instances/{inst.id}/").content.decode()
    log = re.search(r'id="actions-table".*?</table>', html, re.S)
    assert log and f'<span data-user="{alice_user.id}">alice</span>' in log.group(0)
    assert alice_user.id[:8] not in _shown(log.group(0))
    assert "/dashboard/identity/users/" not in log.group(0)  # members have no user pages

    admin = client_for("admin")
    html = admin.get(f"{D}/instances/{inst.id}/").content.decode()
    assert f'<a href="/dashboard/identity/users/{alice_user.id}/edit" data-user="{alice_user.id}">alice</a>' in html

    request_id = InstanceAction.objects.get(instance=inst, action="create").request_id
    page = alice.get(f"{D}/instances/{inst.id}/actions/{request_id}").content.decode()
    assert re.search(r'id="action-user"><span data-user="[^"]+">alice</span></dd>', page)
    assert f'id="action-project">{env.cloud.demo_project.name}</dd>' in page


def test_the_instance_page_costs_constant_queries_as_its_log_grows(env: Env) -> None:
    inst = spawned(env.boot(name="web"))
    alice = client_for("alice")
    url = f"{D}/instances/{inst.id}/"

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert alice.get(url).status_code == 200
        return len(ctx.captured_queries)

    alice.get(url)
    one = count()
    for _ in range(2):
        act(alice, inst, "lock")
        act(alice, inst, "unlock")
    assert InstanceAction.objects.filter(instance=inst).count() == 5
    assert count() == one


def test_the_admin_console_greets_by_name(env: Env) -> None:
    console = Client()
    signed_in = console.post("/admin/login/?next=/admin/", {"username": "admin", "password": "admin-pw"})
    assert signed_in.status_code == 302
    html = console.get("/admin/").content.decode()
    assert re.search(r"Welcome,\s*<strong>admin</strong>", html)
    assert env.cloud.admin_actor.user.id not in _shown(html)


def test_a_refused_action_names_the_instance(env: Env) -> None:
    inst = spawned(env.boot(name="web"))
    refused = act(client_for("alice"), inst, "start")
    assert "Cannot &#x27;start&#x27; instance web while it is in vm_state active" in messages_of(refused)
    assert inst.id not in messages_of(refused)
