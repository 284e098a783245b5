"""workers.objects tasks, run by a real Celery worker process against the test database."""
from __future__ import annotations

import time

import pytest
from django.conf import settings

from apps.objects import services
from apps.objects.models import Container, CounterChange, Object
from apps.objects.storage import get_engine
from tests.identity import factories
from workers.objects import audit, expire, fold, usage

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_beat_sweeps_expired_objects_in_a_real_worker(celery_worker_process, tmp_path) -> None:
    assert settings.CELERY_BEAT_SCHEDULE["objects-expire"]["task"] == "workers.objects.expire"
    factories.seed()
    admin = factories.admin_actor()
    services.container_create(actor=admin, name="sweep")
    for name in ("gone", "kept"):
        services.object_put(actor=admin, container="sweep", name=name, stream=[b"12345"],
                            delete_at=int(time.time()) + 3600)
    Object.objects.filter(name="gone").update(delete_at=int(time.time()) - 1)

    assert expire.apply_async(queue=celery_worker_process.queue).get(timeout=30) == 1

    assert list(Object.objects.values_list("name", flat=True)) == ["kept"]
    container = Container.objects.get(name="sweep")
    assert (container.object_count, container.bytes_used) == (1, 5)


def test_the_beat_folds_counter_changes_in_a_real_worker(celery_worker_process) -> None:
    assert settings.CELERY_BEAT_SCHEDULE["objects-fold"]["task"] == "workers.objects.fold"
    factories.seed()
    admin = factories.admin_actor()
    services.container_create(actor=admin, name="fold")
    for name in ("a", "b", "c"):
        services.object_put(actor=admin, container="fold", name=name, stream=[b"1234"])
    services.object_delete(actor=admin, container="fold", name="b")
    assert CounterChange.objects.count() == 4

    assert fold.apply_async(queue=celery_worker_process.queue).get(timeout=30) == 1

    container = Container.objects.get(name="fold")
    assert not CounterChange.objects.exists()
    assert (container.base_count, container.base_bytes) == (container.object_count, container.bytes_used) == (2, 8)
    assert fold.apply_async(queue=celery_worker_process.queue).get(timeout=30) == 0


def test_the_beat_audits_in_a_real_worker(celery_worker_process) -> None:
    """The worker reads the blobs back (the same object store as this process: the default one) and
    reports the one whose blob is gone."""
    assert settings.CELERY_BEAT_SCHEDULE["objects-audit"]["task"] == "workers.objects.audit"
    factories.seed()
    admin = factories.admin_actor()
    services.container_create(actor=admin, name="audited")
    for name in ("kept", "gone"):
        services.object_put(actor=admin, container="audited", name=name, stream=[b"abcdef" * 100])
    row = Object.objects.get(name="gone")
    get_engine(row.engine).path(row.location).unlink()

    assert audit.apply_async(queue=celery_worker_process.queue).get(timeout=30) == {
        "checked": 2, "bytes": 600, "failed": 1}
    assert "cannot read" in Object.objects.get(name="gone").audit_error
    assert Object.objects.get(name="kept").audit_error == ""


def test_the_beat_records_accounts_usage_in_a_real_worker(celery_worker_process) -> None:
    """Each account's bytes, objects and containers become its swift_account's samples in telemetry."""
    from apps.telemetry.models import Measure, Resource

    assert settings.CELERY_BEAT_SCHEDULE["objects-usage"]["task"] == "workers.objects.usage"
    factories.seed()
    admin = factories.admin_actor()
    services.container_create(actor=admin, name="counted")
    for name in ("a", "b"):
        services.object_put(actor=admin, container="counted", name=name, stream=[b"x" * 1000])

    assert usage.apply_async(queue=celery_worker_process.queue).get(timeout=30) == 1

    account = Resource.objects.get(type_id="swift_account")
    assert account.project_id == admin.project_id
    assert account.attributes == {"bytes": 2000, "objects": 2, "containers": 1}
    assert dict(Measure.objects.filter(metric__resource=account).values_list("metric__name", "value")) == {
        "storage.objects.size": 2000.0, "storage.objects": 2.0, "storage.objects.containers": 1.0}
