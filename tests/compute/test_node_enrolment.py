"""Node enrolment (issue 16, first step): tokens made by an admin, exchanged once at
POST /v1/nodes/enrol for what a node needs to join; refusals change nothing; the node_token command."""
from __future__ import annotations

import io
import json
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from apps.compute.models import ComputeNode, EnrolledNode, NodeToken
from apps.compute.selectors import node_enrolment as enrol_selectors
from apps.compute.services import node_enrolment as enrol
from apps.core.errors import BadRequest, Forbidden, NotFound, Unauthorized
from apps.identity.services import token_hash

pytestmark = pytest.mark.django_db


def state() -> list[tuple]:
    """Everything an exchange may change."""
    return [list(NodeToken.objects.order_by("id").values_list("id", "used_at", "used_from", "revoked_at")),
            list(EnrolledNode.objects.values_list("name", "role", "address", "enrolled_at")),
            list(ComputeNode.objects.values_list("host", "host_ip"))]


def make(role: str = "compute", name: str = "node2", hours: float = 24) -> enrol.IssuedNodeToken:
    return enrol.node_token_create(actor=None, role=role, name=name, expires_hours=hours)


def test_create_stores_only_the_hash_and_validates(settings: Any) -> None:
    issued = make()
    assert issued.token.startswith("stn_") and len(issued.token) > 40
    row = NodeToken.objects.get(pk=issued.record.pk)
    assert row.token_hash == token_hash(issued.token) and issued.token not in row.token_hash
    assert (row.role, row.name, row.used_at, row.revoked_at) == ("compute", "node2", None, None)
    assert timedelta(hours=23.9) < row.expires_at - timezone.now() <= timedelta(hours=24)
    for bad in ({"role": "controller"}, {"name": "bad name"}, {"name": "-x"}, {"hours": 0}, {"hours": 24 * 31}):
        with pytest.raises(BadRequest):
            make(**bad)
    assert NodeToken.objects.count() == 1


def test_exchange_once_gives_the_join_settings_and_records_the_node(settings: Any) -> None:
    settings.STRATUS_NODE_BROKER_URL = "redis://:pw@10.0.0.1:6379/0"
    settings.STRATUS_PUBLIC_URL = "http://10.0.0.1:8000/"
    settings.STRATUS_CELERY_KEYPREFIX = ""
    issued = make()
    join = enrol.node_enrol(token=issued.token, name="node2", role="compute", address="10.0.0.2")
    assert (join.queue, join.broker_url, join.controller_url, join.ca_pem) == (
        "compute.node2", "redis://:pw@10.0.0.1:6379/0", "http://10.0.0.1:8000", None)
    assert join.control_queue == settings.CELERY_TASK_DEFAULT_QUEUE
    env = join.environment()
    assert env["STRATUS_HOST"] == env["STRATUS_COMPUTE_HOST"] == "node2"
    assert env["CELERY_BROKER_URL"] == env["REDIS_URL"] == "redis://:pw@10.0.0.1:6379/0"
    assert "DATABASE_URL" not in env  # never handed out
    node = EnrolledNode.objects.get()
    assert (node.name, node.role, node.address, node.token_id) == ("node2", "compute", "10.0.0.2", issued.record.pk)
    compute = ComputeNode.objects.get(host="node2")
    assert compute.host_ip == "10.0.0.2" and compute.last_heartbeat is None  # down until its agent registers
    row = NodeToken.objects.get()
    assert row.used_at is not None and row.used_from == "10.0.0.2"

    before = state()
    with pytest.raises(Unauthorized):  # used
        enrol.node_enrol(token=issued.token, name="node2", role="compute", address="10.0.0.3")
    assert state() == before

    # a second token for the same node updates its record (a re-installed machine)
    again = make()
    enrol.node_enrol(token=again.token, address="10.0.0.9")
    assert EnrolledNode.objects.get().address == "10.0.0.9"
    assert ComputeNode.objects.get().host_ip == "10.0.0.9" and ComputeNode.objects.count() == 1


def test_network_and_storage_nodes_get_their_queue(settings: Any) -> None:
    settings.STRATUS_METADATA_SECRET, settings.STRATUS_PUBLIC_URL = "md-s3cret", "http://ctl.example:8000/"
    for role in ("network", "storage"):
        join = enrol.node_enrol(token=make(role=role, name="net1").token)
        assert join.queue == f"{role}.net1" and "STRATUS_COMPUTE_HOST" not in join.environment()
        # the network node's metadata proxies reach the controller's metadata service and sign for it;
        # no other role is given the secret
        metadata = {k: v for k, v in join.environment().items() if k.startswith("STRATUS_METADATA_")}
        assert metadata == ({"STRATUS_METADATA_URL": "http://ctl.example:8000/metadata/",
                             "STRATUS_METADATA_SECRET": "md-s3cret"} if role == "network" else {}), role
    compute = enrol.node_enrol(token=make(role="compute", name="cmp1").token).environment()
    assert not any(k.startswith("STRATUS_METADATA_") for k in compute)
    assert list(ComputeNode.objects.values_list("host", flat=True)) == ["cmp1"]
    assert sorted(EnrolledNode.objects.values_list("role", flat=True)) == ["compute", "network", "storage"]


def test_revoked_expired_unknown_and_mismatched_are_refused_and_change_nothing() -> None:
    revoked, expired, other = make(name="r1"), make(name="e1"), make(name="o1")
    enrol.node_token_revoke(actor=None, token_id=revoked.record.id)
    NodeToken.objects.filter(pk=expired.record.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    before = state()
    for token in (revoked.token, expired.token, "stn_" + "A" * 43, "", "nope", other.token[:-1]):
        with pytest.raises(Unauthorized):
            enrol.node_enrol(token=token, address="10.0.0.5")
    for kw in ({"name": "someone-else"}, {"role": "storage"}):
        with pytest.raises(Forbidden):
            enrol.node_enrol(token=other.token, address="10.0.0.5", **kw)
    with pytest.raises(BadRequest):
        enrol.node_enrol(token=other.token, address="not-an-ip")
    assert state() == before
    # the mismatch did not spend it
    assert enrol.node_enrol(token=other.token).node.name == "o1"
    with pytest.raises(NotFound):
        enrol.node_token_revoke(actor=None, token_id="missing")


def test_tokens_listed_by_admins_only(cloud: Any) -> None:
    make()
    with pytest.raises(Forbidden):
        enrol_selectors.node_token_list(actor=cloud.member_actor)
    assert enrol_selectors.node_token_list(actor=cloud.admin_actor).count() == 1


# ---- the endpoint ------------------------------------------------------------------------------

def post(body: Any) -> Any:
    return Client().post("/v1/nodes/enrol", data=json.dumps(body), content_type="application/json")


def test_endpoint_exchanges_once_then_refuses_in_keystone_format(settings: Any) -> None:
    settings.STRATUS_NODE_CA_FILE = ""
    issued = make(role="storage", name="stor1")
    response = post({"token": issued.token, "name": "stor1", "role": "storage", "address": "192.0.2.7"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["queue"] == "storage.stor1" and body["ca"] is None
    assert body["node"] == {"name": "stor1", "role": "storage", "address": "192.0.2.7", "queue": "storage.stor1",
                            "enrolled_at": body["node"]["enrolled_at"]}
    assert body["environment"]["STRATUS_HOST"] == "stor1"
    assert body["broker_url"] == settings.STRATUS_NODE_BROKER_URL

    before = state()
    response = post({"token": issued.token, "name": "stor1", "role": "storage"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == 401 and "not valid" in response.json()["error"]["message"]
    assert post({"token": make(name="x1").token, "role": "network"}).status_code == 403
    for bad in ([], {"token": 5}, {}, {"token": "stn_x", "extra": 1}):
        response = post(bad)
        assert response.status_code == 400 and "error" in response.json()
    assert Client().get("/v1/nodes/enrol").status_code == 405
    assert state()[1:] == before[1:]


def test_endpoint_hands_out_the_ca_when_configured(settings: Any, tmp_path: Any) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    settings.STRATUS_NODE_CA_FILE = str(ca)
    response = post({"token": make(role="network", name="net9").token})
    assert response.status_code == 201 and response.json()["ca"] == ca.read_text()


# ---- the management command --------------------------------------------------------------------

def test_node_token_command_create_list_revoke() -> None:
    out = io.StringIO()
    call_command("node_token", "create", "--role", "compute", "--name", "node7", "--expires-hours", "2", stdout=out)
    text = out.getvalue()
    token = text.split("token (shown only now): ")[1].strip()
    record = NodeToken.objects.get()
    assert record.token_hash == token_hash(token) and record.created_by == "manage.py"
    assert f"token id: {record.id}" in text

    out = io.StringIO()
    call_command("node_token", "list", stdout=out)
    assert record.id in out.getvalue() and "usable" in out.getvalue() and token not in out.getvalue()

    call_command("node_token", "revoke", record.id, stdout=io.StringIO())
    out = io.StringIO()
    call_command("node_token", "list", stdout=out)
    assert "revoked" in out.getvalue()
    with pytest.raises(Unauthorized):
        enrol.node_enrol(token=token)
    with pytest.raises(CommandError):
        call_command("node_token", "revoke", "nope", stdout=io.StringIO())
    with pytest.raises(CommandError):
        call_command("node_token", "create", "--role", "compute", "--name", "bad name", stdout=io.StringIO())


# ---- the node's side: manage.py node_enrol (its HTTP call goes to this test's Django) ---------------

class _Answer(io.BytesIO):
    def __enter__(self) -> _Answer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _through_test_client(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    import urllib.error
    import urllib.request

    sent: list[dict] = []

    def urlopen(request: urllib.request.Request, timeout: float, context: Any) -> _Answer:
        assert request.full_url == "http://controller.example:8000/v1/nodes/enrol"
        sent.append(json.loads(request.data))  # type: ignore[arg-type]
        response = Client().post("/v1/nodes/enrol", data=request.data, content_type="application/json")
        if response.status_code >= 400:
            raise urllib.error.HTTPError(request.full_url, response.status_code, "refused", {},  # type: ignore[arg-type]
                                         io.BytesIO(response.content))
        return _Answer(response.content)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return sent


def test_node_enrol_command_writes_the_env_file_once(monkeypatch: pytest.MonkeyPatch, settings: Any,
                                                     tmp_path: Any) -> None:
    import os
    import subprocess

    settings.STRATUS_NODE_BROKER_URL = "redis://:pw@10.0.0.1:6379/0"
    settings.STRATUS_NODE_TOKEN = make(name="node5").token
    sent = _through_test_client(monkeypatch)
    env_file = tmp_path / "node.env"
    out = io.StringIO()
    call_command("node_enrol", "--controller", "http://controller.example:8000/", "--role", "compute",
                 "--address", "10.0.0.5", "--env-file", str(env_file), stdout=out)
    assert "enrolled as compute node node5 (queue compute.node5)" in out.getvalue()
    assert sent == [{"token": settings.STRATUS_NODE_TOKEN, "role": "compute", "address": "10.0.0.5"}]
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"
    shown = subprocess.run(["bash", "-c", 'set -a; . "$1"; env', "-", str(env_file)], capture_output=True,
                           text=True, env={"PATH": os.environ["PATH"]}, check=True).stdout
    assert "CELERY_BROKER_URL=redis://:pw@10.0.0.1:6379/0\n" in shown and "STRATUS_HOST=node5\n" in shown
    assert "STRATUS_COMPUTE_HOST=node5\n" in shown and "DATABASE_URL" not in shown

    env_file.write_text("kept\n")
    with pytest.raises(CommandError, match=r"refused the enrolment \(401\).*not valid"):
        call_command("node_enrol", "--controller", "http://controller.example:8000", "--role", "compute",
                     "--env-file", str(env_file), stdout=io.StringIO())
    assert env_file.read_text() == "kept\n"  # a refusal writes nothing
    settings.STRATUS_NODE_TOKEN = ""
    with pytest.raises(CommandError, match="no token"):
        call_command("node_enrol", "--controller", "http://controller.example:8000", "--role", "compute",
                     stdout=io.StringIO())
