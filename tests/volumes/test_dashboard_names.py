"""Names, not ids, on the block storage pages (issue 11, item 3): a snapshot names its volume (a link to
the volume's page), a volume names the snapshot and the volume it was made from; the snapshot list
costs a constant number of queries whatever its length."""
from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.volumes import services
from apps.volumes.models import Snapshot
from tests.api_client import SeededCloud
from tests.volumes.test_dashboard import D, available, client_for

pytestmark = pytest.mark.django_db


def _shown(html: str) -> str:
    return re.sub(r"<[^>]*>", " ", html)


def _snapshot(cloud: SeededCloud, volume_id: str, name: str) -> Snapshot:
    snapshot = services.snapshot_create(actor=cloud.member_actor, volume_id=volume_id, name=name)
    services.snapshot_created(snapshot_id=snapshot.id)
    return snapshot


def test_snapshots_and_sources_by_name(cloud: SeededCloud) -> None:
    data = available(cloud.member_actor, "data")
    snap = _snapshot(cloud, data.id, "nightly")
    alice = client_for("alice")
    listing = alice.get(f"{D}/snapshots/").content.decode()
    row = re.search(rf'<tr data-id="{snap.id}".*?</tr>', listing, re.S)
    assert row and f'<a href="{D}/{data.id}/" data-volume="{data.id}">data</a>' in row.group(0)
    assert data.id[:8] not in _shown(row.group(0))

    restored = services.volume_create(actor=cloud.member_actor, name="restored", snapshot_id=snap.id)
    services.volume_created(volume_id=restored.id)
    page = alice.get(f"{D}/{restored.id}/").content.decode()
    assert re.search(r'id="source-snapshot">nightly</dd>', page)
    assert snap.id not in _shown(page)
    cloned = services.volume_create(actor=cloud.member_actor, name="clone", source_volid=data.id)
    page = alice.get(f"{D}/{cloned.id}/").content.decode()
    assert f'id="source-volume"><a href="{D}/{data.id}/">data</a></dd>' in page


def test_snapshot_list_costs_constant_queries(cloud: SeededCloud) -> None:
    alice = client_for("alice")

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert alice.get(f"{D}/snapshots/").status_code == 200
        return len(ctx.captured_queries)

    _snapshot(cloud, available(cloud.member_actor, "v0").id, "s0")
    alice.get(f"{D}/snapshots/")
    one = count()
    for i in range(1, 5):
        _snapshot(cloud, available(cloud.member_actor, f"v{i}").id, f"s{i}")
    assert count() == one
    html = alice.get(f"{D}/snapshots/").content.decode()
    assert all(f">v{i}</a>" in html for i in range(5))
