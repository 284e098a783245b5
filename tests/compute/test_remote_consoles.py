"""Console URLs through the Nova API: ``POST /servers/{id}/remote-consoles`` (microversion 2.6; vnc/novnc and
serial/serial) and the actions before it (os-getVNCConsole, os-getSerialConsole), checked against tempest's
response schemas; the token in the URL is short-lived, single-use, stored only as its sha256 and scoped to
the server, its project and the caller; the console sockets (ws/console/vnc/, ws/console/serial/) take it
instead of a dashboard session and open the console as that caller (the task the node is sent), and the
page the noVNC URL names carries it to noVNC. The same refusals as the dashboard's console (reader 403,
another project's server 404, a test-driver node 400, a stopped server 409).

The API advertises 2.6 and later (serializers.MAX_VERSION; tests/compute/test_microversions.py checks
each version), so clients that negotiate (openstacksdk, `openstack console url show` in
tests/browser/test_vnc_console.py) reach os-remote-consoles; those pinned to 2.1 use the actions."""
from __future__ import annotations

import hashlib
import importlib
import sys
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema
import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from apps.compute import states
from apps.compute.models import ComputeNode, ConsoleToken, Instance
from apps.core.models import TaskRecord
from tests.compute.helpers import nova_error
from tests.compute.test_servers_api import TEMPEST_SITE, boot_active
from tests.compute.test_servers_support import Env, env_fixture, image_dir_fixture, reload  # noqa: F401
from tests.live_socket import Session, Socket

pytestmark = pytest.mark.django_db(transaction=True)

V26 = {"OpenStack-API-Version": "compute 2.6"}


V25 = {"OpenStack-API-Version": "compute 2.5"}


def schema(version: str, name: str) -> dict[str, Any]:
    if not TEMPEST_SITE:
        pytest.skip("the tempest venv (.venv-tempest) is not built")
    if str(TEMPEST_SITE[0]) not in sys.path:
        sys.path.append(str(TEMPEST_SITE[0]))
    return getattr(importlib.import_module(f"tempest.lib.api_schema.response.compute.{version}.servers"), name)


def valid(response: Any, version: str, name: str) -> dict[str, Any]:
    expected = schema(version, name)
    assert response.status_code in expected["status_code"], (response.status_code, response.content[:600])
    body = response.json()
    jsonschema.Draft4Validator(expected["response_body"]).validate(body)
    return body


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


def test_remote_consoles_answer_urls_with_a_hashed_scoped_expiring_token(env: Env) -> None:
    inst = boot_active(env)
    api = env.cloud.member
    before = timezone.now()
    body = valid(api.post(f"servers/{inst.id}/remote-consoles",
                          {"remote_console": {"protocol": "vnc", "type": "novnc"}}, headers=V26),
                 "v2_6", "get_remote_consoles")["remote_console"]
    assert body["protocol"] == "vnc" and body["type"] == "novnc"
    public = settings.STRATUS_PUBLIC_URL.rstrip("/")
    assert body["url"].startswith(f"{public}/console/vnc/?token=")
    token = token_of(body["url"])
    assert len(token) >= 40
    record = ConsoleToken.objects.get()
    assert record.id == hashlib.sha256(token.encode()).hexdigest()  # only the hash is stored
    assert token not in str(list(ConsoleToken.objects.values()))
    assert (record.instance_id, record.project_id, record.user_id) == (inst.id, inst.project_id,
                                                                       env.cloud.member_actor.user.id)
    assert record.kind == "vnc" and record.used_at is None
    ttl = timedelta(seconds=settings.STRATUS_CONSOLE_TOKEN_SECONDS)
    assert before + ttl <= record.expires_at <= timezone.now() + ttl

    serial = valid(api.post(f"servers/{inst.id}/remote-consoles",
                            {"remote_console": {"protocol": "serial", "type": "serial"}}, headers=V26),
                   "v2_6", "get_remote_consoles")["remote_console"]
    scheme, rest = public.split("://", 1)
    assert serial["url"].startswith(f"{'wss' if scheme == 'https' else 'ws'}://{rest}/ws/console/serial/?token=")
    assert token_of(serial["url"]) != token and ConsoleToken.objects.count() == 2

    # the actions before 2.6
    vnc = valid(api.post(f"servers/{inst.id}/action", {"os-getVNCConsole": {"type": "novnc"}}),
                "v2_1", "get_vnc_console")["console"]
    assert vnc["type"] == "novnc" and "/console/vnc/?token=" in vnc["url"]
    old_serial = api.post(f"servers/{inst.id}/action", {"os-getSerialConsole": {"type": "serial"}}, headers=V25)
    assert old_serial.status_code == 200 and old_serial.json()["console"]["type"] == "serial"
    assert "/ws/console/serial/?token=" in old_serial.json()["console"]["url"]
    # a dead token goes when the next one is made
    ConsoleToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    api.post(f"servers/{inst.id}/remote-consoles", {"remote_console": {"protocol": "vnc", "type": "novnc"}},
             headers=V26)
    assert ConsoleToken.objects.count() == 1


def test_refusals(env: Env) -> None:
    inst = boot_active(env)
    api = env.cloud.member
    url = f"servers/{inst.id}/remote-consoles"
    vnc = {"remote_console": {"protocol": "vnc", "type": "novnc"}}
    nova_error(api.post(url, vnc, headers=V25), 404)  # before 2.6 there is no such resource
    nova_error(api.post(url, vnc), 404)
    for bad in ({"remote_console": {"protocol": "vnc"}}, {"remote_console": {"protocol": "ftp", "type": "novnc"}},
                {"remote_console": {"protocol": "vnc", "type": "novnc", "x": 1}}, {"console": {}}, []):
        nova_error(api.post(url, bad, headers=V26), 400, "badRequest")
    # a type Nova knows that this cloud does not offer, or a protocol that does not fit it
    for protocol, kind in (("spice", "spice-html5"), ("vnc", "xvpvnc"), ("vnc", "serial"), ("serial", "novnc")):
        error = nova_error(api.post(url, {"remote_console": {"protocol": protocol, "type": kind}}, headers=V26), 400)
        assert "Unavailable console type" in error["message"]
    nova_error(api.post(f"servers/{inst.id}/action", {"os-getVNCConsole": {"type": "spice"}}), 400)
    nova_error(api.post(f"servers/{inst.id}/action", {"os-getSerialConsole": {}}), 400)
    # the actions are gone from 2.6 (Nova's bare 404 for a method of no such version)
    nova_error(api.post(f"servers/{inst.id}/action", {"os-getVNCConsole": {"type": "novnc"}}, headers=V26), 404)
    nova_error(env.cloud.reader.post(url, vnc, headers=V26), 403)
    nova_error(api.post("servers/00000000-0000-0000-0000-000000000000/remote-consoles", vnc, headers=V26), 404)

    stopped = reload(inst)
    stopped.vm_state = states.STOPPED
    stopped.save(update_fields=["vm_state"])
    nova_error(api.post(url, vnc, headers=V26), 409, "conflictingRequest")
    other = boot_active(env, name="on-test-node")
    ComputeNode.objects.filter(pk=reload(other).node_id).update(hypervisor_type="test")
    for body in (vnc, {"remote_console": {"protocol": "serial", "type": "serial"}}):
        error = nova_error(api.post(f"servers/{other.id}/remote-consoles", body, headers=V26), 400)
        assert "has no" in error["message"]
    # a domain its node reported without graphics (defined before the node gave domains VNC): no VNC URL
    ComputeNode.objects.filter(pk=reload(other).node_id).update(hypervisor_type="QEMU")
    Instance.objects.filter(pk=other.id).update(graphics="")
    error = nova_error(api.post(f"servers/{other.id}/remote-consoles", vnc, headers=V26), 400)
    assert "has no graphical (VNC) console: its domain has no graphics" in error["message"]
    assert not ConsoleToken.objects.exists()


def token_socket(kind: str, token: str) -> Socket:
    """A console URL's socket, with no dashboard session (an anonymous user)."""
    from apps.compute.consumers import SerialConsoleConsumer, VncConsoleConsumer

    path = f"/ws/console/{kind}/"
    scope = {"type": "websocket", "path": path, "query_string": f"token={token}".encode(), "headers": [],
             "subprotocols": ["binary"], "user": AnonymousUser(), "session": Session(),
             "url_route": {"args": (), "kwargs": {}}}
    return Socket((VncConsoleConsumer if kind == "vnc" else SerialConsoleConsumer).as_asgi(), scope)


def connect(kind: str, token: str) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        sock = token_socket(kind, token)
        await sock.send_input({"type": "websocket.connect"})
        first = await sock.receive_output(3)
        if first["type"] == "websocket.accept" and kind == "serial":
            assert (await sock.receive_json_from())["state"] == "connecting"
        await sock.disconnect()
        return first

    return async_to_sync(run)()


def test_the_token_opens_the_console_socket_once_as_the_caller(env: Env) -> None:
    inst = boot_active(env)
    alice = env.cloud.member_actor.user
    queue = reload(inst).node.queue

    def url(protocol: str, kind: str) -> str:
        response = env.cloud.member.post(f"servers/{inst.id}/remote-consoles",
                                         {"remote_console": {"protocol": protocol, "type": kind}}, headers=V26)
        assert response.status_code == 200, response.content
        return str(response.json()["remote_console"]["url"])

    vnc = token_of(url("vnc", "novnc"))
    assert connect("serial", vnc)["code"] == 4401  # a VNC token does not open the serial console ...
    assert connect("vnc", vnc) == {"type": "websocket.accept", "subprotocol": "binary"}  # ... nor is it used up
    [record] = TaskRecord.objects.filter(name="workers.compute.vnc_console")
    assert record.queue == queue and record.kwargs["instance_id"] == inst.id and record.user_id == alice.id
    assert ConsoleToken.objects.get().used_at is not None
    assert connect("vnc", vnc) == {"type": "websocket.close", "code": 4401}  # single use

    serial = token_of(url("serial", "serial"))
    assert connect("serial", serial)["type"] == "websocket.accept"
    assert TaskRecord.objects.filter(name="workers.compute.serial_console", user_id=alice.id).count() == 1
    expired = token_of(url("vnc", "novnc"))
    ConsoleToken.objects.filter(used_at__isnull=True).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert connect("vnc", expired)["code"] == 4401
    assert connect("vnc", "not-a-token")["code"] == 4401 and connect("vnc", "")["code"] == 4401
    assert TaskRecord.objects.filter(name="workers.compute.vnc_console").count() == 1


def test_the_novnc_page_carries_the_token_to_noVNC(env: Env, client: Any) -> None:
    inst = boot_active(env)
    response = env.cloud.member.post(f"servers/{inst.id}/remote-consoles",
                                     {"remote_console": {"protocol": "vnc", "type": "novnc"}}, headers=V26)
    url = urlsplit(response.json()["remote_console"]["url"])
    page = client.get(f"{url.path}?{url.query}")  # no dashboard session
    assert page.status_code == 200
    html = page.content.decode()
    assert f'data-socket-path="/ws/console/vnc/?token={token_of(url.geturl())}"' in html
    assert "/static/vendor/novnc/core/rfb.js" in html and "/static/compute/vnc.js" in html
    assert page["Cache-Control"] == "no-store" and page["Referrer-Policy"] == "no-referrer"
    assert ConsoleToken.objects.get().used_at is None  # the page does not use the token; the socket does
    evil = client.get('/console/vnc/?token="><script>alert(1)</script>').content.decode()
    assert "<script>alert(1)" not in evil
