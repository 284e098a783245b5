"""Fixtures of the dashboard view tests: the bootstrap state and signed-in test clients."""
from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from apps.identity import services
from apps.identity.models import Role, User

ADMIN_PW = "admin-pw"
DEMO_PW = "demo-pw"


@pytest.fixture
def cloud(db: Any) -> dict[str, Any]:
    """Default domain, roles, projects admin/demo, users admin (admin) and demo (member of demo)."""
    return services.bootstrap(public_url="http://testserver", admin_password=ADMIN_PW, demo_password=DEMO_PW)


def sign_in(client: Client, name: str, password: str, **extra: str) -> Any:
    return client.post("/dashboard/login", {"domain": "Default", "username": name, "password": password, **extra})


@pytest.fixture
def admin_client(cloud: dict[str, Any]) -> Client:
    client = Client()
    assert sign_in(client, "admin", ADMIN_PW).status_code == 302
    return client


@pytest.fixture
def demo_client(cloud: dict[str, Any]) -> Client:
    client = Client()
    assert sign_in(client, "demo", DEMO_PW).status_code == 302
    return client


def make_user(cloud: dict[str, Any], name: str, *, role: str | None = None, project: str = "demo",
              password: str = "pw-12345678") -> User:
    """A user made through the services as an admin would (role granted on ``project``)."""
    admin = services.actor_for_session(user=cloud["admin"], project_id=cloud["projects"]["admin"].id)
    target = cloud["projects"][project]
    user = services.user_create(actor=admin, name=name, password=password,
                                default_project_id=target.id if role else None)
    if role:
        services.role_grant(actor=admin, role_id=Role.objects.get(name=role).id, user_id=user.id,
                            project_id=target.id)
    return user
