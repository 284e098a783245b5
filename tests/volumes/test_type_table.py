"""The admins' Volume types panel is the one live table (apps/dashboard/tables.py): sorted, filtered and
paged by volume_type_list (keyset after a type's id) at a constant number of queries whatever the number
of types; delete is a row's button and a bulk action, one service call per row, each row's outcome told
(the default type and a type in use are refused by the service, row by row)."""
from __future__ import annotations

import json

import pytest

from apps.identity.policy import Actor
from apps.volumes import services
from apps.volumes.models import Volume, VolumeType
from tests.api_client import SeededCloud
from tests.dashboard.table_pages import table_page, walk, walk_back
from tests.volumes.test_dashboard import client_for

pytestmark = pytest.mark.django_db
T = "/dashboard/volumes/types/"


def _grow(admin: Actor, start: int, count: int) -> None:
    for i in range(start, start + count):  # names out of creation order, a description on some
        vtype = services.volume_type_create(actor=admin, name=f"t-{(i * 37) % 100:02d}-{i}",
                                            description=f"d{i % 5}" if i % 2 else None, is_public=i % 3 != 0)
        if i % 4 == 0:
            services.volume_type_extra_specs_set(actor=admin, type_id=vtype.id, specs={"tier": str(i)})


def _ids(pages: list) -> list[str]:
    return [i for p in pages for i in p.ids]


def test_volume_types_sort_filter_and_page_with_constant_queries(cloud: SeededCloud) -> None:
    admin = cloud.admin_actor
    root = client_for("admin", "admin-pw")
    _grow(admin, 0, 30)
    root.get(T)  # warm up (the session; the default type made)
    first_small = table_page(root, f"{T}?sort=name&dir=asc")
    _pages, small = walk(root, first_small.next)
    _grow(admin, 30, 30)

    first = table_page(root, f"{T}?sort=name&dir=asc")
    assert first.queries == first_small.queries and len(first.ids) == 25 and first.previous is None
    pages, large = walk(root, first.next)
    every = list(VolumeType.objects.order_by("name").values_list("id", "name"))
    assert list(zip(first.ids + _ids(pages), first.names + [n for p in pages for n in p.names], strict=True)) == every
    assert len(every) == 61 and large == small and len(large) == 1, (small, large)
    assert "tier=0" in first.html + "".join(p.html for p in pages)
    back = walk_back(root, pages[-1].previous)
    assert _ids(back) + pages[-1].ids == [i for i, _ in every]

    by_description, counts = walk(root, f"{T}?sort=description&dir=desc")
    wanted = sorted(VolumeType.objects.all(), key=lambda t: (t.description or "", t.name), reverse=True)
    # descending: a null after every value (apps/core/pagination), then by name
    wanted = [t for t in wanted if t.description] + sorted((t for t in wanted if not t.description),
                                                           key=lambda t: t.name, reverse=True)
    assert _ids(by_description) == [t.id for t in wanted] and counts == large
    filtered = table_page(root, f"{T}?q=T-0")
    assert filtered.names and all(n.startswith("t-0") for n in filtered.names)
    assert table_page(root, f"{T}?sort=extra_specs").ids == [i for i, _ in every][:25]
    assert table_page(root, f"{T}?marker=gone").ids == [i for i, _ in every][:25]


def test_volume_types_bulk_delete_each_row_told(cloud: SeededCloud) -> None:
    admin = cloud.admin_actor
    default = services.volume_type_default()
    spare, other = (services.volume_type_create(actor=admin, name=n) for n in ("spare", "other"))
    used = services.volume_type_create(actor=admin, name="used")
    Volume.objects.create(project=cloud.demo_project, user_id="u", size=1, volume_type=used, status="available")
    root = client_for("admin", "admin-pw")
    page = root.get(T).content.decode()
    assert f'name="ids" value="{spare.id}"' in page and 'data-confirm="Delete volume type spare?"' in page
    assert f'name="ids" value="{used.id}"' not in page and f'name="ids" value="{default.id}"' not in page

    answer = root.post(f"{T}act", {"action": "delete", "ids": [spare.id, default.id, used.id, "nope"]},
                       HTTP_ACCEPT="application/json")
    results = {r["id"]: r for r in json.loads(answer.content)["results"]}
    assert answer.status_code == 200 and list(results) == [spare.id, default.id, used.id, "nope"]
    assert results[spare.id] == {"id": spare.id, "ok": True, "message": "Deleted volume type spare."}
    assert results[default.id]["message"] == "Default volume type can not be deleted."
    assert "still in use" in results[used.id]["message"] and not results["nope"]["ok"]
    assert set(VolumeType.objects.values_list("name", flat=True)) == {default.name, "other", "used"}

    alice = client_for("alice")  # a member: every row refused by the service, nothing deleted
    refused = alice.post(f"{T}act", {"action": "delete", "ids": [other.id]}, HTTP_ACCEPT="application/json")
    assert refused.json()["results"][0]["ok"] is False and VolumeType.objects.filter(pk=other.id).exists()
    done = root.post(f"{T}act", {"action": "delete", "ids": [other.id], "next": f"{T}?sort=created_at&dir=asc"})
    assert done.status_code == 302 and done["Location"] == f"{T}?sort=created_at&dir=asc"
    assert not VolumeType.objects.filter(pk=other.id).exists()
