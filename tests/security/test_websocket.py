"""The live socket (ws/live/) against the real channels layer (Redis): access is checked again when it
changes, not only at connect, and a page of another site cannot open it.

- A user removed from a project (its role revoked, its account disabled, the project disabled) used
  to keep receiving that project's events on a socket opened before: now the identity services tell
  the user's sockets (``access.changed``) and each leaves the groups it may no longer read, closing
  with 4403 when that was its session's project (4401 when the user is gone).
- ALLOWED_HOSTS was '*', so AllowedHostsOriginValidator let any Origin through (cross-site websocket
  hijacking with the victim's session cookie): it now defaults to the hosts of STRATUS_PUBLIC_URL and
  STRATUS_METADATA_URL plus localhost, overridable by STRATUS_ALLOWED_HOSTS.

The client is tests/live_socket.py's.
"""
from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.db import database_sync_to_async
from django.test import Client

from apps.core import events
from apps.identity import services
from apps.identity.models import Role, RoleAssignment
from portal.settings import allowed_hosts
from tests.api_client import SeededCloud
from tests.live_socket import Socket, communicator

pytestmark = pytest.mark.django_db(transaction=True)


def _grant_reader(cloud: SeededCloud, user: Any, project: Any) -> None:
    services.role_grant(actor=cloud.admin_actor, role_id=Role.objects.get(name="reader").id, user_id=user.id,
                        project_id=project.id)


def _revoke_all(cloud: SeededCloud, user: Any, project: Any) -> None:
    admin = cloud.admin_actor
    for assignment in list(RoleAssignment.objects.filter(user=user, project=project)):
        services.role_revoke(actor=admin, role_id=assignment.role_id, user_id=user.id, project_id=project.id)


async def _event(project_id: str, marker: str) -> None:
    """An event as the services publish it (apps.core.events.send_now, once their transaction commits)."""
    await sync_to_async(events.send_now)(events.project_group(project_id), {"id": marker})


def test_member_removed_from_its_project_is_closed_and_gets_no_more_events(cloud: SeededCloud) -> None:
    demo, user = cloud.demo_project, cloud.demo_user

    async def run() -> None:
        comm = communicator(user, demo.id)
        assert (await comm.connect())[0]
        assert (await comm.receive_json_from())["groups"] == [f"project.{demo.id}"]
        await _event(demo.id, "before")
        assert (await comm.receive_json_from())["event"] == {"id": "before"}
        await database_sync_to_async(_revoke_all)(cloud, user, demo)
        closed = await comm.receive_output(3)
        assert closed == {"type": "websocket.close", "code": 4403}
        await _event(demo.id, "after")
        assert await comm.receive_nothing(timeout=0.5)

    async_to_sync(run)()


def test_a_watched_project_is_left_when_the_role_on_it_goes(cloud: SeededCloud) -> None:
    demo, admin_project, user = cloud.demo_project, cloud.admin_project, cloud.demo_user
    _grant_reader(cloud, user, admin_project)

    async def run() -> None:
        comm = communicator(user, demo.id)
        assert (await comm.connect())[0]
        await comm.receive_json_from()
        await comm.send_json_to({"action": "watch", "project_id": admin_project.id})
        assert await comm.receive_json_from() == {"type": "watching", "project_id": admin_project.id}
        await _event(admin_project.id, "watched")
        assert (await comm.receive_json_from())["event"] == {"id": "watched"}
        await database_sync_to_async(_revoke_all)(cloud, user, admin_project)
        await _event(admin_project.id, "no longer yours")
        await _event(demo.id, "still yours")
        # the socket stays open on its own project, and the lost one's events stop
        assert (await comm.receive_json_from())["event"] == {"id": "still yours"}
        assert await comm.receive_nothing(timeout=0.5)
        await comm.disconnect()

    async_to_sync(run)()


@pytest.mark.parametrize("how", ["user disabled", "project disabled", "user deleted"])
def test_losing_the_account_or_the_project_closes_the_socket(cloud: SeededCloud, how: str) -> None:
    demo, user = cloud.demo_project, cloud.demo_user

    def change() -> None:
        admin = cloud.admin_actor
        if how == "user disabled":
            services.user_update(actor=admin, user_id=user.id, enabled=False)
        elif how == "project disabled":
            services.project_update(actor=admin, project_id=demo.id, enabled=False)
        else:
            services.user_delete(actor=admin, user_id=user.id)

    async def run() -> None:
        comm = communicator(user, demo.id)
        assert (await comm.connect())[0]
        await comm.receive_json_from()
        await database_sync_to_async(change)()
        closed = await comm.receive_output(3)
        assert closed["type"] == "websocket.close" and closed["code"] in (4401, 4403), closed
        await _event(demo.id, "after")
        assert await comm.receive_nothing(timeout=0.5)

    async_to_sync(run)()


def test_a_role_granted_elsewhere_leaves_the_socket_alone(cloud: SeededCloud) -> None:
    demo, admin_project, user = cloud.demo_project, cloud.admin_project, cloud.demo_user

    async def run() -> None:
        comm = communicator(user, demo.id)
        assert (await comm.connect())[0]
        await comm.receive_json_from()
        await database_sync_to_async(_grant_reader)(cloud, user, admin_project)
        await _event(demo.id, "kept")
        assert (await comm.receive_json_from())["event"] == {"id": "kept"}
        await comm.disconnect()

    async_to_sync(run)()


# ---- Origin ---------------------------------------------------------------------------------------

def test_allowed_hosts_default_to_the_clouds_own_urls_and_localhost() -> None:
    hosts = allowed_hosts({}, public_url="https://cloud.example.org:8443", metadata_url="http://10.0.0.1:8775/m/")
    assert "*" not in hosts
    assert set(hosts) == {"cloud.example.org", "10.0.0.1", "localhost", "127.0.0.1", "[::1]"}
    assert "[fd00::1]" in allowed_hosts({}, public_url="http://[fd00::1]:8000", metadata_url="http://127.0.0.1/")
    assert allowed_hosts({"STRATUS_ALLOWED_HOSTS": "a.example, .b.example"}, public_url="http://x",
                         metadata_url="http://y") == ["a.example", ".b.example"]


def test_running_settings_allow_no_wildcard(settings: Any) -> None:
    assert "*" not in settings.ALLOWED_HOSTS
    assert "127.0.0.1" in settings.ALLOWED_HOSTS and "localhost" in settings.ALLOWED_HOSTS


def _asgi_connect(origin: bytes, host: bytes = b"127.0.0.1:8000") -> tuple[bool, int | None]:
    from portal.asgi import application

    scope = {"type": "websocket", "path": "/ws/live/", "raw_path": b"/ws/live/", "query_string": b"",
             "headers": [(b"host", host), (b"origin", origin)], "subprotocols": [],
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000)}

    async def run() -> tuple[bool, int | None]:
        comm = Socket(application, scope)
        try:
            return await comm.connect()
        finally:
            await comm.wait(1)

    return async_to_sync(run)()


def test_a_foreign_origin_cannot_open_the_live_socket(cloud: SeededCloud) -> None:
    # through the whole ASGI application: the origin validator answers before the consumer does
    connected, code = _asgi_connect(b"http://evil.example")
    assert not connected and code != 4401, code  # refused before the consumer (which says 4401)
    connected, code = _asgi_connect(b"http://127.0.0.1:8000")
    assert not connected and code == 4401  # reached the consumer: no session, so 4401


def test_a_forged_host_is_refused_by_http() -> None:
    response = Client().get("/identity/v3", HTTP_HOST="evil.example")
    assert response.status_code == 400
