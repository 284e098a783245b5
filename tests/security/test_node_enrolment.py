"""Attacks on node enrolment (POST /v1/nodes/enrol, apps/compute/services/node_enrolment.py): guessed
and replayed tokens are refused and change nothing, a token is never stored or logged in clear, a
race cannot spend one token twice, and only an admin makes tokens."""
from __future__ import annotations

import json
import logging
import secrets
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from apps.compute.models import ComputeNode, EnrolledNode, NodeToken
from apps.compute.selectors import node_enrolment as enrol_selectors
from apps.compute.services import node_enrolment as enrol
from apps.core.errors import Forbidden, Unauthorized

pytestmark = pytest.mark.django_db


def post(body: Any) -> Any:
    return Client().post("/v1/nodes/enrol", data=json.dumps(body), content_type="application/json")


def state() -> list[Any]:
    tokens = NodeToken.objects.order_by("id").values_list("id", "used_at", "used_from", "revoked_at", "updated_at")
    return [list(tokens),
            list(EnrolledNode.objects.values_list("name", "role", "address")),
            list(ComputeNode.objects.values_list("host", "host_ip"))]


def test_guessed_tokens_are_refused_and_change_nothing() -> None:
    issued = enrol.node_token_create(actor=None, role="compute", name="node2")
    before = state()
    guesses = ["stn_" + secrets.token_urlsafe(32) for _ in range(40)]
    guesses += [issued.token[:-1] + ("A" if issued.token[-1] != "A" else "B"), issued.token.upper(),
                issued.token + "x", issued.token[4:], issued.record.token_hash, "stn_" + issued.record.token_hash,
                issued.record.id, "stn_" + "x" * 200, "stn_%", "stn_' OR '1'='1"]
    for guess in guesses:
        response = post({"token": guess, "role": "compute", "name": "node2"})
        assert response.status_code == 401, (guess, response.content)
        assert set(response.json()) == {"error"} and response.json()["error"]["code"] == 401
    assert state() == before
    assert post({"token": issued.token}).status_code == 201  # the real one still works, once


def test_replayed_token_is_refused_and_changes_nothing() -> None:
    issued = enrol.node_token_create(actor=None, role="network", name="net1")
    first = post({"token": issued.token, "address": "198.51.100.4"})
    assert first.status_code == 201
    before = state()
    for address in ("198.51.100.4", "203.0.113.66"):
        replay = post({"token": issued.token, "address": address})
        assert replay.status_code == 401
        assert "broker_url" not in replay.content.decode()
    assert state() == before
    assert EnrolledNode.objects.get().address == "198.51.100.4"


def test_a_race_cannot_spend_one_token_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two exchanges that both read the token as usable: the conditional UPDATE lets only one through."""
    issued = enrol.node_token_create(actor=None, role="storage", name="stor1")
    record = NodeToken.objects.get()
    enrol.node_enrol(token=issued.token)
    monkeypatch.setattr(enrol_selectors, "node_token_usable", lambda **_: record)  # as the loser read it
    before = state()
    with pytest.raises(Unauthorized):
        enrol.node_enrol(token=issued.token, address="192.0.2.9")
    assert state() == before


def test_token_never_stored_or_logged_in_clear(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    issued = enrol.node_token_create(actor=None, role="compute", name="node3")
    post({"token": issued.token, "address": "192.0.2.10"})
    post({"token": issued.token})  # refused
    secret = issued.token[4:]
    with connection.cursor() as cursor:
        for model in (NodeToken, EnrolledNode, ComputeNode):
            cursor.execute(f"SELECT * FROM {model._meta.db_table}")
            dump = repr(cursor.fetchall())
            assert secret not in dump, model
    assert secret not in caplog.text


def test_only_an_admin_creates_or_revokes_tokens(cloud: Any) -> None:
    for actor in (cloud.member_actor, cloud.reader_actor):
        with pytest.raises(Forbidden):
            enrol.node_token_create(actor=actor, role="compute", name="evil")
    assert not NodeToken.objects.exists()
    issued = enrol.node_token_create(actor=cloud.admin_actor, role="compute", name="good")
    assert issued.record.created_by == cloud.admin_actor.user_id
    with pytest.raises(Forbidden):
        enrol.node_token_revoke(actor=cloud.member_actor, token_id=issued.record.id)
    assert NodeToken.objects.get().revoked_at is None
    # an API token is no node token (and no X-Auth-Token makes a node token valid)
    response = Client().post("/v1/nodes/enrol", data=json.dumps({"token": cloud.member_token}),
                             content_type="application/json", HTTP_X_AUTH_TOKEN=cloud.admin_token)
    assert response.status_code == 401
