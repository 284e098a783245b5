"""The admins' Storage backends panel as a live table (apps/dashboard/tables.py): sorted, filtered and
paged through selectors.backend_list (the selector of Cinder's scheduler-stats pools) with a constant
number of queries whatever the number of backends; members get a 403 page."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.volumes.models import StorageBackend
from tests.api_client import SeededCloud
from tests.dashboard.conftest import ADMIN_PW, DEMO_PW, signed_in
from tests.dashboard.table_pages import table_page, walk, walk_back

pytestmark = pytest.mark.django_db
B = "/dashboard/volumes/backends/"


def _grow_backends(start: int, count: int) -> None:
    now = timezone.now()
    StorageBackend.objects.bulk_create([StorageBackend(
        host=f"st-{(i * 37) % 100:02d}-{i}", capacity_gb=100.0 + i, free_gb=float((i * 13) % 90),
        provisioned_gb=i * 3, disabled=i % 5 == 0, last_heartbeat=None if i % 7 == 0 else now - timedelta(seconds=i))
        for i in range(start, start + count)])


def test_backends_sort_filter_and_page_with_constant_queries(cloud: SeededCloud) -> None:
    _grow_backends(0, 30)
    admin = signed_in("admin", ADMIN_PW)
    admin.get(B)
    first_small = table_page(admin, f"{B}?sort=host&dir=asc")
    _pages, small = walk(admin, first_small.next)
    _grow_backends(30, 45)

    first = table_page(admin, f"{B}?sort=host&dir=asc")
    assert first.queries == first_small.queries and len(first.ids) == 25 and first.previous is None
    pages, large = walk(admin, first.next)
    every = sorted(StorageBackend.objects.all(), key=lambda b: (b.host, b.id))
    assert first.ids + [i for p in pages for i in p.ids] == [str(b.id) for b in every]
    assert first.names + [n for p in pages for n in p.names] == [b.full_host for b in every]
    assert large == small and len(large) == 1, (small, large)
    back = walk_back(admin, pages[-1].previous)
    assert [i for p in back for i in p.ids] + pages[-1].ids == [str(b.id) for b in every]

    by_free, counts = walk(admin, f"{B}?sort=free_gb&dir=desc")
    wanted = [str(i) for i in StorageBackend.objects.order_by("-free_gb", "-id").values_list("id", flat=True)]
    assert [i for p in by_free for i in p.ids] == wanted and counts == large
    filtered = table_page(admin, f"{B}?q=st-1")
    assert filtered.names and all(n.startswith("st-1") for n in filtered.names)
    assert 'id="backends-filter"' in first.html and 'id="backends-table"' in first.html
    disabled = table_page(admin, f"{B}?q=st-00-0").html
    assert ">disabled<" in disabled and "never" in disabled
    assert table_page(admin, f"{B}?marker=999999").ids == first.ids  # a marker that is gone: the first page


def test_backends_are_for_admins(cloud: SeededCloud) -> None:
    assert signed_in("demo", DEMO_PW).get(B).status_code == 403
