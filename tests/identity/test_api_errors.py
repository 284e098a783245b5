"""Malformed requests get Keystone's 400/401 in its JSON shape, never a 500 or an HTML page."""
from __future__ import annotations

import pytest

from tests.identity.api import assert_error

pytestmark = pytest.mark.django_db

USER = {"name": "admin", "domain": {"id": "default"}, "password": "admin-pw"}
ODD = ["x", 1, None, [], {}, {"id": None}, {"id": {"a": 1}}, {"name": "admin"}, {"name": "admin", "domain": "d"}]


def _bodies() -> list[dict]:
    bodies: list[dict] = [{}, {"auth": "x"}, {"auth": {"identity": "x"}}, {"auth": {"identity": {"methods": "pw"}}},
                          {"auth": {"identity": {"methods": []}}}]
    for odd in ODD:
        bodies += [
            {"auth": {"identity": {"methods": ["password"], "password": {"user": odd}}}},
            {"auth": {"identity": {"methods": ["password"], "password": odd}}},
            {"auth": {"identity": {"methods": ["password"], "password": {"user": USER}}, "scope": {"project": odd}}},
            {"auth": {"identity": {"methods": ["password"], "password": {"user": USER}}, "scope": {"domain": odd}}},
            {"auth": {"identity": {"methods": ["password"], "password": {"user": USER}}, "scope": {"system": odd}}},
            {"auth": {"identity": {"methods": ["password"], "password": {"user": USER}}, "scope": odd}},
            {"auth": {"identity": {"methods": ["token"], "token": odd}}},
            {"auth": {"identity": {"methods": ["token"], "token": {"id": odd}}}},
            {"auth": {"identity": {"methods": ["application_credential"],
                                   "application_credential": {"id": odd, "secret": "s"}}}},
            {"auth": {"identity": {"methods": ["application_credential"],
                                   "application_credential": {"name": "n", "user": odd, "secret": "s"}}}},
            {"auth": {"identity": {"methods": [odd], "password": {"user": USER}}}},
        ]
    return bodies


def test_malformed_token_requests_are_400_or_401(cloud):
    client = cloud.anonymous
    statuses = set()
    for body in _bodies():
        response = client.post("auth/tokens", body)
        if response.status_code == 201:  # a few odd scopes are simply "no scope"
            continue
        assert response.status_code in {400, 401}, (body, response.status_code, response.content[:200])
        assert_error(response, response.status_code)
        statuses.add(response.status_code)
    assert statuses == {400, 401}


@pytest.mark.parametrize("body", ["not json", "[1, 2]", '"text"', '{"project": []}', '{"project": "x"}'])
def test_malformed_bodies_on_collections_are_400(cloud, body):
    client = cloud.admin
    response = client.client.generic("POST", "/identity/v3/projects", data=body, content_type="application/json",
                                     HTTP_X_AUTH_TOKEN=client.token)
    assert_error(response, 400)


def test_unknown_paths_are_keystone_404s(cloud):
    client = cloud.admin
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        assert_error(client.call(method, "no/such/thing"), 404)
        assert_error(client.call(method, "OS-TRUST/trusts"), 404)


FIELD_CASES = [
    ("users", {"user": {"name": "u", "email": "e" * 300}}),
    ("users", {"user": {"name": "u", "options": "x"}}),
    ("roles", {"role": {"name": "r", "options": [1]}}),
    ("regions", {"region": {"id": "r" * 300}}),
    ("services", {"service": {"type": "t" * 300}}),
    ("services", {"service": {"type": "t", "name": 5}}),
    ("endpoints", {"endpoint": {"service_id": "x", "interface": ["public"], "url": "http://a"}}),
    ("endpoints", {"endpoint": {"service_id": "x", "interface": "public", "url": "ftp://a"}}),
    ("projects", {"project": {"name": "p", "tags": "a,b"}}),
    ("projects", {"project": {"name": "p", "tags": ["a/b"]}}),
    ("projects", {"project": {"name": "p", "enabled": "yes"}}),
    ("domains", {"domain": {"name": "d" * 65}}),
    ("users/{me}/application_credentials", {"application_credential": {"name": "c", "secret": 5}}),
    ("users/{me}/application_credentials", {"application_credential": {"name": "c", "roles": "member"}}),
    ("users/{me}/application_credentials", {"application_credential": {"name": "c", "expires_at": "2020-13-45"}}),
    ("users/{me}/application_credentials", {"application_credential": {"name": "c", "expires_at": "2001-01-01"}}),
]


def test_bad_field_values_are_400(cloud):
    for path, body in FIELD_CASES:
        assert_error(cloud.admin.post(path.format(me=cloud.admin_actor.user_id), body), 400)
