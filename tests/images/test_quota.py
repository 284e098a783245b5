"""Quotas: ``images`` (count, reserved at create) and ``image_bytes`` (reserved when an upload
ends); over either → 413 and nothing kept. Concurrent creates never overshoot."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from apps.identity import services as identity
from apps.identity.models import QuotaUsage
from apps.images import services
from apps.images.models import Image
from tests.images.conftest import glance_error


def _usage(project_id: str, resource: str) -> int:
    row = QuotaUsage.objects.filter(project_id=project_id, resource=resource).first()
    return row.in_use if row else 0


def test_image_count_quota(people, admin_actor):
    project = people["member"].project.id
    identity.quota_set(actor=admin_actor, project_id=project, limits={"images": 2})
    api = people["member"].api
    first = api.image()
    api.image()
    glance_error(api.post("images", {"name": "third"}), 413)
    assert Image.objects.filter(owner=project).count() == 2 and _usage(project, "images") == 2
    api.delete(f"images/{first['id']}")
    assert _usage(project, "images") == 1
    api.image()


def test_image_bytes_quota(people, admin_actor):
    project = people["member"].project.id
    identity.quota_set(actor=admin_actor, project_id=project, limits={"image_bytes": 1500})
    api = people["member"].api
    one = api.image()
    assert api.upload(one["id"], b"a" * 1000).status_code == 204
    assert _usage(project, "image_bytes") == 1000
    two = api.image()
    glance_error(api.upload(two["id"], b"b" * 1000), 413)
    two_row = Image.objects.get(pk=two["id"])
    assert two_row.status == "queued" and not two_row.location and _usage(project, "image_bytes") == 1000
    assert [p.name for p in Path(settings.STRATUS_IMAGE_DIR).iterdir() if p.name.startswith(two["id"])] == []
    api.delete(f"images/{one['id']}")
    assert _usage(project, "image_bytes") == 0
    assert api.upload(two["id"], b"b" * 1000).status_code == 204


@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_never_overshoot(cloud):
    """olga races in "other" (the seeded cloud's project that nothing else uses)."""
    actor = cloud.other_actor
    identity.quota_set(actor=cloud.admin_actor, project_id=cloud.other_project.id, limits={"images": 3})
    results: list[str] = []

    def create() -> None:
        try:
            services.image_create(actor=actor, name="r")
            results.append("ok")
        except Exception as exc:  # noqa: BLE001 - collected and checked below
            results.append(type(exc).__name__)
        finally:
            connection.close()

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 3 and results.count("QuotaExceeded") == 5, results
    other = cloud.other_project.id
    assert Image.objects.filter(owner=other).count() == 3 and _usage(other, "images") == 3
