"""Token-free signal URLs (a wait condition handle's curl_cli and URL, a CloudFormation handle's presigned
URL): accepted without a Keystone token only with that one resource's secret. A guess, another
resource's secret, a Keystone token, a secret reused after its resource or stack is gone: all get the
same 403 and change nothing. Wrong secrets from one address are rate-limited (then even the right one
waits), signals to one resource are rate-limited, bodies are capped at STRATUS_MAX_HEAT_BODY, and the
secret is stored only as a hash (and opens nothing on the Keystone-authenticated API)."""
from __future__ import annotations

import json
import secrets

import pytest
from django.core.cache import cache
from django.test import override_settings

from apps.orchestration import states
from apps.orchestration.models import Event, StackResource
from tests.orchestration.test_api import create, heat_error, run_walk
from tests.orchestration.test_signals import GUEST, guest, row

pytestmark = pytest.mark.django_db

TWO = """
heat_template_version: 2018-08-31
resources:
  one: {type: OS::Heat::WaitConditionHandle}
  two: {type: OS::Heat::WaitConditionHandle}
"""


@pytest.fixture
def cloud_api() -> str:
    return "orchestration"


@pytest.fixture(autouse=True)
def _fresh_guess_counter() -> None:
    cache.delete(f"heat-signal-guess:{GUEST}")
    yield
    cache.delete(f"heat-signal-guess:{GUEST}")


def handles(cloud, name: str = "sig") -> tuple[str, dict, dict]:
    made = create(cloud.member, name, TWO)
    assert run_walk(made["id"]) == states.CREATE_COMPLETE
    return made["id"], row(made["id"], "one").attributes, row(made["id"], "two").attributes


def refused(response) -> None:
    body = heat_error(response, 403)
    assert "refused" in body["error"]["message"]


def signals_of(stack_id: str, name: str) -> list:
    return StackResource.objects.get(stack_id=stack_id, name=name).data.get("signals") or []


def test_guesses_other_resources_secrets_and_keystone_tokens_are_refused(cloud) -> None:
    sid, one, two = handles(cloud)
    _, theirs, _ = handles(cloud, "theirs")
    endpoint = one["endpoint"]
    before = Event.objects.count()
    for token in ("", "x", secrets.token_urlsafe(32), one["token"][:-1], one["token"] + "A", one["token"].upper(),
                  "a" * 5000):
        refused(guest(f"{endpoint}?token={token}", {"status": "FAILURE"}))
    refused(guest(endpoint, {"status": "FAILURE"}))  # no secret at all
    refused(guest(endpoint, {"status": "FAILURE"}, headers={"X-Auth-Token": cloud.member_token}))  # a user's token
    refused(guest(f"{endpoint}?token={two['token']}", {"status": "FAILURE"}))  # the neighbour's secret
    refused(guest(endpoint, {"status": "FAILURE"}, headers={"X-Auth-Token": two["token"]}))
    # another stack's handle with this secret; a resource that does not exist; the same answer
    refused(guest(f"{theirs['endpoint']}?token={one['token']}", {"status": "FAILURE"}))
    refused(guest(f"{endpoint[:-3]}nope?token={one['token']}", {"status": "FAILURE"}))
    assert signals_of(sid, "one") == signals_of(sid, "two") == []
    assert Event.objects.count() == before
    # the secret is kept only as its hash, and is no Keystone token on the authenticated API
    stored = json.dumps(StackResource.objects.get(stack_id=sid, name="one").data)
    assert one["token"] not in stored
    heat_error(cloud.member.post(f"stacks/sig/{sid}/resources/one/signal", {}, token=one["token"]), 401)
    # the right one works (the counter of wrong guesses is below its limit)
    assert guest(f"{endpoint}?token={one['token']}").status_code == 200
    assert len(signals_of(sid, "one")) == 1 and signals_of(sid, "two") == []


def test_a_secret_dies_with_its_resource_and_stack(cloud) -> None:
    sid, one, _ = handles(cloud)
    url = one["signal"]["url"]
    assert guest(url).status_code == 200
    cloud.member.delete(f"stacks/sig/{sid}")
    refused(guest(url))  # its stack is being deleted: the delete took the secret away
    assert run_walk(sid) == states.DELETE_COMPLETE
    refused(guest(url))
    # a new stack of the same name: a new secret, the old one opens nothing
    sid2, one2, _ = handles(cloud)
    refused(guest(one2["endpoint"] + f"?token={one['token']}"))
    assert one2["token"] != one["token"] and signals_of(sid2, "one") == []


@override_settings(STRATUS_HEAT_SIGNAL_GUESSES=5)
def test_guessing_is_rate_limited_per_address(cloud) -> None:
    sid, one, _ = handles(cloud)
    for _ in range(5):
        refused(guest(f"{one['endpoint']}?token={secrets.token_urlsafe(32)}"))
    limited = guest(one["signal"]["url"])  # even the right secret waits, from that address
    heat_error(limited, 429, "RequestLimitExceeded")
    assert signals_of(sid, "one") == []


@override_settings(STRATUS_HEAT_SIGNAL_RATE=3)
def test_signals_to_one_resource_are_rate_limited(cloud) -> None:
    sid, one, two = handles(cloud)
    for i in range(3):
        assert guest(one["signal"]["url"], {"id": str(i)}).status_code == 200
    heat_error(guest(one["signal"]["url"], {"id": "3"}), 429, "RequestLimitExceeded")
    heat_error(cloud.member.post(f"stacks/sig/{sid}/resources/one/signal", {"id": "4"}), 429)
    assert len(signals_of(sid, "one")) == 3
    assert guest(two["signal"]["url"]).status_code == 200  # another resource has its own budget


@override_settings(STRATUS_MAX_HEAT_BODY=4096)
def test_bodies_and_stored_signals_are_capped(cloud) -> None:
    sid, one, _ = handles(cloud)
    r = guest(one["signal"]["url"], raw=json.dumps({"data": "x" * 5000}))
    heat_error(r, 413)
    # many signals below the cap each: the handle keeps at most the cap in all
    for i in range(3):
        assert guest(one["signal"]["url"], {"id": str(i), "data": "y" * 1200}).status_code == 200
    heat_error(guest(one["signal"]["url"], {"id": "3", "data": "y" * 1200}), 400, "SignalFailed")
    assert len(signals_of(sid, "one")) == 3
