"""What the workers share about Glance images: fetching one into a node's image cache (and sending a
node's image data) through the controller's image API with a signed URL, and the
web-download import's fetch (control queue; its driver is ``lib/webfetch``).

Django code is imported inside the function (workers' modules load before Django is set up).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from celery import shared_task

from lib import imageformat, imagehttp, webfetch
from workers.drivers.hypervisor.imagecache import ImageCache

logger = logging.getLogger(__name__)


IMAGE_API_TIMEOUT = 120.0  # seconds without a byte from the image API before a transfer fails


def controller_url(path: str) -> str:
    """The absolute URL of ``path`` (a signed grant's path the control tier sent, ``image_node_url``) on
    the controller this node knows (STRATUS_PUBLIC_URL: given at enrolment; on one machine, the local web
    server). Only a path is accepted, so a spec can send the node nowhere else."""
    from django.conf import settings

    if not path.startswith("/") or path.startswith("//"):
        raise ImageAPIError(f"not a path on the controller: {path!r}")
    return str(settings.STRATUS_PUBLIC_URL).rstrip("/") + path


class ImageAPIError(Exception):
    """The image API refused a node's transfer, or it was cut short."""


def _cafile() -> str | None:
    from django.conf import settings

    return settings.STRATUS_CONTROLLER_CA or None


def signed_parts(signed: Mapping[str, Any] | str) -> tuple[str, str]:
    """The path (with the grant's non-secret fields in its query) and the signature of a grant the
    control tier sent (``image_node_url``: ``{"path", "signature"}``). A task record made before the
    signature left the URL holds one string; its signature is taken out of the query, so that it is
    sent in the header and never appears in a request line."""
    if isinstance(signed, str):
        parts = urlsplit(signed)
        query = parse_qsl(parts.query, keep_blank_values=True)
        signature = next((v for k, v in query if k == "signature"), "")
        rest = urlencode([(k, v) for k, v in query if k != "signature"])
        return parts.path + (f"?{rest}" if rest else ""), signature
    return str(signed.get("path") or ""), str(signed.get("signature") or "")


Renew = Callable[[], Mapping[str, Any]]


def renewer(control: str, *, host: str, image_id: str, purpose: str, **subject: str) -> Renew:
    """What fetches a fresh grant when one expired (a task record sent again after
    STRATUS_IMAGE_URL_TTL_SECONDS): the question ``workers.<control>.image_url_renew`` to the control
    tier (``compute_control`` with ``instance_id``, ``storage_control`` with ``volume_id``), which
    grants it only while this node is still entitled to it; ImageAPIError when it is refused."""
    from workers import control_bus

    def renew() -> Mapping[str, Any]:
        try:
            answer = control_bus.ask(f"workers.{control}.image_url_renew", host=host, image_id=image_id,
                                     purpose=purpose, **subject) or {}
        except TimeoutError as exc:
            raise ImageAPIError(f"image {image_id}: the expired URL was not renewed: {exc}") from None
        if not answer.get("url"):
            raise ImageAPIError(f"image {image_id}: the expired URL was not renewed: "
                                f"{answer.get('refused') or 'no answer'}")
        return answer["url"]

    return renew


def _expired(exc: imagehttp.ImageHTTPError) -> bool:
    return exc.status == 401


def download(signed: Mapping[str, Any] | str, *, renew: Renew | None = None) -> Iterator[bytes]:
    """The image data the signed read grant ``signed`` names, streamed from the controller's image API.
    When the API says the grant expired (401, before any byte) and ``renew`` is given, the download is
    tried once more with the grant ``renew`` gets."""
    for attempt in (1, 2):
        path, signature = signed_parts(signed)
        try:
            yield from imagehttp.download(controller_url(path), signature=signature, cafile=_cafile(),
                                          timeout=IMAGE_API_TIMEOUT)
            return
        except imagehttp.ImageHTTPError as exc:
            if attempt == 1 and renew is not None and _expired(exc):
                logger.info("the read URL of %s expired: asking for a fresh one", path.split("?")[0])
                signed = renew()
                continue
            raise ImageAPIError(str(exc)) from None


def upload(signed: Mapping[str, Any] | str, file: str | os.PathLike[str], *, renew: Renew | None = None) -> None:
    """The file ``file`` streamed to the image the signed write grant ``signed`` names, through the
    controller's image API (the image upload path: size cap, quota, format inspector, checksums). When
    the API says the grant expired (401: refused before any byte is stored) and ``renew`` is given, the
    upload is tried once more with the grant ``renew`` gets."""
    for attempt in (1, 2):
        path, signature = signed_parts(signed)
        try:
            imagehttp.upload(controller_url(path), file, signature=signature, cafile=_cafile(),
                             timeout=IMAGE_API_TIMEOUT)
            return
        except imagehttp.ImageHTTPError as exc:
            if attempt == 1 and renew is not None and _expired(exc):
                logger.info("the write URL of %s expired: asking for a fresh one", path.split("?")[0])
                signed = renew()
                continue
            raise ImageAPIError(str(exc)) from None


def cached_image(cache: ImageCache, image: Mapping[str, Any], *, renew: Renew | None = None) -> str:
    """The path of ``image``'s data in ``cache`` (``image``: the plain values the control tier sent,
    ``apps.compute.selectors.node_specs.image_spec``: id, url (the signed grant: path and signature),
    disk_format, checksum,
    os_hash_algo/os_hash_value): streamed once from the controller's image API through the URL the
    control tier signed for this image and this node (the size the API announced, Glance's md5 and
    multihash verified), then put through the format inspector every time, before qemu-img or QEMU
    opens it (a file cached before the check, or changed since). An expired URL is renewed once through
    ``renew`` (``renewer``). A refused image's file is removed
    (nothing of it stays on the node) and ``imageformat.ImageFormatError`` raised. The node holds no
    image store settings or credentials."""
    image_id, url = str(image["id"]), image.get("url") or ""
    if not url:
        raise ImageAPIError(f"image {image_id}: the message gives no URL to read it from")
    cached = cache.fetch(image_id, lambda: download(url, renew=renew), checksum=image.get("checksum") or None,
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
