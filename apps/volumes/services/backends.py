"""Storage backends: the agents' heartbeats, and the scheduler that places a volume on one (thin
provisioning)."""
from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.core.errors import BadRequest
from apps.volumes import selectors
from apps.volumes.models import StorageBackend


def backend_report(*, host: str, capacity_gb: float, free_gb: float, path: str = "",
                   availability_zone: str | None = None) -> StorageBackend:
    """The storage agent is alive: create or refresh its backend with the capacity it measured."""
    if not host or len(host) > 255:
        raise BadRequest("A storage backend needs a host name of at most 255 characters.")
    values: dict[str, Any] = {"capacity_gb": float(capacity_gb), "free_gb": float(free_gb), "path": path,
                              "last_heartbeat": timezone.now()}
    if availability_zone:
        values["availability_zone"] = availability_zone
    with transaction.atomic():
        backend, created = StorageBackend.objects.get_or_create(host=host, defaults=values)
        if not created:
            StorageBackend.objects.filter(pk=backend.pk).update(**values, updated_at=timezone.now())
            backend.refresh_from_db()
    return backend


def _schedule(size: int, zone: str | None) -> StorageBackend | None:
    """The live backend with the most room left (thin provisioning: capacity x over-subscription
    ratio - provisioned), claimed for ``size`` GB under its row lock; None when none fits."""
    candidates = selectors.backends_up()
    if zone:
        candidates = candidates.filter(availability_zone=zone)
    best: StorageBackend | None = None
    best_room = -1.0
    for backend in candidates.select_for_update().order_by("host"):
        room = backend.capacity_gb * backend.max_over_subscription_ratio - backend.provisioned_gb
        if room >= size and room > best_room and backend.free_gb > 0:
            best, best_room = backend, room
    if best is not None:
        StorageBackend.objects.filter(pk=best.pk).update(provisioned_gb=F("provisioned_gb") + size)
    return best


def _unclaim(backend_id: int | None, size: int) -> None:
    if backend_id is not None and size:
        StorageBackend.objects.filter(pk=backend_id).update(provisioned_gb=F("provisioned_gb") - size)
