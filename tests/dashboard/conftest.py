"""Fixtures of the dashboard view tests: signed-in test clients of the seeded cloud (``cloud``,
tests/conftest.py: the bootstrap's admin and demo, alice/bob/rita of demo, olga of "other")."""
from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from apps.identity import services
from apps.identity.models import Role, User
from tests.api_client import SeededCloud

ADMIN_PW = "admin-pw"  # the seeded cloud's bootstrap passwords (tests/identity/factories.seed)
DEMO_PW = "demo-pw"


def sign_in(client: Client, name: str, password: str, **extra: str) -> Any:
    return client.post("/dashboard/login", {"domain": "Default", "username": name, "password": password, **extra})


def signed_in(name: str, password: str) -> Client:
    """A test client signed in to the dashboard as ``name``."""
    client = Client()
    assert sign_in(client, name, password).status_code == 302
    return client


@pytest.fixture
def admin_client(cloud: SeededCloud) -> Client:
    return signed_in("admin", ADMIN_PW)


@pytest.fixture
def demo_client(cloud: SeededCloud) -> Client:
    return signed_in("demo", DEMO_PW)


def make_user(cloud: SeededCloud, name: str, *, role: str | None = None, project: str = "demo",
              password: str = "pw-12345678") -> User:
    """A user made through the services as an admin would (role granted on ``project``)."""
    admin = cloud.admin_actor
    target = getattr(cloud, f"{project}_project")
    user = services.user_create(actor=admin, name=name, password=password,
                                default_project_id=target.id if role else None)
    if role:
        services.role_grant(actor=admin, role_id=Role.objects.get(name=role).id, user_id=user.id,
                            project_id=target.id)
    return user
