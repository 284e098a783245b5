"""The VNC console's socket (ws/compute/instances/<id>/vnc/, apps/compute/consumers.VncConsoleConsumer)
against the real channel layer (Redis): what it asks of the node (``workers.compute.vnc_console`` with the
socket's channel), websockify's binary protocol that noVNC speaks (subprotocol ``binary``, the RFB bytes in
binary frames both ways, nothing else on the socket; a refusal is the close's code and reason), and who
may open it. Here the test plays the node's relay: the real relay is tests/workers/compute/test_console_relay.py's,
noVNC on a real qemu guest tests/browser/test_vnc_console.py's. The console page offers VNC where the
instance's node gives its domains graphics (not libvirt's test driver)."""
from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone

from apps.compute import states
from apps.compute.models import ComputeNode
from apps.compute.services import server_reports
from apps.core.models import TaskRecord
from tests.compute.test_servers_api import boot_active
from tests.compute.test_servers_support import Env, env_fixture, image_dir_fixture, reload  # noqa: F401
from tests.dashboard.conftest import sign_in
from tests.identity import factories
from tests.live_socket import NodeRelay, console_socket

pytestmark = pytest.mark.django_db(transaction=True)

TASK = "workers.compute.vnc_console"


def records() -> list[TaskRecord]:
    return list(TaskRecord.objects.filter(name=TASK))


def test_the_socket_carries_the_rfb_stream_both_ways_in_binary_frames(env: Env) -> None:
    inst = boot_active(env)
    alice = env.cloud.member_actor.user
    queue = reload(inst).node.queue

    async def run() -> None:
        sock = console_socket(alice, env.cloud.demo_project.id, inst.id, kind="vnc", subprotocols=("binary",))
        await sock.send_input({"type": "websocket.connect"})
        assert await sock.receive_output(3) == {"type": "websocket.accept", "subprotocol": "binary"}
        relay = await NodeRelay.for_task(TASK)
        record = relay.record
        assert record.queue == queue and record.kwargs["instance_id"] == inst.id and record.action == "getVNCConsole"
        assert record.user_id == alice.id and record.expires_at is not None
        await relay.open()
        await relay.send({"type": "console.output", "data": b"RFB 003.008\n"})  # the server speaks first
        assert await sock.receive_output(3) == {"type": "websocket.send", "bytes": b"RFB 003.008\n"}
        await sock.send_input({"type": "websocket.receive", "bytes": b"RFB 003.008\n"})
        assert await relay.receive() == {"type": "console.input", "data": b"RFB 003.008\n"}
        await sock.send_input({"type": "websocket.receive", "text": '{"input": "x"}'})  # not RFB: ignored
        big = bytes(range(256)) * 600  # 153,600 bytes (a clipboard, say): in order, in relay-sized pieces
        await sock.send_input({"type": "websocket.receive", "bytes": big})
        got = b""
        while len(got) < len(big):
            message = await relay.receive()
            assert message["type"] == "console.input" and len(message["data"]) <= 65536
            got += message["data"]
        assert got == big
        await relay.send({"type": "console.ended", "reason": "The console has ended."})
        assert await sock.receive_output(3) == {"type": "websocket.close", "code": 1000,
                                                "reason": "The console has ended."}

    async_to_sync(run)()


def test_closing_the_page_tells_the_relay_and_no_subprotocol_is_fine(env: Env) -> None:
    inst = boot_active(env)
    alice = env.cloud.member_actor.user

    async def run() -> None:
        sock = console_socket(alice, env.cloud.demo_project.id, inst.id, kind="vnc")
        await sock.send_input({"type": "websocket.connect"})
        assert await sock.receive_output(3) == {"type": "websocket.accept", "subprotocol": None}
        relay = await NodeRelay.for_task(TASK)
        await relay.open()
        await relay.send({"type": "console.output", "data": b"RFB 003.008\n"})
        assert (await sock.receive_output(3))["bytes"] == b"RFB 003.008\n"
        await sock.disconnect()
        assert await relay.receive() == {"type": "console.close"}

    async_to_sync(run)()


def close_of(user: Any, project_id: str, server_id: str) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        sock = console_socket(user, project_id, server_id, kind="vnc")
        await sock.send_input({"type": "websocket.connect"})
        first = await sock.receive_output(3)
        if first["type"] == "websocket.close":
            return first
        return await sock.receive_output(3)  # no status frame: the close is next

    return async_to_sync(run)()


def test_a_reader_a_stopped_instance_and_a_test_driver_node_are_refused(env: Env) -> None:
    inst = boot_active(env)
    closed = close_of(env.cloud.reader_actor.user, env.cloud.demo_project.id, inst.id)
    assert closed["type"] == "websocket.close" and closed["code"] == 4403

    alice = env.cloud.member_actor.user
    stopped = reload(inst)
    stopped.vm_state = states.STOPPED
    stopped.save(update_fields=["vm_state"])
    closed = close_of(alice, env.cloud.demo_project.id, inst.id)
    assert closed["code"] == 4409 and "vm_state stopped" in closed["reason"]
    assert len(closed["reason"].encode()) <= 123

    other = boot_active(env, name="on-test-node")
    ComputeNode.objects.filter(pk=reload(other).node_id).update(hypervisor_type="test")
    closed = close_of(alice, env.cloud.demo_project.id, other.id)
    assert closed["code"] == 4409 and "has no graphical (VNC) console" in closed["reason"]
    assert records() == []  # nothing was asked of a node


def graphics_reported(inst: Any, graphics: str) -> None:
    """What the instance's node reports in its power sync: its domain's graphics."""
    server_reports.server_power_states_report(host=inst.host, states={inst.id: states.RUNNING},
                                              graphics={inst.id: graphics})


def test_the_page_offers_vnc_where_the_domain_has_graphics(env: Env, client: Any) -> None:
    inst = boot_active(env)
    assert sign_in(client, "alice", factories.PASSWORD).status_code == 302
    page = f"/dashboard/compute/instances/{inst.id}/console"
    ComputeNode.objects.update(last_heartbeat=None)  # the log's read is refused at once (no node up)
    html = client.get(page + "?console=vnc").content.decode()  # its node has not said yet: nothing offered
    assert 'id="vnc-unknown"' in html and "console-tab-vnc" not in html and 'id="vnc-console"' not in html
    assert 'id="serial-console"' in html

    graphics_reported(inst, "vnc")  # as a qemu node's sync reads the domain's definition
    assert reload(inst).graphics == "vnc"
    html = client.get(page).content.decode()
    assert 'id="console-tab-vnc"' in html and 'id="serial-console"' in html and 'id="vnc-console"' not in html
    assert 'id="vnc-unknown"' not in html and 'id="vnc-none"' not in html
    html = client.get(page + "?console=vnc").content.decode()
    assert f'data-socket-path="/ws/compute/instances/{inst.id}/vnc/"' in html and 'id="serial-console"' not in html
    assert 'data-rfb="/static/vendor/novnc/core/rfb.js"' in html and "/static/compute/vnc.js" in html
    assert "xterm" not in html and "//cdn" not in html

    ComputeNode.objects.update(hypervisor_type="test")
    html = client.get(page + "?console=vnc").content.decode()
    assert 'id="vnc-console"' not in html and 'console-tab-vnc' not in html and "novnc" not in html
    assert 'id="vnc-none"' not in html and 'id="vnc-unknown"' not in html  # a test node: its log only


def test_a_domain_defined_before_vnc_is_said_to_have_no_screen_and_refused(env: Env, client: Any) -> None:
    inst = boot_active(env)
    other = boot_active(env, name="with-vnc")
    graphics_reported(inst, "")  # defined before its node gave domains a VNC server
    assert reload(inst).graphics == ""
    assert sign_in(client, "alice", factories.PASSWORD).status_code == 302
    ComputeNode.objects.update(last_heartbeat=None)
    html = client.get(f"/dashboard/compute/instances/{inst.id}/console?console=vnc").content.decode()
    assert 'id="vnc-none"' in html and "no graphical console" in html
    assert "console-tab-vnc" not in html and 'id="vnc-console"' not in html and "novnc" not in html
    assert 'id="serial-console"' in html  # its serial console is still offered

    ComputeNode.objects.update(last_heartbeat=timezone.now())
    closed = close_of(env.cloud.member_actor.user, env.cloud.demo_project.id, inst.id)
    assert closed["code"] == 4409 and "its domain has no graphics" in closed["reason"]
    assert records() == []  # nothing was asked of its node

    async def opened_for_unreported() -> None:  # not reported yet: its node is asked (and would say)
        sock = console_socket(env.cloud.member_actor.user, env.cloud.demo_project.id, other.id, kind="vnc")
        await sock.send_input({"type": "websocket.connect"})
        assert (await sock.receive_output(3))["type"] == "websocket.accept"
        assert (await NodeRelay.for_task(TASK)).record.kwargs["instance_id"] == other.id
        await sock.disconnect()

    async_to_sync(opened_for_unreported)()
