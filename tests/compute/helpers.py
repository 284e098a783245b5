"""Calling the Nova API in-process with real tokens."""
from __future__ import annotations

import json
from typing import Any

from django.test import Client

from apps.identity import services as identity_services
from apps.identity.models import Project
from tests.identity import factories

BASE = "/compute/v2.1"


class NovaClient:
    def __init__(self, token: str | None = None) -> None:
        self.client = Client()
        self.token = token

    def call(self, method: str, path: str, body: Any = None, *, headers: dict[str, str] | None = None) -> Any:
        extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in (headers or {}).items()}
        if self.token:
            extra["HTTP_X_AUTH_TOKEN"] = self.token
        data = json.dumps(body) if body is not None else ""
        url = path if path.startswith("/compute") else f"{BASE}/{path.lstrip('/')}"
        return self.client.generic(method, url, data=data, content_type="application/json", **extra)

    def get(self, path: str, **kw: Any) -> Any:
        return self.call("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.call("POST", path, body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.call("PUT", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.call("DELETE", path, **kw)


def nova_error(response: Any, status: int, key: str | None = None) -> dict:
    """Nova's error shape: {"<name>": {"code", "message"}} with the status."""
    assert response.status_code == status, (response.status_code, response.content[:600])
    body = response.json()
    assert len(body) == 1, body
    name, error = next(iter(body.items()))
    assert set(error) == {"code", "message"} and error["code"] == status and error["message"], body
    if key is not None:
        assert name == key, body
    return error


class Cloud:
    """Bootstrap state, one user per role in the demo project, and another project."""

    def __init__(self) -> None:
        seed = factories.seed()
        self.admin_actor = factories.admin_actor()
        self.demo_project: Project = seed["projects"]["demo"]
        self.admin_project: Project = seed["projects"]["admin"]
        self.other_project = identity_services.project_create(actor=self.admin_actor, name="other")
        factories.user_with_role(self.admin_actor, "alice", "member", self.demo_project)
        factories.user_with_role(self.admin_actor, "bob", "member", self.demo_project)
        factories.user_with_role(self.admin_actor, "rita", "reader", self.demo_project)
        factories.user_with_role(self.admin_actor, "olga", "member", self.other_project)
        self.admin_token, _ = identity_services.token_issue(
            auth=factories.password_auth("admin", "admin-pw", project="admin"))
        self.member_token, self.member_actor = factories.login("alice", self.demo_project)
        self.member2_token, self.member2_actor = factories.login("bob", self.demo_project)
        self.reader_token, self.reader_actor = factories.login("rita", self.demo_project)
        self.other_token, self.other_actor = factories.login("olga", self.other_project)
        self.admin = NovaClient(self.admin_token)
        self.member = NovaClient(self.member_token)
        self.member2 = NovaClient(self.member2_token)
        self.reader = NovaClient(self.reader_token)
        self.other = NovaClient(self.other_token)
        self.anonymous = NovaClient()
