"""The Key Pairs and (admin) Flavors panels as live tables (apps/dashboard/tables.py): sorted, filtered
and paged through the same selectors as the Nova API with a constant number of queries whatever the
list's length; a key pair's row is named by its name, a flavor's by its flavorid; the bulk delete is
one service call per row, each row's outcome told."""
from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.test import Client

from apps.compute import services
from apps.compute.models import Flavor, KeyPair
from apps.identity import services as identity_services
from apps.identity.policy import Actor
from tests.api_client import SeededCloud
from tests.dashboard.conftest import ADMIN_PW, DEMO_PW, sign_in, signed_in
from tests.dashboard.table_pages import table_page, walk, walk_back
from tests.identity.factories import password_auth

pytestmark = pytest.mark.django_db
K = "/dashboard/compute/keypairs/"
F = "/dashboard/compute/flavors/"


def _public_key() -> str:
    return ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def _demo(cloud: SeededCloud) -> Actor:
    identity_services.quota_set(actor=cloud.admin_actor, project_id=cloud.demo_project.id, limits={"key_pairs": 500})
    return identity_services.token_issue(auth=password_auth("demo", DEMO_PW, project="demo"))[1]


def _grow_keypairs(actor: Actor, start: int, count: int) -> None:
    for i in range(start, start + count):  # names out of creation order, some with a space
        name = f"kp {(i * 37) % 100:02d}-{i}" if i % 3 == 0 else f"kp-{(i * 37) % 100:02d}-{i}"
        services.keypair_create(actor=actor, name=name, public_key=_public_key())


def test_keypairs_sort_filter_and_page_by_name_with_constant_queries(cloud: SeededCloud) -> None:
    demo_actor = _demo(cloud)
    services.keypair_create(actor=cloud.member_actor, name="alices", public_key=_public_key())  # another user's
    demo = signed_in("demo", DEMO_PW)
    _grow_keypairs(demo_actor, 0, 30)
    demo.get(K)  # warm up (the session)
    first_small = table_page(demo, f"{K}?sort=name&dir=asc")
    _pages, small = walk(demo, first_small.next)
    _grow_keypairs(demo_actor, 30, 70)

    first = table_page(demo, f"{K}?sort=name&dir=asc")
    assert first.queries == first_small.queries and first.previous is None and len(first.ids) == 25
    assert first.ids == first.names  # a key pair's row is named by its name
    pages, large = walk(demo, first.next)
    every = sorted(KeyPair.objects.filter(user=cloud.demo_user).values_list("name", flat=True))
    assert first.ids + [i for p in pages for i in p.ids] == every and len(every) == 100
    assert "alices" not in every and large == small and len(large) == 1, (small, large)
    # the next page's marker is the last row's name (spaces and all), as Nova's marker
    assert pages[0].ids[0] == every[25]

    back = walk_back(demo, pages[-1].previous)
    assert [i for p in back for i in p.ids] + pages[-1].ids == every
    assert {p.queries for p in back[1:]} <= large | {first.queries}

    newest = [n for n, _ in sorted(KeyPair.objects.filter(user=cloud.demo_user).values_list("name", "created_at"),
                                   key=lambda r: (r[1], r[0]), reverse=True)]
    by_age, counts = walk(demo, f"{K}?sort=created_at&dir=desc")
    assert [i for p in by_age for i in p.ids] == newest and counts == large
    filtered = table_page(demo, f"{K}?q=kp+1")
    assert filtered.ids and all(n.startswith("kp 1") for n in filtered.ids)
    assert 'data-live="keypair"' in first.html and 'id="keypairs-filter"' in first.html
    # an unknown sort key falls back to the name; a marker that is gone to the first page
    assert table_page(demo, f"{K}?sort=public_key").ids == every[:25]
    assert table_page(demo, f"{K}?marker=gone").ids == every[:25]


def test_keypairs_bulk_delete_by_name_each_row_told(cloud: SeededCloud) -> None:
    demo_actor = _demo(cloud)
    for name in ("one", "two words", "three"):
        services.keypair_create(actor=demo_actor, name=name, public_key=_public_key())
    services.keypair_create(actor=cloud.member_actor, name="alices", public_key=_public_key())
    demo = signed_in("demo", DEMO_PW)
    page = demo.get(K).content.decode()
    assert '<tr data-id="two words" data-name="two words">' in page
    assert 'name="ids" value="two words"' in page and 'data-confirm="Delete key pair two words?"' in page

    answer = demo.post(f"{K}act", {"action": "delete", "ids": ["one", "two words", "alices", "nope"]},
                       HTTP_ACCEPT="application/json")
    results = {r["id"]: r for r in json.loads(answer.content)["results"]}
    assert answer.status_code == 200 and list(results) == ["one", "two words", "alices", "nope"]
    assert results["one"] == {"id": "one", "ok": True, "message": "Key pair one deleted."}
    assert results["two words"]["ok"] and not results["alices"]["ok"] and not results["nope"]["ok"]
    assert "not found" in results["alices"]["message"]  # another user's key pair is not demo's to name
    assert set(KeyPair.objects.values_list("name", flat=True)) == {"three", "alices"}

    # without script: a message per row and back; a row's own button by its name in the URL
    done = demo.post(f"{K}act", {"action": "delete", "ids": ["three"], "next": f"{K}?sort=type&dir=desc"})
    assert done.status_code == 302 and done["Location"] == f"{K}?sort=type&dir=desc"
    assert demo.post(f"{K}alices/delete").status_code == 404
    assert KeyPair.objects.filter(name="alices").exists() and not KeyPair.objects.filter(name="three").exists()
    # a reader may not delete: refused by the service, row by row
    services.keypair_create(actor=demo_actor, name="kept", public_key=_public_key())
    rita = Client()
    assert sign_in(rita, "rita", "pw-xxxxxxxx").status_code == 302
    assert 'data-id="kept"' not in rita.get(K).content.decode()  # a user's own, not the project's


def _grow_flavors(admin: Actor, start: int, count: int) -> None:
    for i in range(start, start + count):
        services.flavor_create(actor=admin, name=f"f-{(i * 37) % 100:02d}-{i}", flavor_id=f"fl-{i}",
                               vcpus=1 + i % 7, ram=64 * (1 + i % 5), disk=i % 3, is_public=i % 4 != 0)


def test_flavors_sort_filter_and_page_with_constant_queries(cloud: SeededCloud) -> None:
    admin = cloud.admin_actor
    _grow_flavors(admin, 0, 30)
    for i in range(0, 30, 2):
        services.flavor_extra_specs_set(actor=admin, flavor_id=f"fl-{i}", specs={"hw:x": str(i), "hw:y": "z"})
    client = signed_in("admin", ADMIN_PW)
    client.get(F)
    first_small = table_page(client, f"{F}?sort=name&dir=asc")
    _pages, small = walk(client, first_small.next)
    _grow_flavors(admin, 30, 90)

    first = table_page(client, f"{F}?sort=name&dir=asc")
    assert first.queries == first_small.queries and len(first.ids) == 25
    pages, large = walk(client, first.next)
    every = list(Flavor.objects.order_by("name", "flavorid").values_list("flavorid", "name"))
    assert list(zip(first.ids + [i for p in pages for i in p.ids],
                    first.names + [n for p in pages for n in p.names], strict=True)) == every
    assert large == small and len(large) == 1, (small, large)
    assert "hw:y=z" in first.html + "".join(p.html for p in pages)  # extra specs, prefetched

    by_vcpus, counts = walk(client, f"{F}?sort=vcpus&dir=desc")
    wanted = list(Flavor.objects.order_by("-vcpus", "-flavorid").values_list("flavorid", flat=True))
    assert [i for p in by_vcpus for i in p.ids] == wanted and counts == large
    filtered = table_page(client, f"{F}?q=f-0")
    assert filtered.names and all(n.startswith("f-0") for n in filtered.names)
    assert 'data-live="flavor"' in first.html


def test_flavors_bulk_delete_is_for_admins_row_by_row(cloud: SeededCloud) -> None:
    admin = cloud.admin_actor
    _grow_flavors(admin, 0, 3)
    demo = signed_in("demo", DEMO_PW)
    assert demo.get(F).status_code == 403
    refused = demo.post(f"{F}act", {"action": "delete", "ids": ["fl-1"]}, HTTP_ACCEPT="application/json")
    assert refused.json()["results"][0]["ok"] is False and Flavor.objects.filter(flavorid="fl-1").exists()
    assert demo.post(f"{F}fl-0/delete").status_code == 403  # a private flavor too: 403 before 404

    client = signed_in("admin", ADMIN_PW)
    page = client.get(F).content.decode()
    assert 'name="ids" value="fl-1"' in page and f'href="{F}fl-1/"' in page
    answer = client.post(f"{F}act", {"action": "delete", "ids": ["fl-0", "fl-1", "nope"]},
                         HTTP_ACCEPT="application/json")
    results = answer.json()["results"]
    assert [(r["id"], r["ok"]) for r in results] == [("fl-0", True), ("fl-1", True), ("nope", False)]
    assert results[1]["message"] == f"Deleted flavor {'f-37-1'}." and "nope" in results[2]["message"]
    assert set(Flavor.objects.filter(flavorid__startswith="fl-").values_list("flavorid", flat=True)) == {"fl-2"}
