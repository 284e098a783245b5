"""The storage agent of a node: makes, copies, extends and removes volume files; reports capacity.

One worker process per storage node consumes the queue ``storage.<host>`` (``make run`` starts one for
``STRATUS_HOST``; ``tests/storage_nodes.py`` starts them for tests)::

    celery -A portal worker -Q storage.<host> --pool=threads -n storage.<host>@%h

The node holds no database credentials (issue 16; it runs with ``STRATUS_NO_DATABASE=1``): each task
gets a spec of plain values in its message (ids, sizes, and for a volume made of an image a URL of the
image API signed for reading that image from this node, its disk format and checksums), calls the
driver, and reports the outcome with
``workers.control_bus.report`` to a control task of ``workers/storage_control.py`` on the control queue,
which applies it through ``apps.volumes.services`` (checking that the volume is on this node's backend).
Nothing here imports a model, a selector or a service.

Its files live under ``STRATUS_VOLUMES_DIR`` (default ``STRATUS_DATA_DIR/volumes``) ``/<host>/``
(``workers.drivers.storage.FileVolumeDriver``); images are streamed from the controller's image API
(``workers.images.cached_image``) into ``<that>/.image-cache/`` once. An upload to an
image streams the converted volume to the image API with a signed write URL. When the worker is
ready it reports its backend (statvfs of its directory;
``workers.storage_control.backend_report``) and then every ``STRATUS_STORAGE_HEARTBEAT_SECONDS`` from a
thread; the control tier schedules volumes only to backends heard from within
``STRATUS_STORAGE_SERVICE_DOWN_TIME``.

The driver's operations are idempotent and so is every report on the control side, so a redelivered
task is harmless.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from celery import shared_task
from celery.signals import worker_ready, worker_shutdown

from lib import imageformat
from workers import control_bus, images
from workers.drivers.hypervisor.imagecache import ImageCache
from workers.drivers.storage import FileVolumeDriver, StorageError
from workers.images import ImageAPIError, cached_image, renewer
from workers.queues import consumed_hosts

logger = logging.getLogger(__name__)

QUEUE_PREFIX = "storage."
CONTROL = "workers.storage_control."  # the control tasks the reports go to
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


def _cached_image(image_id: str, source: dict[str, Any] | None, host: str, volume_id: str) -> tuple[str, str]:
    """The Glance image's bytes in this node's cache and its disk format, through the one node-side
    fetch (``workers.images.cached_image``: streamed from the controller's image API through the signed
    URL the message gives, once, size, md5 and multihash verified, the format inspector every time).
    ``source`` is what the control tier put in the message (``apps.volumes.services.volumes._image_source``):
    no database and no image store are read here. An expired URL (a creation sent again late) is renewed
    once by the control tier while the volume is still being made from this image on this host."""
    if not source or not source.get("url"):
        raise StorageError(f"image {image_id} is not available")
    cache = ImageCache(volumes_root() / host / ".image-cache")
    try:  # the driver checks again before converting
        path = cached_image(cache, {**source, "id": image_id},
                            renew=renewer("storage_control", host=host, image_id=image_id, purpose="read",
                                          volume_id=volume_id))
    except imageformat.ImageFormatError as exc:
        raise StorageError(f"Image {image_id} is refused: {exc}") from None
    except ImageAPIError as exc:
        raise StorageError(f"Image {image_id} could not be fetched: {exc}") from None
    return path, source.get("disk_format") or ""


def _outcome(work: Callable[[], object], what: str, failed: str, **ids: Any) -> bool:
    """Run the driver's ``work``; when it raises, log that ``what`` failed and report it to the control
    task ``workers.storage_control.<failed>`` (``**ids``, ``reason``). Whether it worked."""
    try:
        work()
    except Exception as exc:
        logger.exception("%s failed", what)
        control_bus.report(CONTROL + failed, **ids, reason=str(exc))
        return False
    return True


@shared_task(name="workers.storage.create_volume", ignore_result=False)
def create_volume(volume_id: str, size_gb: int, host: str, snapshot_id: str | None = None,
                  source_volume_id: str | None = None, image_id: str | None = None,
                  image: dict[str, Any] | None = None) -> str:
    """The volume's file: blank, a copy of a snapshot's or a volume's file on this node, or the image's
    data (``image``: its signed read URL, disk format and checksums) converted; reports
    ``volume_created`` or ``volume_create_failed``."""
    def create() -> None:
        d = driver(host)
        if snapshot_id:
            d.create_from_snapshot(volume_id, size_gb, snapshot_id)
        elif source_volume_id:
            d.create_from_volume(volume_id, size_gb, source_volume_id)
        elif image_id:
            image_path, disk_format = _cached_image(image_id, image, host, volume_id)
            d.create_from_image(volume_id, size_gb, image_path, disk_format)
        else:
            d.create_blank(volume_id, size_gb)

    if not _outcome(create, f"creating volume {volume_id} on {host}", "volume_create_failed", host=host,
                    volume_id=volume_id):
        return "error"
    control_bus.report(CONTROL + "volume_created", host=host, volume_id=volume_id)
    logger.info("volume %s created on %s", volume_id, host)
    return "available"


@shared_task(name="workers.storage.delete_volume", ignore_result=False)
def delete_volume(volume_id: str, host: str, snapshot_ids: list[str] | None = None) -> str:
    def delete() -> None:
        d = driver(host)
        for snapshot_id in snapshot_ids or []:
            d.delete_snapshot(snapshot_id)
        d.delete_volume(volume_id)

    if not _outcome(delete, f"deleting volume {volume_id} on {host}", "volume_delete_failed", host=host,
                    volume_id=volume_id):
        return "error_deleting"
    control_bus.report(CONTROL + "volume_deleted", host=host, volume_id=volume_id)
    return "deleted"


@shared_task(name="workers.storage.extend_volume", ignore_result=False)
def extend_volume(volume_id: str, size_gb: int, host: str) -> str:
    if not _outcome(lambda: driver(host).extend(volume_id, size_gb), f"extending volume {volume_id} on {host}",
                    "volume_extend_failed", host=host, volume_id=volume_id):
        return "error_extending"
    control_bus.report(CONTROL + "volume_extended", host=host, volume_id=volume_id, size_gb=size_gb)
    return "available"


@shared_task(name="workers.storage.create_snapshot", ignore_result=False)
def create_snapshot(snapshot_id: str, volume_id: str, host: str) -> str:
    if not _outcome(lambda: driver(host).create_snapshot(snapshot_id, volume_id),
                    f"snapshot {snapshot_id} of {volume_id} on {host}", "snapshot_create_failed", host=host,
                    snapshot_id=snapshot_id):
        return "error"
    control_bus.report(CONTROL + "snapshot_created", host=host, snapshot_id=snapshot_id)
    return "available"


@shared_task(name="workers.storage.delete_snapshot", ignore_result=False)
def delete_snapshot(snapshot_id: str, host: str) -> str:
    if not _outcome(lambda: driver(host).delete_snapshot(snapshot_id), f"deleting snapshot {snapshot_id} on {host}",
                    "snapshot_delete_failed", host=host, snapshot_id=snapshot_id):
        return "error_deleting"
    control_bus.report(CONTROL + "snapshot_deleted", host=host, snapshot_id=snapshot_id)
    return "deleted"


@shared_task(name="workers.storage.discard", ignore_result=False)
def discard(host: str, volume_ids: list[str] | None = None, snapshot_ids: list[str] | None = None) -> str:
    """Remove files whose volume or snapshot was deleted while they were being made (the control tier
    sends this when a creation report finds the row gone). Reports nothing."""
    d = driver(host)
    for snapshot_id in snapshot_ids or []:
        d.delete_snapshot(snapshot_id)
    for volume_id in volume_ids or []:
        d.delete_volume(volume_id)
    return "discarded"


@shared_task(name="workers.storage.upload_volume", ignore_result=False)
def upload_volume(volume_id: str, image_id: str, disk_format: str, host: str, restore: str = "available",
                  protected: bool = False, upload_url: dict[str, str] | str | None = None) -> str:
    """os-volume_upload_image: the volume converted to ``disk_format`` beside it (its size and md5
    counted), streamed to image ``image_id`` through the controller's image API with the write URL the
    control tier signed for this image and this node (``upload_url``; the image upload path: size cap,
    quota, format inspector, checksums), then removed; reports ``volume_upload_stored`` with the size and
    md5 it sent (the control tier checks the image holds them) or ``volume_upload_failed`` (which
    deletes the image). The node holds no image store credentials."""
    sent: dict[str, Any] = {}

    def upload() -> None:
        if not upload_url:
            raise StorageError("the upload's message gives no URL to send the image's data to")
        d = driver(host)
        copy = d.export(volume_id, disk_format)
        try:
            md5 = hashlib.md5(usedforsecurity=False)
            size = 0
            for chunk in _chunks(copy):
                md5.update(chunk)
                size += len(chunk)
            try:
                images.upload(upload_url, copy)
            except images.ImageAPIError as exc:
                raise StorageError(f"the volume's data was not stored in the image: {exc}") from None
            sent.update(size=size, checksum=md5.hexdigest())
        finally:
            d.discard(copy)

    if not _outcome(upload, f"uploading volume {volume_id} on {host} to image {image_id}", "volume_upload_failed",
                    host=host, volume_id=volume_id, image_id=image_id, restore=restore):
        return "error: the upload to the image failed"
    control_bus.report(CONTROL + "volume_upload_stored", host=host, volume_id=volume_id, image_id=image_id,
                       restore=restore, protected=protected, **sent)
    logger.info("volume %s sent to image %s through the image API", volume_id, image_id)
    return "uploaded"


def _chunks(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := fh.read(size):
            yield chunk


# ---- the agent: report and heartbeat ---------------------------------------------------------------

def report(host: str) -> None:
    """This backend's capacity to the control tier (``workers.storage_control.backend_report``)."""
    d = driver(host)
    cap = d.capacity()
    control_bus.report(CONTROL + "backend_report", host=host, capacity_gb=cap.total_gb, free_gb=cap.free_gb,
                       path=str(d.root))


def _heartbeat(host: str, every: float) -> None:
    while not _stop.wait(every):
        try:
            report(host)
        except Exception:
            logger.exception("storage heartbeat of %s failed", host)


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
            logger.warning("storage node %s reported (%s; %d leftovers removed)", host, driver(host).root, removed)
        except Exception:
            logger.exception("storage node %s could not register", host)
        threading.Thread(target=_heartbeat, args=(host, every), name=f"storage-heartbeat-{host}",
                         daemon=True).start()


@worker_shutdown.connect
def _on_worker_shutdown(**_: Any) -> None:
    _stop.set()
