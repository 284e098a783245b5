"""Calling the Neutron API in-process with real tokens, and building the usual fixtures."""
from __future__ import annotations

import json
from typing import Any

from django.test import Client

from apps.identity import services as identity_services
from apps.identity.models import Project
from tests.identity import factories

BASE = "/network/v2.0"


class NeutronClient:
    def __init__(self, token: str | None = None) -> None:
        self.client = Client()
        self.token = token

    def call(self, method: str, path: str, body: Any = None) -> Any:
        extra = {"HTTP_X_AUTH_TOKEN": self.token} if self.token else {}
        data = json.dumps(body) if body is not None else ""
        url = path if path.startswith("/network") else f"{BASE}/{path.lstrip('/')}"
        return self.client.generic(method, url, data=data, content_type="application/json", **extra)

    def get(self, path: str) -> Any:
        return self.call("GET", path)

    def post(self, path: str, body: Any = None) -> Any:
        return self.call("POST", path, body)

    def put(self, path: str, body: Any = None) -> Any:
        return self.call("PUT", path, body)

    def delete(self, path: str) -> Any:
        return self.call("DELETE", path)

    # shortcuts that assert success and return the member
    def create(self, collection: str, member: str, **attrs: Any) -> dict:
        response = self.post(collection, {member: attrs})
        assert response.status_code == 201, (response.status_code, response.content[:600])
        return response.json()[member]

    def network(self, **attrs: Any) -> dict:
        return self.create("networks", "network", **{"name": "net", **attrs})

    def subnet(self, network_id: str, cidr: str = "10.0.0.0/24", **attrs: Any) -> dict:
        return self.create("subnets", "subnet", network_id=network_id, cidr=cidr,
                           ip_version=6 if ":" in cidr else 4, **attrs)

    def port(self, network_id: str, **attrs: Any) -> dict:
        return self.create("ports", "port", network_id=network_id, **attrs)


def neutron_error(response: Any, status: int, kind: str | None = None) -> dict:
    """Neutron's error shape: {"NeutronError": {"type", "message", "detail"}} with the status."""
    assert response.status_code == status, (response.status_code, response.content[:600])
    body = response.json()
    assert set(body) == {"NeutronError"}, body
    error = body["NeutronError"]
    assert set(error) == {"type", "message", "detail"} and error["message"], error
    if kind is not None:
        assert error["type"] == kind, error
    return error


class Cloud:
    """The bootstrap state plus one user per role in the demo project, and another project."""

    def __init__(self) -> None:
        seed = factories.seed()
        self.admin_actor = factories.admin_actor()
        self.demo_project: Project = seed["projects"]["demo"]
        self.admin_project: Project = seed["projects"]["admin"]
        self.other_project = identity_services.project_create(actor=self.admin_actor, name="other")
        factories.user_with_role(self.admin_actor, "alice", "member", self.demo_project)
        factories.user_with_role(self.admin_actor, "rita", "reader", self.demo_project)
        factories.user_with_role(self.admin_actor, "olga", "member", self.other_project)
        self.admin_token, _ = identity_services.token_issue(
            auth=factories.password_auth("admin", "admin-pw", project="admin"))
        self.member_token, self.member_actor = factories.login("alice", self.demo_project)
        self.reader_token, self.reader_actor = factories.login("rita", self.demo_project)
        self.other_token, self.other_actor = factories.login("olga", self.other_project)
        self.admin = NeutronClient(self.admin_token)
        self.member = NeutronClient(self.member_token)
        self.reader = NeutronClient(self.reader_token)
        self.other = NeutronClient(self.other_token)
        self.anonymous = NeutronClient()

    @property
    def public_id(self) -> str:
        from apps.networks.models import Network

        return Network.objects.get(name="public", external=True).id
