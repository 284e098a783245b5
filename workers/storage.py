"""The storage agent of a node: makes, copies, extends and removes volume files; reports capacity.

One worker process per storage node consumes the queue ``storage.<host>`` (``make run`` starts one for
``STRATUS_HOST``; ``tests/storage_nodes.py`` starts them for tests)::

    celery -A portal worker -Q storage.<host> --pool=threads -n storage.<host>@%h

Its files live under ``STRATUS_VOLUMES_DIR`` (default ``STRATUS_DATA_DIR/volumes``) ``/<host>/``
(``workers.drivers.storage.FileVolumeDriver``); images are streamed from the image store into
``<that>/.image-cache/`` once and converted to qcow2. When the worker is ready it reports its backend
(``apps.volumes.services.backend_report``, statvfs of its directory) and then every
``STRATUS_STORAGE_HEARTBEAT_SECONDS`` from a thread; the control tier schedules volumes only to
backends heard from within ``STRATUS_STORAGE_SERVICE_DOWN_TIME``.

Each task loads what it needs, calls the driver and reports through ``apps.volumes.services``; the
driver's operations are idempotent, so a redelivered task is harmless.
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from celery import shared_task
from celery.signals import worker_ready, worker_shutdown

from lib import imageformat
from workers.drivers.hypervisor.imagecache import ImageCache
from workers.drivers.storage import FileVolumeDriver, StorageError
from workers.images import cached_image
from workers.queues import consumed_hosts

logger = logging.getLogger(__name__)

QUEUE_PREFIX = "storage."
_drivers: dict[str, FileVolumeDriver] = {}
_lock = threading.Lock()
_stop = threading.Event()


def queue_for(host: str) -> str:
    return QUEUE_PREFIX + host


def worker_argv(python: str, host: str, *, concurrency: int = 4, loglevel: str = "INFO") -> list[str]:
    """The command of a storage node's worker (``make run`` and the tests start the same)."""
    queue = queue_for(host)
    return [python, "-m", "celery", "-A", "portal", "worker", "-Q", queue, "--pool=threads",
            f"--concurrency={concurrency}", "-n", f"{queue}-{os.getpid()}@%h", "--without-gossip",
            "--without-mingle", f"--loglevel={loglevel}"]


def volumes_root() -> Path:
    from django.conf import settings

    configured = settings.STRATUS_VOLUMES_DIR
    return Path(configured) if configured else Path(settings.DATA_DIR) / "volumes"


def driver(host: str) -> FileVolumeDriver:
    with _lock:
        if host not in _drivers:
            _drivers[host] = FileVolumeDriver(volumes_root() / host)
        return _drivers[host]


def _image_path(image_id: str, host: str) -> tuple[str, str | None]:
    """The Glance image's bytes in this node's cache (streamed from the image store once, checksums
    verified) and its disk format."""
    from apps.images.models import Image

    image = Image.objects.filter(pk=image_id).first()
    if image is None or image.status not in (Image.ACTIVE, Image.DEACTIVATED) or not image.location:
        raise StorageError(f"image {image_id} is not available")
    try:  # the driver checks again before converting
        return cached_image(ImageCache(volumes_root() / host / ".image-cache"), image), image.disk_format
    except imageformat.ImageFormatError as exc:
        raise StorageError(f"Image {image.id} is refused: {exc}") from None


@shared_task(name="workers.storage.create_volume", ignore_result=False)
def create_volume(volume_id: str, size_gb: int, host: str, snapshot_id: str | None = None,
                  source_volume_id: str | None = None, image_id: str | None = None) -> str:
    from apps.volumes import services

    try:
        d = driver(host)
        if snapshot_id:
            path = d.create_from_snapshot(volume_id, size_gb, snapshot_id)
        elif source_volume_id:
            path = d.create_from_volume(volume_id, size_gb, source_volume_id)
        elif image_id:
            image_path, disk_format = _image_path(image_id, host)
            path = d.create_from_image(volume_id, size_gb, image_path, disk_format)
        else:
            path = d.create_blank(volume_id, size_gb)
    except Exception as exc:
        logger.exception("creating volume %s on %s failed", volume_id, host)
        services.volume_create_failed(volume_id=volume_id, reason=str(exc))
        return "error"
    if not services.volume_created(volume_id=volume_id):
        # deleted while it was being made: leave no orphan file
        from apps.volumes.models import Volume

        if not Volume.objects.filter(pk=volume_id).exists():
            driver(host).delete_volume(volume_id)
    logger.info("volume %s created on %s at %s", volume_id, host, path)
    return "available"


def _worked(work: Callable[[], object], what: str, failed: Callable[..., object], **ids: str) -> bool:
    """Run the driver's ``work``; when it raises, log that ``what`` failed and report it through the
    service ``failed(**ids, reason=...)``. Whether it worked."""
    try:
        work()
    except Exception as exc:
        logger.exception("%s failed", what)
        failed(**ids, reason=str(exc))
        return False
    return True


@shared_task(name="workers.storage.delete_volume", ignore_result=False)
def delete_volume(volume_id: str, host: str, snapshot_ids: list[str] | None = None) -> str:
    from apps.volumes import services

    def delete() -> None:
        d = driver(host)
        for snapshot_id in snapshot_ids or []:
            d.delete_snapshot(snapshot_id)
        d.delete_volume(volume_id)

    if not _worked(delete, f"deleting volume {volume_id} on {host}", services.volume_delete_failed,
                   volume_id=volume_id):
        return "error_deleting"
    services.volume_deleted(volume_id=volume_id)
    return "deleted"


@shared_task(name="workers.storage.extend_volume", ignore_result=False)
def extend_volume(volume_id: str, size_gb: int, host: str) -> str:
    from apps.volumes import services

    if not _worked(lambda: driver(host).extend(volume_id, size_gb), f"extending volume {volume_id} on {host}",
                   services.volume_extend_failed, volume_id=volume_id):
        return "error_extending"
    services.volume_extended(volume_id=volume_id, size_gb=size_gb)
    return "available"


@shared_task(name="workers.storage.create_snapshot", ignore_result=False)
def create_snapshot(snapshot_id: str, volume_id: str, host: str) -> str:
    from apps.volumes import services

    if not _worked(lambda: driver(host).create_snapshot(snapshot_id, volume_id),
                   f"snapshot {snapshot_id} of {volume_id} on {host}", services.snapshot_create_failed,
                   snapshot_id=snapshot_id):
        return "error"
    if not services.snapshot_created(snapshot_id=snapshot_id):
        from apps.volumes.models import Snapshot

        if not Snapshot.objects.filter(pk=snapshot_id).exists():
            driver(host).delete_snapshot(snapshot_id)
    return "available"


@shared_task(name="workers.storage.delete_snapshot", ignore_result=False)
def delete_snapshot(snapshot_id: str, host: str) -> str:
    from apps.volumes import services

    if not _worked(lambda: driver(host).delete_snapshot(snapshot_id), f"deleting snapshot {snapshot_id} on {host}",
                   services.snapshot_delete_failed, snapshot_id=snapshot_id):
        return "error_deleting"
    services.snapshot_deleted(snapshot_id=snapshot_id)
    return "deleted"


def _chunks(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := fh.read(size):
            yield chunk


@shared_task(name="workers.storage.upload_volume", ignore_result=False)
def upload_volume(volume_id: str, image_id: str, disk_format: str, host: str, restore: str = "available",
                  protected: bool = False) -> str:
    """os-volume_upload_image: the volume converted to ``disk_format`` beside it, streamed into Glance
    image ``image_id`` through ``volume_image_store``, then removed; reports ``volume_uploaded`` or
    ``volume_upload_failed`` (which deletes the image)."""
    from apps.volumes import services

    def upload() -> None:
        d = driver(host)
        copy = d.export(volume_id, disk_format)
        try:
            services.volume_image_store(volume_id=volume_id, image_id=image_id, chunks=_chunks(copy))
        finally:
            d.discard(copy)

    if not _worked(upload, f"uploading volume {volume_id} on {host} to image {image_id}",
                   services.volume_upload_failed, volume_id=volume_id, image_id=image_id, restore=restore):
        return "error: the upload to the image failed"
    services.volume_uploaded(volume_id=volume_id, image_id=image_id, restore=restore, protected=protected)
    logger.info("volume %s uploaded to image %s", volume_id, image_id)
    return "uploaded"


# ---- the agent: report and heartbeat ---------------------------------------------------------------

def report(host: str) -> None:
    from apps.volumes import services

    d = driver(host)
    cap = d.capacity()
    services.backend_report(host=host, capacity_gb=cap.total_gb, free_gb=cap.free_gb, path=str(d.root))


def _heartbeat(host: str, every: float) -> None:
    from django.db import close_old_connections

    while not _stop.wait(every):
        try:
            report(host)
        except Exception:
            logger.exception("storage heartbeat of %s failed", host)
        finally:
            close_old_connections()


@worker_ready.connect
def _on_worker_ready(sender: Any = None, **_: Any) -> None:
    """A worker consuming ``storage.<host>`` is that node's storage agent: report it and heartbeat."""
    hosts = consumed_hosts(sender, QUEUE_PREFIX)
    if not hosts:
        return
    from django.conf import settings

    every = settings.STRATUS_STORAGE_HEARTBEAT_SECONDS
    for host in hosts:
        try:
            removed = driver(host).clean_tmp()
            report(host)
            logger.warning("storage node %s registered (%s; %d leftovers removed)", host, driver(host).root, removed)
        except Exception:
            logger.exception("storage node %s could not register", host)
        threading.Thread(target=_heartbeat, args=(host, every), name=f"storage-heartbeat-{host}",
                         daemon=True).start()


@worker_shutdown.connect
def _on_worker_shutdown(**_: Any) -> None:
    _stop.set()
