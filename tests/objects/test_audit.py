"""The auditor (issue 13): stored blobs are read back and checked against their rows; a blob changed
on disk or gone is reported and the row keeps the finding; a sound one is marked audited; the oldest
audit goes first; an overwrite is audited afresh. The beat task in a real worker: tests/workers/test_objects.py."""
from __future__ import annotations

from pathlib import Path

import pytest

from apps.identity.policy import Actor
from apps.objects import services
from apps.objects.models import Object
from apps.objects.storage import get_engine
from tests.identity import factories

pytestmark = pytest.mark.django_db(transaction=True)


def _blob(name: str) -> Path:
    row = Object.objects.get(name=name)
    return get_engine(row.engine).path(row.location)


def _three(admin: Actor) -> None:
    services.container_create(actor=admin, name="audited")
    for name in ("sound", "flipped", "gone"):
        services.object_put(actor=admin, container="audited", name=name, stream=[b"abcdef" * 100])


def test_a_changed_and_a_missing_blob_are_reported_and_kept_on_their_rows() -> None:
    factories.seed()
    admin = factories.admin_actor()
    _three(admin)
    flipped = _blob("flipped")
    flipped.write_bytes(b"abcdeF" + flipped.read_bytes()[6:])  # same size, one byte changed
    _blob("gone").unlink()

    report = services.objects_audit()

    assert report.checked == 3 and report.bytes == 600
    failed = {name: error for _, container, name, error in report.failed if container == "audited"}
    assert set(failed) == {"flipped", "gone"}
    assert "corrupt" in failed["flipped"] and "cannot read" in failed["gone"]
    rows = {o.name: o for o in Object.objects.all()}
    assert all(o.audited_at is not None for o in rows.values())
    assert rows["sound"].audit_error == ""
    assert rows["flipped"].audit_error == failed["flipped"] and rows["gone"].audit_error == failed["gone"]


def test_the_oldest_audit_goes_first_and_an_overwrite_is_audited_afresh() -> None:
    factories.seed()
    admin = factories.admin_actor()
    _three(admin)
    assert services.objects_audit(limit=2).checked == 2
    (left,) = Object.objects.filter(audited_at__isnull=True).values_list("name", flat=True)
    assert services.objects_audit(limit=1).checked == 1
    assert Object.objects.get(name=left).audited_at is not None  # the one never audited went first
    assert not Object.objects.filter(audited_at__isnull=True).exists()

    _blob("sound").write_bytes(b"x" * 600)
    assert services.objects_audit(limit=3).failed  # found
    services.object_put(actor=admin, container="audited", name="sound", stream=[b"fresh"])
    row = Object.objects.get(name="sound")
    assert row.audited_at is None and row.audit_error == ""  # the new blob waits for its own audit
    assert services.objects_audit(limit=1).checked == 1  # and goes first
    assert Object.objects.get(name="sound").audit_error == ""
