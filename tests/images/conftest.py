"""Fixtures of the images tests: the bootstrap cloud, projects with users of each role, and a
Glance client with their tokens."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from apps.identity import services as identity
from apps.identity.models import Project
from apps.identity.policy import Actor
from tests.identity import factories

BASE = "/image/v2"
PATCH = "application/openstack-images-v2.1-json-patch"


class GlanceClient:
    def __init__(self, token: str | None) -> None:
        self.client = Client()
        self.token = token

    def call(self, method: str, path: str, body: Any = None, *, content_type: str = "application/json",
             raw: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
        extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in (headers or {}).items()}
        if self.token:
            extra["HTTP_X_AUTH_TOKEN"] = self.token
        data: Any = raw if raw is not None else (json.dumps(body) if body is not None else "")
        url = path if path.startswith("/image") else f"{BASE}/{path.lstrip('/')}"
        return self.client.generic(method, url, data=data, content_type=content_type, **extra)

    def get(self, path: str, **kw: Any) -> Any:
        return self.call("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.call("POST", path, body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.call("PUT", path, body, **kw)

    def patch(self, path: str, ops: list[dict[str, Any]], *, media: str = PATCH) -> Any:
        return self.call("PATCH", path, ops, content_type=media)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.call("DELETE", path, **kw)

    def create(self, **body: Any) -> dict[str, Any]:
        response = self.post("images", {"disk_format": "raw", "container_format": "bare", **body})
        assert response.status_code == 201, response.content
        return response.json()

    def upload(self, image_id: str, data: bytes, **kw: Any) -> Any:
        return self.put(f"images/{image_id}/file", raw=data, content_type="application/octet-stream", **kw)


@dataclass
class Caller:
    actor: Actor
    api: GlanceClient
    project: Project


def glance_error(response: Any, status: int) -> dict[str, Any]:
    """Glance's plain error body: {"code", "title", "message"}."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    body = response.json()
    assert set(body) == {"code", "title", "message"} and body["code"] == status and body["message"], body
    return body


@pytest.fixture(autouse=True)
def image_store(settings: Any, tmp_path: Any) -> Any:
    """Each test stores image data in a directory of its own (runs side by side never share one)."""
    from apps.images import storage

    settings.STRATUS_IMAGE_STORE = "file"
    settings.STRATUS_IMAGE_DIR = str(tmp_path / "images")
    storage.reset()
    yield settings.STRATUS_IMAGE_DIR
    storage.reset()


@pytest.fixture
def cloud(db: Any) -> dict[str, Any]:
    return factories.seed()


@pytest.fixture
def admin_actor(cloud: dict[str, Any]) -> Actor:
    return factories.admin_actor()


def _caller(admin: Actor, name: str, role: str, project: Project) -> Caller:
    factories.user_with_role(admin, name, role, project)
    token, actor = factories.login(name, project)
    return Caller(actor=actor, api=GlanceClient(token), project=project)


@pytest.fixture
def people(cloud: dict[str, Any], admin_actor: Actor) -> dict[str, Caller]:
    """member/reader of project alpha, member of project beta, and the admin."""
    alpha = identity.project_create(actor=admin_actor, name="alpha")
    beta = identity.project_create(actor=admin_actor, name="beta")
    token, actor = identity.token_issue(auth=factories.password_auth("admin", "admin-pw", project="admin"))
    return {
        "member": _caller(admin_actor, "alice", "member", alpha),
        "reader": _caller(admin_actor, "rita", "reader", alpha),
        "other": _caller(admin_actor, "bob", "member", beta),
        "admin": Caller(actor=actor, api=GlanceClient(token), project=actor.project),  # type: ignore[arg-type]
    }
