"""Calling the Cinder API in-process with real tokens; tempest's strict schemas for the bodies."""
from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from django.test import Client

from apps.identity import services as identity_services
from apps.identity.models import Project
from apps.volumes import services
from tests.identity import factories

TEMPEST_SITE = sorted((Path(__file__).resolve().parents[2] / ".venv-tempest" / "lib").glob("python*/site-packages"))


def tempest_schema(module: str, name: str) -> dict[str, Any]:
    if not TEMPEST_SITE:
        pytest.skip("the tempest venv (.venv-tempest) is not built")
    if str(TEMPEST_SITE[0]) not in sys.path:
        sys.path.append(str(TEMPEST_SITE[0]))
    return getattr(importlib.import_module(f"tempest.lib.api_schema.response.volume.{module}"), name)


def check(response: Any, module: str, name: str) -> dict[str, Any]:
    schema = tempest_schema(module, name)
    assert response.status_code in schema["status_code"], (response.status_code, response.content[:800])
    body = response.json() if response.content else {}
    if "response_body" in schema:
        jsonschema.Draft4Validator(schema["response_body"],
                                   format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER).validate(body)
    return body


def cinder_error(response: Any, status: int, key: str) -> str:
    assert response.status_code == status, (response.status_code, response.content[:600])
    body = response.json()
    assert set(body) == {key} and body[key]["code"] == status and body[key]["message"], body
    return body[key]["message"]


class CinderClient:
    def __init__(self, token: str | None, project_id: str | None) -> None:
        self.client = Client()
        self.token = token
        self.project_id = project_id

    def call(self, method: str, path: str, body: Any = None, **headers: str) -> Any:
        extra = {"HTTP_X_AUTH_TOKEN": self.token} if self.token else {}
        extra.update(headers)
        url = path if path.startswith("/volume") else f"/volume/v3/{self.project_id}/{path.lstrip('/')}"
        data = json.dumps(body) if body is not None else ""
        return self.client.generic(method, url, data=data, content_type="application/json", **extra)

    def get(self, path: str, **headers: str) -> Any:
        return self.call("GET", path, **headers)

    def post(self, path: str, body: Any = None) -> Any:
        return self.call("POST", path, body)

    def put(self, path: str, body: Any = None) -> Any:
        return self.call("PUT", path, body)

    def delete(self, path: str) -> Any:
        return self.call("DELETE", path)


class Cloud:
    """The bootstrap state, a member and a reader of demo, a member of another project, and one
    storage backend that reported in."""

    def __init__(self) -> None:
        seed = factories.seed()
        self.admin_actor = factories.admin_actor()
        self.demo: Project = seed["projects"]["demo"]
        self.admin_project: Project = seed["projects"]["admin"]
        self.other = identity_services.project_create(actor=self.admin_actor, name="other")
        factories.user_with_role(self.admin_actor, "alice", "member", self.demo)
        factories.user_with_role(self.admin_actor, "rita", "reader", self.demo)
        factories.user_with_role(self.admin_actor, "olga", "member", self.other)
        admin_token, _ = identity_services.token_issue(auth=factories.password_auth("admin", "admin-pw",
                                                                                        project="admin"))
        member_token, self.member_actor = factories.login("alice", self.demo)
        reader_token, self.reader_actor = factories.login("rita", self.demo)
        other_token, self.other_actor = factories.login("olga", self.other)
        self.admin = CinderClient(admin_token, self.admin_project.id)
        self.member = CinderClient(member_token, self.demo.id)
        self.reader = CinderClient(reader_token, self.demo.id)
        self.other_client = CinderClient(other_token, self.other.id)
        self.anonymous = CinderClient(None, self.demo.id)
        self.backend = services.backend_report(host="store1", capacity_gb=100, free_gb=90, path="/tmp/x")

    def volume(self, client: CinderClient | None = None, **attrs: Any) -> dict:
        response = (client or self.member).post("volumes", {"volume": {"size": 1, "name": "v", **attrs}})
        assert response.status_code == 202, (response.status_code, response.content[:600])
        return response.json()["volume"]
