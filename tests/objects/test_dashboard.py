"""The Object Store panel (apps/objects/views.py) through the Django test client: the containers' live
table (sort, filter, pages at constant queries; create, public/private, delete with a 409 shown as a
message, bulk delete), isolation between projects and a reader who cannot write."""
from __future__ import annotations

import json

import pytest
from django.test import Client

from apps.objects import selectors, services
from apps.objects.models import Container
from tests.dashboard.conftest import sign_in
from tests.dashboard.table_pages import table_page, walk
from tests.identity.factories import PASSWORD

pytestmark = pytest.mark.django_db

CONTAINERS = "/dashboard/objects/containers/"


def _client(name: str, password: str = PASSWORD) -> Client:
    client = Client()
    assert sign_in(client, name, password).status_code == 302
    return client


def _put(actor, container: str, name: str, data: bytes = b"x") -> None:
    services.object_put(actor=actor, container=container, name=name, stream=[data])


def test_containers_table_sorts_filters_and_pages_at_constant_queries(cloud):
    alice = _client("alice")
    actor = cloud.member_actor
    for i in range(3):
        services.container_create(actor=actor, name=f"c{i:02d}")
    _put(actor, "c01", "a", b"x" * 3000)
    small = table_page(alice, CONTAINERS)
    assert small.ids == ["c00", "c01", "c02"]
    assert "2.9\xa0KB" in small.html and "3 containers, 1 object" in small.html
    for i in range(3, 60):
        services.container_create(actor=actor, name=f"c{i:02d}")
    pages, counts = walk(alice, CONTAINERS + "?sort=name&dir=asc")
    assert [i for p in pages for i in p.ids] == [f"c{i:02d}" for i in range(60)]
    assert len(counts) == 1, counts  # every page after a marker costs the same
    first = table_page(alice, CONTAINERS)
    assert first.queries == small.queries  # 3 containers or 60: the same queries
    by_size = table_page(alice, CONTAINERS + "?sort=bytes_used&dir=desc")
    assert by_size.ids[0] == "c01"
    assert table_page(alice, CONTAINERS + "?q=c5").ids == [f"c{i}" for i in range(50, 60)]
    assert table_page(alice, CONTAINERS + "?partial=1").ids == first.ids


def test_create_toggle_public_and_delete(cloud):
    alice = _client("alice")
    created = alice.post(CONTAINERS + "create", {"name": "photos"})
    assert created.status_code == 302
    row = Container.objects.get(project_id=cloud.demo_project.id, name="photos")
    assert row.read_acl == "" and not selectors.is_public(row)
    again = alice.post(CONTAINERS + "create", {"name": "photos"})
    assert again.status_code == 400 and "already exists" in again.content.decode()
    bad = alice.post(CONTAINERS + "create", {"name": "a/b"})
    assert bad.status_code == 400 and "cannot contain" in bad.content.decode()
    services.container_update(actor=cloud.member_actor, name="photos", read_acl="other:*")
    assert alice.post(CONTAINERS + "photos/public").status_code == 302
    row.refresh_from_db()
    assert row.read_acl == "other:*,.r:*,.rlistings" and selectors.is_public(row)
    assert 'data-access="public"' in alice.get(CONTAINERS).content.decode()
    assert Client().get(f"/object-store/v1/AUTH_{cloud.demo_project.id}/photos").status_code == 204
    assert alice.post(CONTAINERS + "photos/public").status_code == 302
    row.refresh_from_db()
    assert row.read_acl == "other:*"
    assert Client().get(f"/object-store/v1/AUTH_{cloud.demo_project.id}/photos").status_code == 401
    _put(cloud.member_actor, "photos", "cat.jpg")
    refused = alice.post(CONTAINERS + "photos/delete", follow=True)
    assert "Container photos is not empty" in refused.content.decode()
    assert Container.objects.filter(name="photos").exists()
    services.object_delete(actor=cloud.member_actor, container="photos", name="cat.jpg")
    assert alice.post(CONTAINERS + "photos/delete").status_code == 302
    assert not Container.objects.filter(name="photos").exists()
    public = alice.post(CONTAINERS + "create", {"name": "open", "public": "on"})
    assert public.status_code == 302 and selectors.is_public(Container.objects.get(name="open"))


def test_bulk_delete_reports_each_row(cloud):
    alice = _client("alice")
    for name in ("a", "b", "full"):
        services.container_create(actor=cloud.member_actor, name=name)
    _put(cloud.member_actor, "full", "x")
    answer = alice.post(CONTAINERS + "act", {"action": "delete", "ids": ["a", "full", "b", "nope"]},
                        HTTP_ACCEPT="application/json")
    results = {r["id"]: r for r in json.loads(answer.content)["results"]}
    assert results["a"]["ok"] and results["b"]["ok"]
    assert not results["full"]["ok"] and "not empty" in results["full"]["message"]
    assert not results["nope"]["ok"]
    assert list(Container.objects.values_list("name", flat=True)) == ["full"]


def test_isolation_and_reader(cloud):
    services.container_create(actor=cloud.other_actor, name="theirs")
    services.container_create(actor=cloud.member_actor, name="ours")
    alice, rita, olga = _client("alice"), _client("rita"), _client("olga")
    assert table_page(alice, CONTAINERS).ids == ["ours"]
    assert table_page(olga, CONTAINERS).ids == ["theirs"]
    assert alice.post(CONTAINERS + "theirs/delete").status_code == 404
    assert alice.post(CONTAINERS + "theirs/public").status_code == 404
    assert Container.objects.filter(name="theirs").exists()
    page = table_page(rita, CONTAINERS)
    assert page.ids == ["ours"] and "container-card" not in page.html and 'data-action="delete"' not in page.html
    assert rita.post(CONTAINERS + "ours/delete").status_code == 403
    assert rita.post(CONTAINERS + "ours/public").status_code == 403
    assert rita.post(CONTAINERS + "create", {"name": "mine"}).status_code == 400
    assert set(Container.objects.values_list("name", flat=True)) == {"theirs", "ours"}
    bob = _client("bob")  # another member of the project uses alice's container
    assert bob.post(CONTAINERS + "ours/public").status_code == 302
