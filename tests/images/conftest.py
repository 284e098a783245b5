"""Fixtures of the images tests: the seeded cloud speaking Glance, its callers by role, and a store
of image data per test."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from apps.identity.models import Project
from apps.identity.policy import Actor
from tests.api_client import ApiClient, SeededCloud


@dataclass
class Caller:
    actor: Actor
    api: ApiClient
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
def cloud_api() -> str:
    return "image"


@pytest.fixture
def admin_actor(cloud: SeededCloud) -> Actor:
    return cloud.admin_actor


@pytest.fixture
def people(cloud: SeededCloud) -> dict[str, Caller]:
    """The seeded cloud's member and reader of demo, member of "other", and the admin."""
    return {
        "member": Caller(actor=cloud.member_actor, api=cloud.member, project=cloud.demo_project),
        "reader": Caller(actor=cloud.reader_actor, api=cloud.reader, project=cloud.demo_project),
        "other": Caller(actor=cloud.other_actor, api=cloud.other, project=cloud.other_project),
        "admin": Caller(actor=cloud.admin_actor, api=cloud.admin, project=cloud.admin_project),
    }
