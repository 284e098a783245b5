"""What the workers share about Glance images: fetching one into a node's image cache, and the
web-download import's fetch (control queue; its driver is ``lib/webfetch``).

Django code is imported inside the function (workers' modules load before Django is set up).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from celery import shared_task

from lib import imageformat, webfetch
from workers.drivers.hypervisor.imagecache import ImageCache

logger = logging.getLogger(__name__)


def cached_image(cache: ImageCache, image: Mapping[str, Any]) -> str:
    """The path of ``image``'s data in ``cache`` (``image``: the plain values the control tier sent,
    ``apps.compute.selectors.node_specs.image_spec``: id, location, disk_format, checksum,
    os_hash_algo/os_hash_value): streamed from the image store once (Glance's md5 and multihash
    verified), then put through the format inspector every time, before qemu-img or QEMU opens it (a
    file cached before the check, or changed since). A refused image's file is removed (nothing of it
    stays on the node) and ``imageformat.ImageFormatError`` raised.

    The node reads the store directly by the image's location (``apps.images.storage.get_store``: a
    filesystem path or an S3 bucket from settings; no database). Fetching through the image API with
    a signed URL, so that a node needs no store credentials either, is a later step."""
    from apps.images.storage import get_store

    image_id, location = str(image["id"]), str(image["location"])
    cached = cache.fetch(image_id, lambda: get_store().reader(location), checksum=image.get("checksum") or None,
                         os_hash_algo=image.get("os_hash_algo") or None,
                         os_hash_value=image.get("os_hash_value") or None)
    try:
        imageformat.inspect(cached.path, str(image.get("disk_format") or ""))
    except imageformat.ImageFormatError:
        cache.remove(image_id)
        raise
    return cached.path


@shared_task(name="workers.images.web_download")
def web_download(image_id: str, task_id: str, uri: str) -> str:
    """The web-download import method's fetch (control queue): the driver (``lib/webfetch``) opens
    ``uri`` under the import policy read from settings (schemes, ports, the resolved-once address,
    each redirect checked, the timeout); its chunks stream into the image through the upload path
    (``image_web_download_write``); the outcome is reported through the image services (on a failure
    the image goes back to queued with ``os_glance_failed_import`` and the task records why).
    Returns ``"active"`` or ``"failed: <reason>"``."""
    from django.conf import settings

    from apps.core.errors import StratusError
    from apps.images import services

    if not services.image_web_download_start(image_id=image_id, task_id=task_id):
        return "failed: the image is gone or no longer importing"
    policy = webfetch.Policy(allowed_hosts=tuple(settings.STRATUS_IMAGE_IMPORT_ALLOWED_HOSTS),
                             allowed_ports=tuple(settings.STRATUS_IMAGE_IMPORT_ALLOWED_PORTS),
                             timeout=float(settings.STRATUS_IMAGE_IMPORT_TIMEOUT))
    reason: str | None = None
    try:
        download = webfetch.open_uri(uri, policy)
        try:
            image = services.image_web_download_write(image_id=image_id, chunks=download.chunks(),
                                                      expected_size=download.size)
        finally:
            download.close()
    except webfetch.Refused as exc:
        reason = f"URI refused for web-download: {exc}"
    except webfetch.FetchError as exc:
        reason = str(exc)
    except StratusError as exc:
        reason = exc.message
    except Exception as exc:
        logger.exception("image %s: web-download of %s failed", image_id, uri)
        services.image_web_download_failed(image_id=image_id, task_id=task_id, reason=f"{type(exc).__name__}: {exc}")
        return f"failed: {exc}"
    if reason is not None:
        services.image_web_download_failed(image_id=image_id, task_id=task_id, reason=reason)
        logger.warning("image %s: web-download of %s failed: %s", image_id, uri, reason)
        return f"failed: {reason}"
    services.image_web_download_succeeded(image_id=image_id, task_id=task_id)
    logger.info("image %s: web-download of %s done (%s bytes)", image_id, uri, image.size)
    return "active"
