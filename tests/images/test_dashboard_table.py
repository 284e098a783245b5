"""The Images panel as a live table (apps/dashboard/tables.py): sorted, filtered and paged through
Glance's list selector (its visibility rules: an admin sees every project's images, with the owner's
name) with a constant number of queries whatever the number of images; the bulk delete is one
image_delete per row, each row's outcome told (a protected image and another project's are refused)."""
from __future__ import annotations

import pytest

from apps.identity import services as identity_services
from apps.identity.policy import Actor
from apps.images import services
from apps.images.models import Image
from tests.api_client import SeededCloud
from tests.dashboard.conftest import ADMIN_PW, DEMO_PW, signed_in
from tests.dashboard.table_pages import table_page, walk, walk_back
from tests.identity.factories import password_auth

pytestmark = pytest.mark.django_db
IMG = "/dashboard/images/"


def _demo(cloud: SeededCloud) -> Actor:
    return identity_services.token_issue(auth=password_auth("demo", DEMO_PW, project="demo"))[1]


def _grow(actor: Actor, start: int, count: int) -> None:
    for i in range(start, start + count):
        services.image_create(actor=actor, name=f"img-{(i * 37) % 100:02d}-{i}", disk_format="raw",
                              container_format="bare", visibility="private" if i % 2 else "shared",
                              min_disk=i % 5)


def test_images_sort_filter_and_page_with_constant_queries(cloud: SeededCloud) -> None:
    demo_actor = _demo(cloud)
    services.image_create(actor=cloud.other_actor, name="img-others", visibility="private")  # not demo's to see
    demo = signed_in("demo", DEMO_PW)
    _grow(demo_actor, 0, 30)
    demo.get(IMG)  # warm up (the session)
    first_small = table_page(demo, f"{IMG}?sort=name&dir=asc")
    _pages, small = walk(demo, first_small.next)
    _grow(demo_actor, 30, 70)

    first = table_page(demo, f"{IMG}?sort=name&dir=asc")
    assert first.queries == first_small.queries and first.previous is None and len(first.ids) == 25
    pages, large = walk(demo, first.next)
    every = list(Image.objects.filter(owner=cloud.demo_project.id).order_by("name", "id").values_list("id", "name"))
    assert list(zip(first.ids + [i for p in pages for i in p.ids],
                    first.names + [n for p in pages for n in p.names], strict=True)) == every
    assert len(every) == 100 and large == small and len(large) == 1, (small, large)
    back = walk_back(demo, pages[-1].previous)
    assert [i for p in back for i in p.ids] + pages[-1].ids == [i for i, _ in every]

    newest = list(Image.objects.filter(owner=cloud.demo_project.id).order_by("-created_at", "-id")
                  .values_list("id", flat=True))
    default, counts = walk(demo, IMG)  # newest first
    assert [i for p in default for i in p.ids] == newest and counts == large
    filtered = table_page(demo, f"{IMG}?q=img-0")
    assert filtered.names and all(n.startswith("img-0") for n in filtered.names)
    assert 'data-live="image image_member"' in first.html and 'id="images-filter"' in first.html

    # an admin sees every project's images, the owner by its project's name
    admin = table_page(signed_in("admin", ADMIN_PW), f"{IMG}?q=img-others")
    assert admin.names == ["img-others"]
    assert f'<a href="/dashboard/identity/projects/{cloud.other_project.id}/members" ' \
           f'data-project="{cloud.other_project.id}">other</a>' in admin.html  # linked to its page


def test_images_bulk_delete_each_row_told(cloud: SeededCloud) -> None:
    demo_actor = _demo(cloud)
    mine = [services.image_create(actor=demo_actor, name=f"mine-{i}", visibility="private") for i in range(3)]
    guarded = services.image_create(actor=demo_actor, name="guarded", visibility="private", protected=True)
    public = services.image_create(actor=cloud.admin_actor, name="everyones", visibility="public")
    secret = services.image_create(actor=cloud.other_actor, name="secret", visibility="private")
    demo = signed_in("demo", DEMO_PW)
    page = demo.get(IMG).content.decode()
    assert f'name="ids" value="{mine[0].id}"' in page and 'data-confirm="Delete image mine-0?"' in page
    assert f'name="ids" value="{public.id}"' not in page  # shown, but not demo's to delete: no box, no button
    assert f'<tr data-id="{public.id}"' in page and secret.id not in page

    ids = [mine[0].id, mine[1].id, guarded.id, public.id, secret.id]
    answer = demo.post(f"{IMG}act", {"action": "delete", "ids": ids}, HTTP_ACCEPT="application/json")
    results = {r["id"]: r for r in answer.json()["results"]}
    assert answer.status_code == 200 and list(results) == ids
    assert results[mine[0].id] == {"id": mine[0].id, "ok": True, "message": "Deleted image mine-0."}
    assert results[mine[1].id]["ok"]
    assert not results[guarded.id]["ok"] and "protected" in results[guarded.id]["message"]
    assert not results[public.id]["ok"] and not results[secret.id]["ok"]
    assert "No image found" in results[secret.id]["message"]  # another project's private image: unknown
    left = set(Image.objects.values_list("name", flat=True))
    assert left == {"mine-2", "guarded", "everyones", "secret"}

    # a row's own button: a message and back to the page it was on
    done = demo.post(f"{IMG}{mine[2].id}/delete", {"next": f"{IMG}?sort=size&dir=asc"}, follow=True)
    assert done.redirect_chain[-1][0] == f"{IMG}?sort=size&dir=asc" and "Deleted image mine-2." in done.content.decode()
    assert demo.post(f"{IMG}{secret.id}/delete").status_code == 404
