"""workers.objects tasks, run by a real Celery worker process against the test database."""
from __future__ import annotations

import time

import pytest
from django.conf import settings

from apps.objects import services
from apps.objects.models import Container, Object
from tests.identity import factories
from workers.objects import expire

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
