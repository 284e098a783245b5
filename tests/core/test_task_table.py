"""The task log panels are live tables (apps/dashboard/tables.py): sorted, filtered and paged by the task
log's selector (keyset after a marker) at a constant number of queries whatever the log's length; the
filter form's resource and state are kept by every sort and page link."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from apps.core import states
from apps.core.models import TaskRecord
from tests.core.test_task_log import client_for
from tests.dashboard.table_pages import table_page, walk, walk_back

pytestmark = pytest.mark.django_db
D = "/dashboard/tasks/"


def _grow(project_id: str, start: int, count: int) -> None:
    now = timezone.now()
    for i in range(start, start + count):  # created out of action order, some of them volumes, some failed
        TaskRecord.objects.create(
            name=f"workers.test.t{i}", queue="q", action=f"act-{(i * 37) % 100:02d}",
            resource_type="volume" if i % 3 == 0 else "instance", resource_id=f"r{i}", project_id=project_id,
            status=states.FAILED if i % 4 == 0 else states.SUCCEEDED, created_at=now - timedelta(seconds=i))


def _ids(pages: list[Any]) -> list[str]:
    return [i for p in pages for i in p.ids]


def test_the_task_log_sorts_filters_and_pages_with_constant_queries(cloud: Any) -> None:
    demo = cloud.demo_project.id
    TaskRecord.objects.create(name="workers.test.theirs", queue="q", action="act-00", resource_type="volume",
                              resource_id="x", project_id=cloud.other_project.id)
    alice: Client = client_for("alice")
    _grow(demo, 0, 30)
    alice.get(D)  # warm up (the session)
    first_small = table_page(alice, D)
    _pages, small = walk(alice, first_small.next)
    _grow(demo, 30, 30)

    first = table_page(alice, D)
    assert first.queries == first_small.queries and len(first.ids) == 25 and first.previous is None
    pages, large = walk(alice, first.next)
    newest = list(TaskRecord.objects.filter(project_id=demo).order_by("-created_at", "-id")
                  .values_list("id", flat=True))
    assert first.ids + _ids(pages) == newest and len(newest) == 60
    assert large == small and len(large) == 1, (small, large)
    back = walk_back(alice, pages[-1].previous)
    assert _ids(back) + pages[-1].ids == newest

    by_action, counts = walk(alice, f"{D}?sort=action&dir=asc")
    wanted = list(TaskRecord.objects.filter(project_id=demo).order_by("action", "id").values_list("id", flat=True))
    assert _ids(by_action) == wanted and counts == large
    # the filter box (action, task name or resource id) and the form's filters, kept by the pages' links
    assert table_page(alice, f"{D}?q=ACT-37").names == ["act-37 instance"]
    failed_volumes, _ = walk(alice, f"{D}?resource_type=volume&status=failed&sort=action&dir=desc")
    wanted = list(TaskRecord.objects.filter(project_id=demo, resource_type="volume", status=states.FAILED)
                  .order_by("-action", "-id").values_list("id", flat=True))
    assert _ids(failed_volumes) == wanted and wanted
    paged = table_page(alice, f"{D}?resource_type=instance")
    assert paged.next and "resource_type=instance" in paged.next
    assert 'data-live="task"' in first.html and 'id="tasks-filter"' in first.html
    # an unknown sort key: newest first; a marker that is gone: the first page
    assert table_page(alice, f"{D}?sort=kwargs").ids == newest[:25]
    assert table_page(alice, f"{D}?marker=gone").ids == newest[:25]


def test_the_admins_log_pages_every_projects_records(cloud: Any) -> None:
    _grow(cloud.demo_project.id, 0, 20)
    _grow(cloud.other_project.id, 20, 20)
    _grow("", 40, 20)  # the nodes' own work
    admin = client_for("admin", "admin-pw")
    pages, counts = walk(admin, "/dashboard/tasks/all?sort=created_at&dir=desc")
    assert _ids(pages) == list(TaskRecord.objects.order_by("-created_at", "-id").values_list("id", flat=True))
    assert len(counts) == 1 and len(pages) == 3
    assert "nodes" in pages[-1].html and cloud.other_project.name in pages[0].html + pages[1].html
