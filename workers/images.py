"""What the nodes' workers share about Glance images: fetching one into a node's image cache.

Django code is imported inside the function (workers' modules load before Django is set up).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from celery import shared_task

from lib import imageformat
from workers.drivers.hypervisor.imagecache import ImageCache

if TYPE_CHECKING:
    from apps.images.models import Image


def cached_image(cache: ImageCache, image: Image) -> str:
    """The path of ``image``'s data in ``cache``: streamed from the image store once (Glance's md5 and
    multihash verified), then put through the format inspector every time, before qemu-img or QEMU
    opens it (a file cached before the check, or changed since). A refused image's file is removed
    (nothing of it stays on the node) and ``imageformat.ImageFormatError`` raised."""
    from apps.images.storage import get_store

    location = image.location
    cached = cache.fetch(image.id, lambda: get_store().reader(location), checksum=image.checksum or None,
                         os_hash_algo=image.os_hash_algo or None, os_hash_value=image.os_hash_value or None)
    try:
        imageformat.inspect(cached.path, image.disk_format)
    except imageformat.ImageFormatError:
        cache.remove(image.id)
        raise
    return cached.path


@shared_task(name="workers.images.web_download")
def web_download(image_id: str, task_id: str, uri: str) -> str:
    """The web-download import method's fetch (control queue): the image service streams ``uri`` into
    the store under its import policy and records the outcome."""
    from apps.images import services

    return services.image_web_download_run(image_id=image_id, task_id=task_id, uri=uri)
