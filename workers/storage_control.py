"""The control tier's side of the storage agents' reports (control queue): each task takes the plain
values a storage node sent with ``workers.control_bus.report`` and applies them through one
``apps.volumes`` service (workers/storage.py says what each node task reports).

Every report names the ``host`` it came from, and the services change a volume or snapshot only when
it is on that host's backend and in the status the report expects: a node can lie only about its own
resources, and a report applied twice changes nothing the second time. The return values are for the
task log only.
"""
from __future__ import annotations

import logging
from typing import Any

from celery import current_app, shared_task

logger = logging.getLogger(__name__)

NODE_QUEUE_PREFIX = "storage."


def _discard(host: str, *, volume_ids: list[str] | None = None, snapshot_ids: list[str] | None = None) -> None:
    """A file made for a volume or snapshot deleted meanwhile: the node removes it (no orphan file)."""
    current_app.send_task("workers.storage.discard", kwargs={"host": host, "volume_ids": volume_ids or [],
                                                             "snapshot_ids": snapshot_ids or []},
                          queue=NODE_QUEUE_PREFIX + host)


def _applied(done: bool) -> str:
    return "applied" if done else "ignored"


@shared_task(name="workers.storage_control.volume_created")
def volume_created(host: str, volume_id: str) -> str:
    from apps.volumes import services

    outcome = services.volume_created(volume_id=volume_id, host=host)
    if outcome is services.Created.DISCARD:
        _discard(host, volume_ids=[volume_id])  # deleted while it was being made
    return outcome.value


@shared_task(name="workers.storage_control.volume_create_failed")
def volume_create_failed(host: str, volume_id: str, reason: str) -> str:
    from apps.volumes import services

    return _applied(services.volume_create_failed(volume_id=volume_id, reason=reason, host=host))


@shared_task(name="workers.storage_control.volume_deleted")
def volume_deleted(host: str, volume_id: str) -> str:
    from apps.volumes import services

    return _applied(services.volume_deleted(volume_id=volume_id, host=host))


@shared_task(name="workers.storage_control.volume_delete_failed")
def volume_delete_failed(host: str, volume_id: str, reason: str) -> str:
    from apps.volumes import services

    return _applied(services.volume_delete_failed(volume_id=volume_id, reason=reason, host=host))


@shared_task(name="workers.storage_control.volume_extended")
def volume_extended(host: str, volume_id: str, size_gb: int) -> str:
    from apps.volumes import services

    return _applied(services.volume_extended(volume_id=volume_id, size_gb=int(size_gb), host=host))


@shared_task(name="workers.storage_control.volume_extend_failed")
def volume_extend_failed(host: str, volume_id: str, reason: str) -> str:
    from apps.volumes import services

    return _applied(services.volume_extend_failed(volume_id=volume_id, reason=reason, host=host))


@shared_task(name="workers.storage_control.snapshot_created")
def snapshot_created(host: str, snapshot_id: str) -> str:
    from apps.volumes import services

    outcome = services.snapshot_created(snapshot_id=snapshot_id, host=host)
    if outcome is services.Created.DISCARD:
        _discard(host, snapshot_ids=[snapshot_id])
    return outcome.value


@shared_task(name="workers.storage_control.snapshot_create_failed")
def snapshot_create_failed(host: str, snapshot_id: str, reason: str) -> str:
    from apps.volumes import services

    return _applied(services.snapshot_create_failed(snapshot_id=snapshot_id, reason=reason, host=host))


@shared_task(name="workers.storage_control.snapshot_deleted")
def snapshot_deleted(host: str, snapshot_id: str) -> str:
    from apps.volumes import services

    return _applied(services.snapshot_deleted(snapshot_id=snapshot_id, host=host))


@shared_task(name="workers.storage_control.snapshot_delete_failed")
def snapshot_delete_failed(host: str, snapshot_id: str, reason: str) -> str:
    from apps.volumes import services

    return _applied(services.snapshot_delete_failed(snapshot_id=snapshot_id, reason=reason, host=host))


@shared_task(name="workers.storage_control.volume_upload_stored")
def volume_upload_stored(host: str, volume_id: str, image_id: str, size: int, checksum: str,
                         restore: str = "available", protected: bool = False) -> str:
    """The node sent the volume's copy into the image through the image API (``size`` bytes, md5
    ``checksum``): checked against the image, then the upload ends (``volume_upload_finish``)."""
    from apps.volumes import services

    return _applied(services.volume_upload_finish(volume_id=volume_id, image_id=image_id, host=host,
                                                  size=int(size), checksum=checksum,
                                                  restore=restore, protected=bool(protected)))


@shared_task(name="workers.storage_control.volume_upload_failed")
def volume_upload_failed(host: str, volume_id: str, image_id: str, reason: str, restore: str = "available") -> str:
    from apps.volumes import services

    return _applied(services.volume_upload_failed(volume_id=volume_id, image_id=image_id, restore=restore,
                                                  reason=reason, host=host))


@shared_task(name="workers.storage_control.backend_report")
def backend_report(host: str, capacity_gb: float, free_gb: float, path: str = "") -> str:
    """A storage agent's heartbeat: its backend's capacity (what it measured of its own directory)."""
    from apps.volumes import services

    services.backend_report(host=host, capacity_gb=capacity_gb, free_gb=free_gb, path=path)
    return "applied"


@shared_task(name="workers.storage_control.image_url_renew", ignore_result=False)
def image_url_renew(*, host: str, volume_id: str, image_id: str, purpose: str) -> dict[str, Any]:
    """A storage node whose signed image grant expired (``workers.images``: the image API answered 401)
    asks for a fresh one (``volume_image_url_renew``): {"url": the grant} while the node is still
    entitled to it, else {"refused": why}."""
    from apps.core.errors import StratusError
    from apps.volumes.selectors import volume_image_url_renew

    try:
        return {"url": volume_image_url_renew(host=host, volume_id=volume_id, image_id=image_id, purpose=purpose)}
    except StratusError as exc:
        return {"refused": exc.message}
