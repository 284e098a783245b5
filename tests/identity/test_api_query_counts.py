"""Every Keystone list costs a constant number of queries, whatever its length: the same request
is counted with a few rows and with ten times more."""
from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.identity import services
from apps.identity.models import Role
from apps.identity.policy import Actor
from tests.api_client import ApiClient, SeededCloud

pytestmark = pytest.mark.django_db

FEW, MANY = 3, 30


@pytest.fixture
def admin(cloud: SeededCloud) -> tuple[Actor, ApiClient]:
    """The seeded cloud's admin (tests/conftest.py), as an actor and a Keystone client."""
    return cloud.admin_actor, cloud.admin


def _rows(admin: Actor, n: int, start: int) -> dict[str, str]:
    """``n`` of everything: projects, users (each a member of its project and of a group, with an
    application credential... of the admin), groups, roles, role assignments, services, endpoints."""
    member = Role.objects.get(name="member")
    group = services.group_create(actor=admin, name=f"team-{start}")
    service = services.service_create(actor=admin, type=f"type-{start}", name=f"svc-{start}")
    for i in range(start, start + n):
        project = services.project_create(actor=admin, name=f"proj-{i}", tags=[f"t{i}"])
        user = services.user_create(actor=admin, name=f"user-{i}", password="pw", default_project_id=project.id)
        services.role_grant(actor=admin, role_id=member.id, user_id=user.id, project_id=project.id)
        services.group_add_user(actor=admin, group_id=group.id, user_id=user.id)
        services.role_grant(actor=admin, role_id=member.id, group_id=group.id, project_id=project.id)
        services.group_create(actor=admin, name=f"group-{i}")
        role = services.role_create(actor=admin, name=f"role-{i}")
        services.implied_role_create(actor=admin, prior_role_id=role.id, implied_role_id=member.id)
        services.region_create(actor=admin, region_id=f"region-{i}")
        services.endpoint_create(actor=admin, service_id=service.id, interface="public",
                                 url=f"http://svc-{i}.example", region_id=f"region-{i}")
        services.application_credential_create(actor=admin, user_id=admin.user_id, name=f"cred-{i}")
    return {"group": group.id, "user": user.id}


LISTS: list[tuple[str, Callable[[dict[str, str]], str]]] = [
    ("projects", lambda ids: "projects"),
    ("projects filtered", lambda ids: "projects?domain_id=default&enabled=true&tags-any=t1,t2,t40"),
    ("users", lambda ids: "users"),
    ("groups", lambda ids: "groups"),
    ("group members", lambda ids: f"groups/{ids['group']}/users"),
    ("roles", lambda ids: "roles"),
    ("role inferences", lambda ids: "role_inferences"),
    ("role assignments", lambda ids: "role_assignments"),
    ("role assignments with names", lambda ids: "role_assignments?include_names"),
    ("effective role assignments", lambda ids: "role_assignments?effective&include_names=1"),
    ("effective role assignments of a user", lambda ids: f"role_assignments?effective&user.id={ids['user']}"),
    ("domains", lambda ids: "domains"),
    ("regions", lambda ids: "regions"),
    ("services", lambda ids: "services"),
    ("endpoints", lambda ids: "endpoints"),
    ("application credentials", lambda ids: "users/{admin}/application_credentials"),
    ("auth catalog", lambda ids: "auth/catalog"),
]


def _count(client: ApiClient, path: str) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path)
    assert response.status_code == 200, response.content[:300]
    body = response.json()
    items = next((v for k, v in body.items() if isinstance(v, list)), [])
    return len(ctx), len(items)


def test_every_list_costs_the_same_queries_for_few_and_many_rows(admin):
    actor, client = admin
    ids = _rows(actor, FEW, 0)
    few = {}
    for name, path in LISTS:
        few[name] = _count(client, path(ids).format(admin=actor.user_id))
    ids = _rows(actor, MANY - FEW, FEW)
    grew = []
    for name, path in LISTS:
        queries, length = _count(client, path(ids).format(admin=actor.user_id))
        if queries != few[name][0]:
            grew.append(f"{name}: {few[name][0]} queries for {few[name][1]} items, {queries} for {length}")
        assert length >= few[name][1]
    assert not grew, "\n".join(grew)
    # the lists did grow, so the comparison means something
    assert _count(client, "projects")[1] >= MANY and _count(client, "role_assignments")[1] >= 2 * MANY
