"""The live socket: who may connect, which groups it joins, what it forwards."""
from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.models import AnonymousUser
from django.db import transaction

from apps.core import events
from apps.dashboard.consumers import close_session_sockets
from tests.api_client import SeededCloud
from tests.dashboard.conftest import make_user
from tests.live_socket import communicator

pytestmark = pytest.mark.django_db(transaction=True)


def test_anonymous_sockets_are_closed(cloud: SeededCloud) -> None:
    async def run() -> None:
        comm = communicator(AnonymousUser(), None)
        connected, code = await comm.connect()
        assert not connected and code == 4401

    async_to_sync(run)()


def test_member_joins_its_project_and_receives_its_events_only(cloud: SeededCloud) -> None:
    demo, admin_project = cloud.demo_project, cloud.admin_project

    async def run() -> None:
        comm = communicator(cloud.demo_user, demo.id)
        connected, _ = await comm.connect()
        assert connected
        hello = await comm.receive_json_from()
        assert hello == {"type": "hello", "groups": [f"project.{demo.id}"]}
        layer = get_channel_layer()
        await layer.group_send(f"project.{admin_project.id}", {"type": "stratus.event", "event": {"id": "no"}})
        await layer.group_send(f"project.{demo.id}", {"type": "stratus.event", "event": {"id": "yes"}})
        assert (await comm.receive_json_from(timeout=3))["event"] == {"id": "yes"}
        # Watching a project the user has no role in is not granted.
        await comm.send_json_to({"action": "watch", "project_id": admin_project.id})
        await comm.send_json_to({"action": "ping"})
        assert await comm.receive_json_from(timeout=3) == {"type": "pong"}
        await comm.disconnect()

    async_to_sync(run)()


def test_session_project_without_a_role_is_not_joined(cloud: SeededCloud) -> None:
    async def run() -> None:
        comm = communicator(cloud.demo_user, cloud.admin_project.id)
        connected, _ = await comm.connect()
        assert connected
        assert (await comm.receive_json_from())["groups"] == []
        await comm.disconnect()

    async_to_sync(run)()


def test_admin_joins_the_admin_group_and_gets_published_events(cloud: SeededCloud) -> None:
    admin_project, demo = cloud.admin_project, cloud.demo_project

    async def run() -> None:
        comm = communicator(cloud.admin_user, admin_project.id)
        await comm.connect()
        assert (await comm.receive_json_from())["groups"] == [f"project.{admin_project.id}", "admin"]
        await comm.send_json_to({"action": "watch", "project_id": demo.id})
        assert await comm.receive_json_from(timeout=3) == {"type": "watching", "project_id": demo.id}

        def write() -> None:
            with transaction.atomic():
                make_user(cloud, "fresh")

        from channels.db import database_sync_to_async
        await database_sync_to_async(write)()
        event = (await comm.receive_json_from(timeout=3))["event"]
        assert (event["kind"], event["resource"], event["data"]) == ("created", "user", {"name": "fresh"})
        await comm.disconnect()

    async_to_sync(run)()


def test_a_rolled_back_write_publishes_nothing(cloud: SeededCloud) -> None:
    admin_project = cloud.admin_project

    async def run() -> None:
        comm = communicator(cloud.admin_user, admin_project.id)
        await comm.connect()
        await comm.receive_json_from()

        def write() -> None:
            try:
                with transaction.atomic():
                    events.publish(project_id=None, kind="created", resource="thing", resource_id="1")
                    raise RuntimeError("roll back")
            except RuntimeError:
                pass
            with transaction.atomic():
                events.publish(project_id=None, kind="created", resource="thing", resource_id="2")

        from channels.db import database_sync_to_async
        await database_sync_to_async(write)()
        assert (await comm.receive_json_from(timeout=3))["event"]["id"] == "2"
        assert await comm.receive_nothing(timeout=0.3)
        await comm.disconnect()

    async_to_sync(run)()


def test_signing_out_closes_the_sessions_sockets(cloud: SeededCloud) -> None:
    demo = cloud.demo_project

    async def run() -> None:
        mine = communicator(cloud.demo_user, demo.id, session_key="k" * 32)
        other = communicator(cloud.demo_user, demo.id, session_key="o" * 32)
        for comm in (mine, other):
            await comm.connect()
            await comm.receive_json_from()
        from channels.db import database_sync_to_async
        await database_sync_to_async(close_session_sockets)("k" * 32)
        closed = await mine.receive_output(3)
        assert closed == {"type": "websocket.close", "code": 4401}
        assert await other.receive_nothing(timeout=0.3)
        await other.disconnect()

    async_to_sync(run)()
