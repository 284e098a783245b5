"""The serial console's socket (ws/compute/instances/<id>/console/), and the VNC console's
(ws/compute/instances/<id>/vnc/) alike, is the dashboard session's and acts
as its user in its session's project: another project's server answers exactly as an unknown id (4404,
the same message), nothing is asked of any node, and switching the session to a project that holds the
server is what opens it, not the id alone. Without a signed-in session the handshake is refused, and a
page of another site cannot open it (AllowedHostsOriginValidator wraps every socket: test_websocket)."""
from __future__ import annotations

import uuid
from typing import Any

import pytest
from asgiref.sync import async_to_sync

from apps.core.models import TaskRecord
from tests.compute.test_servers_api import boot_active
from tests.compute.test_servers_support import Env, env_fixture, image_dir_fixture  # noqa: F401
from tests.live_socket import console_socket

pytestmark = pytest.mark.django_db(transaction=True)


def close_of(user: Any, project_id: str, server_id: str, kind: str = "serial") -> tuple[str, int]:
    """(the status message, or the VNC socket's close reason; the close code) of a console socket refused
    after its handshake."""
    async def run() -> tuple[str, int]:
        sock = console_socket(user, project_id, server_id, kind=kind)
        assert (await sock.connect())[0]
        message = (await sock.receive_json_from())["message"] if kind == "serial" else None
        closed = await sock.receive_output(3)
        assert closed["type"] == "websocket.close", closed
        return (message or closed.get("reason", "")).replace(server_id, "<id>"), closed["code"]

    return async_to_sync(run)()


@pytest.mark.parametrize("kind", ["serial", "vnc"])
def test_another_projects_server_is_an_unknown_one_and_no_node_is_asked(env: Env, kind: str) -> None:
    inst = boot_active(env)
    olga = env.cloud.other_actor.user
    other_project = env.cloud.other_project.id
    theirs = close_of(olga, other_project, inst.id, kind)
    unknown = close_of(olga, other_project, str(uuid.uuid4()), kind)
    assert theirs == unknown and theirs[1] == 4404 and theirs[0], (theirs, unknown)
    # a session whose project is demo, of a user without a role there, acts in its own project instead
    assert close_of(olga, env.cloud.demo_project.id, inst.id, kind) == unknown
    assert not TaskRecord.objects.filter(name=f"workers.compute.{kind}_console").exists()
