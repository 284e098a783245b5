"""A new stack's resource rows: PostgreSQL's COPY (services.stacks._insert_resources) writes the same
column values as the bulk_create it replaces (still the path on other databases), names with what COPY's
text format escapes (backslash, tab, newline, carriage return) and what JSON escapes included."""
from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db import connection

from apps.orchestration import services
from apps.orchestration.models import StackResource
from apps.orchestration.services import stacks
from tests.api_client import SeededCloud

pytestmark = pytest.mark.django_db

TEMPLATE = {
    "heat_template_version": "2016-10-14",
    "resources": {
        "a": {"type": "OS::Heat::None", "properties": {"x": "it's \"quoted\" é"}},
        "b": {"type": "OS::Heat::None", "depends_on": ["a"], "deletion_policy": "Retain"},
        "c": {"type": "OS::Heat::RandomString", "properties": {"length": 8},
              "metadata": {"m": {"get_resource": "b"}}},
        "d": {"type": "OS::Heat::None", "depends_on": ["a", "c"]},
        "e\\N\t\\t\n\r é \"q\" 'x' ✓": {"type": "OS::Heat::None", "depends_on": ["d"]},
        "f": {"type": "OS::Heat::None", "properties": {"v": {"get_attr": ["e\\N\t\\t\n\r é \"q\" 'x' ✓", "x"]}}},
    },
}
ODD = "e\\N\t\\t\n\r é \"q\" 'x' ✓"  # what COPY's text format escapes, and what JSON does
SKIP = {"id", "stack_id", "created_at", "updated_at"}


def _rows(stack_id: str) -> dict[str, dict[str, Any]]:
    rows = {r["name"]: r for r in StackResource.objects.filter(stack_id=stack_id).values()}
    with connection.cursor() as cursor:  # the JSON columns as PostgreSQL stores them
        cursor.execute("SELECT name, requires::text, required_by::text, attributes::text, data::text, "
                       "properties::text FROM orchestration_stackresource WHERE stack_id = %s", [stack_id])
        for name, *texts in cursor.fetchall():
            rows[name]["stored"] = texts
    return {name: {k: v for k, v in row.items() if k not in SKIP} for name, row in rows.items()}


def test_rows_written_fast_equal_bulk_create_rows(cloud: SeededCloud, monkeypatch: pytest.MonkeyPatch) -> None:
    assert connection.vendor == "postgresql"
    fast = services.stack_create(actor=cloud.member_actor, name="fast", template=TEMPLATE)
    monkeypatch.setattr(stacks, "_copy_rows", lambda: False)  # bulk_create's path, as on SQLite
    slow = services.stack_create(actor=cloud.member_actor, name="slow", template=TEMPLATE)
    monkeypatch.undo()
    fast_rows, slow_rows = _rows(fast.id), _rows(slow.id)
    assert sorted(fast_rows) == ["a", "b", "c", "d", ODD, "f"]
    assert fast_rows == slow_rows
    assert fast_rows["d"]["requires"] == ["a", "c"] and fast_rows["b"]["deletion_policy"] == "Retain"
    assert fast_rows[ODD]["requires"] == ["d"] and fast_rows[ODD]["required_by"] == ["f"]
    assert fast_rows["f"]["requires"] == [ODD] and fast_rows["f"]["level"] == 5
    assert fast_rows["c"]["properties"] is None and fast_rows["c"]["attributes"] == {}
    ids = list(StackResource.objects.filter(stack_id=fast.id).values_list("id", flat=True))
    assert len(set(ids)) == 6 and all(str(uuid.UUID(i)) == i and uuid.UUID(i).version == 4
                                      and uuid.UUID(i).variant == uuid.RFC_4122 for i in ids)
    created = StackResource.objects.filter(stack_id=fast.id).values_list("created_at", "updated_at")
    assert all(c is not None and u is not None for c, u in created)
