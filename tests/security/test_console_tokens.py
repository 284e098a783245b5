"""Console URL tokens (os-remote-consoles / os-getVNCConsole / os-getSerialConsole): another project's server
answers exactly as an unknown id and gets no token; the token, not anything the client sends, names the server;
it is stored only as a hash, opens one socket once, and that socket acts as the user who asked, checked when it
opens (a user disabled since then is refused, nothing is asked of any node)."""
from __future__ import annotations

import uuid
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import AnonymousUser

from apps.compute.models import ConsoleToken
from apps.core.models import TaskRecord
from apps.identity.models import User
from tests.compute.test_remote_consoles import V26, token_of
from tests.compute.test_servers_api import boot_active
from tests.compute.test_servers_support import Env, env_fixture, image_dir_fixture  # noqa: F401
from tests.live_socket import Session, Socket

pytestmark = pytest.mark.django_db(transaction=True)
VNC = {"remote_console": {"protocol": "vnc", "type": "novnc"}}


@pytest.fixture
def cloud_api() -> str:
    """The seeded cloud's clients speak to the compute API (as tests/compute/conftest.py has it)."""
    return "compute"


def test_another_projects_server_is_an_unknown_one_and_gets_no_token(env: Env) -> None:
    inst = boot_active(env)
    other = env.cloud.other
    theirs = other.post(f"servers/{inst.id}/remote-consoles", VNC, headers=V26)
    missing_id = str(uuid.uuid4())
    unknown = other.post(f"servers/{missing_id}/remote-consoles", VNC, headers=V26)
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json()["itemNotFound"]["message"].replace(inst.id, "<id>") == \
        unknown.json()["itemNotFound"]["message"].replace(missing_id, "<id>")
    action = other.post(f"servers/{inst.id}/action", {"os-getVNCConsole": {"type": "novnc"}})
    assert action.status_code == 404
    assert not ConsoleToken.objects.exists()


def open_with(token: str, query_extra: str = "") -> dict[str, Any]:
    from apps.compute.consumers import VncConsoleConsumer

    async def run() -> dict[str, Any]:
        query = f"token={token}{query_extra}".encode()
        scope = {"type": "websocket", "path": "/ws/console/vnc/", "query_string": query,
                 "headers": [], "subprotocols": [], "user": AnonymousUser(), "session": Session(),
                 "url_route": {"args": (), "kwargs": {}}}
        sock = Socket(VncConsoleConsumer.as_asgi(), scope)
        await sock.send_input({"type": "websocket.connect"})
        first = await sock.receive_output(3)
        if first["type"] == "websocket.accept":
            try:
                return await sock.receive_output(1)  # a refusal closes at once
            except TimeoutError:  # still open (the console is being opened); the wait ended the socket
                pass
        return first

    return async_to_sync(run)()


def test_the_token_names_the_server_is_single_use_and_acts_as_its_user(env: Env) -> None:
    mine = boot_active(env)
    boot_active(env, name="another")
    url = env.cloud.member.post(f"servers/{mine.id}/remote-consoles", VNC, headers=V26).json()["remote_console"]["url"]
    token = token_of(url)
    assert token not in str(list(ConsoleToken.objects.values_list()))  # only its hash is kept
    # a tampered token is no token; a server named in the query changes nothing
    assert open_with(token[:-1] + ("A" if token[-1] != "A" else "B"))["code"] == 4401
    assert open_with(token, f"&server_id={uuid.uuid4()}")["type"] == "websocket.accept"
    [record] = TaskRecord.objects.filter(name="workers.compute.vnc_console")
    assert record.kwargs["instance_id"] == mine.id
    assert open_with(token)["code"] == 4401  # used

    # the user who asked was disabled since: the socket opens nothing
    token = token_of(env.cloud.member.post(f"servers/{mine.id}/remote-consoles", VNC,
                                           headers=V26).json()["remote_console"]["url"])
    User.objects.filter(pk=env.cloud.member_actor.user.pk).update(enabled=False)
    closed = open_with(token)
    assert closed["type"] == "websocket.close" and closed["code"] == 4403
    assert TaskRecord.objects.filter(name="workers.compute.vnc_console").count() == 1
