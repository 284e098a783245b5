"""The serial console's socket (ws/compute/instances/<id>/console/, apps/compute/consumers.py) against the
real channel layer (Redis): who may open it, what it asks of the node (``workers.compute.serial_console``
with the socket's channel), and the relay protocol it speaks with the node (opened, output, typed input,
pings, ended, close). Here the test plays the node's relay on the channel layer: the real relay on a real
qemu guest is tests/browser/test_serial_console.py's; the driver's console is test_qemu_driver's.
The console page offers the live console only where the node's hypervisor has one (not the test driver's)."""
from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import AnonymousUser

from apps.compute import states
from apps.compute.models import ComputeNode
from apps.core.models import TaskRecord
from tests.compute.test_servers_api import boot_active
from tests.compute.test_servers_support import Env, env_fixture, image_dir_fixture, reload  # noqa: F401
from tests.dashboard.conftest import sign_in
from tests.identity import factories
from tests.live_socket import NodeRelay, Socket, console_socket

pytestmark = pytest.mark.django_db(transaction=True)

TASK = "workers.compute.serial_console"


async def status(sock: Socket) -> dict[str, Any]:
    message = await sock.receive_json_from()
    assert message["type"] == "status", message
    return message


def records() -> list[TaskRecord]:
    return list(TaskRecord.objects.filter(name=TASK))


def test_a_member_opens_the_console_and_the_socket_relays_both_ways(env: Env) -> None:
    inst = boot_active(env)
    alice = env.cloud.member_actor.user
    queue = reload(inst).node.queue

    async def run() -> None:
        sock = console_socket(alice, env.cloud.demo_project.id, inst.id)
        assert (await sock.connect())[0]
        assert (await status(sock))["state"] == "connecting"
        relay = await NodeRelay.for_task(TASK)
        record = relay.record
        assert record.queue == queue and record.kwargs["instance_id"] == inst.id
        assert record.resource_id == inst.id and record.user_id == alice.id and record.expires_at is not None
        typed_early = json.dumps({"input": "lost"})
        await sock.send_input({"type": "websocket.receive", "text": typed_early})  # before the node opened it
        await relay.open()
        assert (await status(sock))["state"] == "connected"
        await sock.send_input({"type": "websocket.receive", "text": json.dumps({"input": "echo hi\r"})})
        await sock.send_input({"type": "websocket.receive", "text": "not json"})  # ignored
        assert await relay.receive() == {"type": "console.input", "data": b"echo hi\r"}
        await relay.send({"type": "console.output", "data": b"echo hi\r\nhi\r\n"})
        assert await sock.receive_output(3) == {"type": "websocket.send", "bytes": b"echo hi\r\nhi\r\n"}
        await relay.send({"type": "console.ended", "reason": "The console has ended."})
        ended = await status(sock)
        assert ended["state"] == "ended" and ended["message"] == "The console has ended."
        assert await sock.receive_output(3) == {"type": "websocket.close", "code": 1000}

    async_to_sync(run)()


def test_closing_the_page_tells_the_relay(env: Env) -> None:
    inst = boot_active(env)
    alice = env.cloud.member_actor.user

    async def run() -> None:
        sock = console_socket(alice, env.cloud.demo_project.id, inst.id)
        assert (await sock.connect())[0]
        await status(sock)
        relay = await NodeRelay.for_task(TASK)
        await relay.open()
        assert (await status(sock))["state"] == "connected"
        await sock.disconnect()
        assert await relay.receive() == {"type": "console.close"}

    async_to_sync(run)()


def refused(user: Any, project_id: str, server_id: str) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(the status message, the close) of a console socket that is refused after its handshake."""
    async def run() -> tuple[dict[str, Any] | None, dict[str, Any]]:
        sock = console_socket(user, project_id, server_id)
        accepted, code = await sock.connect()
        if not accepted:
            return None, {"type": "websocket.close", "code": code}
        message = await status(sock)
        return message, await sock.receive_output(3)

    return async_to_sync(run)()


def test_a_reader_a_stopped_instance_and_a_test_driver_node_are_refused(env: Env) -> None:
    inst = boot_active(env)
    rita = env.cloud.reader_actor.user
    message, closed = refused(rita, env.cloud.demo_project.id, inst.id)
    assert closed["code"] == 4403 and message is not None and message["state"] == "ended"

    alice = env.cloud.member_actor.user
    stopped = reload(inst)  # as a stop reported by its node leaves it
    stopped.vm_state = states.STOPPED
    stopped.save(update_fields=["vm_state"])
    message, closed = refused(alice, env.cloud.demo_project.id, inst.id)
    assert closed["code"] == 4409 and "vm_state stopped" in message["message"]  # type: ignore[index]

    other = boot_active(env, name="on-test-node")
    ComputeNode.objects.filter(pk=reload(other).node_id).update(hypervisor_type="test")
    message, closed = refused(alice, env.cloud.demo_project.id, other.id)
    assert closed["code"] == 4409 and "has no serial console" in message["message"]  # type: ignore[index]
    assert records() == []  # nothing was asked of a node

    message, closed = refused(AnonymousUser(), env.cloud.demo_project.id, other.id)
    assert message is None and closed["code"] == 4401  # refused at the handshake


def test_the_page_offers_the_live_console_only_where_the_node_has_one(env: Env, client: Any) -> None:
    inst = boot_active(env)
    assert sign_in(client, "alice", factories.PASSWORD).status_code == 302
    page = f"/dashboard/compute/instances/{inst.id}/console"
    ComputeNode.objects.update(last_heartbeat=None)  # the log's read is refused at once (no node up)
    html = client.get(page).content.decode()
    assert 'id="serial-console"' in html and f'data-socket-path="/ws/compute/instances/{inst.id}/console/"' in html
    assert "/static/vendor/xterm/xterm.js" in html and "/static/compute/console.js" in html
    assert 'id="console-error"' in html  # the log part still says why it is not shown
    ComputeNode.objects.update(hypervisor_type="test")
    html = client.get(page).content.decode()
    assert 'id="serial-console"' not in html and "xterm" not in html and 'id="console-error"' in html
