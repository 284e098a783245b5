"""Image data: streamed upload (any chunk sizes), md5/sha512 computed on the way, size checks,
statuses queued → saving → active, broken uploads back to queued with nothing left in the store,
download with Content-Length/Content-MD5 and ranges, bounded memory."""
from __future__ import annotations

import hashlib
import os
import shutil
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from apps.core.errors import BadRequest, Conflict
from apps.images import services
from apps.images.models import Image
from tests.images.conftest import glance_error


def _store_files() -> list[str]:
    root = Path(settings.STRATUS_IMAGE_DIR)
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def _chunks(data: bytes, sizes: list[int]) -> Iterator[bytes]:
    pos, i = 0, 0
    while pos < len(data):
        step = sizes[i % len(sizes)]
        yield data[pos:pos + step]
        pos += step
        i += 1


@pytest.mark.parametrize("sizes", [[1], [7, 0, 4096], [65536], [1 << 20, 3], [(1 << 20) + 1]])
def test_upload_any_chunk_sizes(people, sizes):
    data = os.urandom(300_000 if sizes == [1] else 2_500_000)
    image = people["member"].api.image(name="c")
    result = services.image_upload(actor=people["member"].actor, image_id=image["id"],
                                   chunks=_chunks(data, sizes), expected_size=len(data))
    assert result.status == "active" and result.size == len(data)
    assert result.checksum == hashlib.md5(data).hexdigest()
    assert result.os_hash_algo == "sha512" and result.os_hash_value == hashlib.sha512(data).hexdigest()
    assert (Path(settings.STRATUS_IMAGE_DIR) / result.location).read_bytes() == data
    assert _store_files() == [result.location]


def test_upload_and_download_through_the_api(people, django_capture_on_commit_callbacks):
    api = people["member"].api
    data = os.urandom(3 * (1 << 20) + 5)
    image = api.image(name="d")
    assert api.get(f"images/{image['id']}/file").status_code == 204  # no data yet
    assert api.upload(image["id"], data).status_code == 204
    body = api.get(f"images/{image['id']}").json()
    assert body["status"] == "active" and body["size"] == len(data)
    assert body["checksum"] == hashlib.md5(data).hexdigest()
    assert body["os_hash_value"] == hashlib.sha512(data).hexdigest()
    response = api.get(f"images/{image['id']}/file")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Length"] == str(len(data)) and response["Content-MD5"] == body["checksum"]
    chunks = list(response.streaming_content)
    assert len(chunks) == 4 and max(len(c) for c in chunks) == 1 << 20
    assert b"".join(chunks) == data
    ranged = api.get(f"images/{image['id']}/file", headers={"Range": "bytes=10-19"})
    assert ranged.status_code == 206 and ranged["Content-Range"] == f"bytes 10-19/{len(data)}"
    assert b"".join(ranged.streaming_content) == data[10:20]
    tail = api.get(f"images/{image['id']}/file", headers={"Range": "bytes=-5"})
    assert b"".join(tail.streaming_content) == data[-5:]
    glance_error(api.get(f"images/{image['id']}/file", headers={"Range": f"bytes={len(data)}-"}), 416)
    # a second upload is refused: the image is not queued any more
    glance_error(api.upload(image["id"], b"again"), 409)
    # the reader of the project downloads too
    assert b"".join(people["reader"].api.get(f"images/{image['id']}/file").streaming_content) == data
    # delete removes the data (once the transaction commits)
    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"images/{image['id']}").status_code == 204
    assert _store_files() == []


def test_upload_needs_octet_stream(people):
    api = people["member"].api
    image = api.image()
    glance_error(api.put(f"images/{image['id']}/file", raw=b"abc", content_type="application/json"), 415)
    assert Image.objects.get(pk=image["id"]).status == "queued"


def test_statuses_during_upload(people):
    image = people["member"].api.image()
    seen: list[str] = []
    refused: list[Exception] = []

    def body() -> Iterator[bytes]:
        seen.append(Image.objects.get(pk=image["id"]).status)
        yield b"abc"
        try:  # a second upload while this one is saving is refused
            services.image_upload(actor=people["member"].actor, image_id=image["id"], chunks=iter([b"x"]))
        except Conflict as exc:
            refused.append(exc)
        seen.append(Image.objects.get(pk=image["id"]).status)
        yield b"def"

    services.image_upload(actor=people["member"].actor, image_id=image["id"], chunks=body())
    assert seen == ["saving", "saving"] and len(refused) == 1
    row = Image.objects.get(pk=image["id"])
    assert row.status == "active" and row.size == 6


class ClientGone(Exception):
    pass


def test_broken_upload_leaves_nothing(people):
    image = people["member"].api.image()

    def body() -> Iterator[bytes]:
        yield b"a" * (1 << 20)
        yield b"b" * (1 << 20)
        raise ClientGone("the client went away")

    with pytest.raises(ClientGone):
        services.image_upload(actor=people["member"].actor, image_id=image["id"], chunks=body())
    row = Image.objects.get(pk=image["id"])
    assert row.status == "queued" and row.checksum is None and row.size is None and not row.location
    assert _store_files() == []


def test_short_body_is_a_broken_upload(people):
    image = people["member"].api.image()
    with pytest.raises(services.UploadAborted):
        services.image_upload(actor=people["member"].actor, image_id=image["id"], chunks=iter([b"x" * 10]),
                              expected_size=20)
    assert Image.objects.get(pk=image["id"]).status == "queued" and _store_files() == []
    with pytest.raises(BadRequest):
        services.image_upload(actor=people["member"].actor, image_id=image["id"], chunks=iter([b"x" * 30]),
                              expected_size=20)
    assert Image.objects.get(pk=image["id"]).status == "queued" and _store_files() == []
    # and then a good one succeeds
    done = services.image_upload(actor=people["member"].actor, image_id=image["id"], chunks=iter([b"x" * 20]),
                                 expected_size=20)
    assert done.status == "active"


def test_store_error_undoes_the_upload(people):
    image = people["member"].api.image()
    root = Path(settings.STRATUS_IMAGE_DIR)

    def body() -> Iterator[bytes]:
        yield b"a" * 1000
        shutil.rmtree(root)  # the store's directory vanishes under the upload: the commit fails
        yield b"b" * 1000

    response_error = None
    try:
        services.image_upload(actor=people["member"].actor, image_id=image["id"], chunks=body())
    except services.StoreFailed as exc:
        response_error = exc
    assert response_error is not None and response_error.status == 500
    assert Image.objects.get(pk=image["id"]).status == "queued"
    assert not root.exists() or _store_files() == []


def test_upload_memory_is_bounded(people):
    """64 MiB through the service with at most a few MiB allocated at any time."""
    image = people["member"].api.image()
    chunk = os.urandom(1 << 20)

    def body() -> Iterator[bytes]:
        for _ in range(64):
            yield bytes(chunk)

    tracemalloc.start()
    try:
        services.image_upload(actor=people["member"].actor, image_id=image["id"], chunks=body(),
                              expected_size=64 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, peak
    assert Image.objects.get(pk=image["id"]).size == 64 << 20


def test_stage_then_glance_direct_import(people, admin_actor, django_capture_on_commit_callbacks):
    from apps.identity import services as identity
    from apps.identity.models import QuotaUsage

    api = people["member"].api
    project = people["member"].project.id
    data = os.urandom(2 * (1 << 20) + 11)
    image = api.image(name="staged")
    glance_error(api.post(f"images/{image['id']}/import", {"method": {"name": "glance-direct"}}), 409)
    staged = api.put(f"images/{image['id']}/stage", raw=data, content_type="application/octet-stream")
    assert staged.status_code == 204
    body = api.get(f"images/{image['id']}").json()
    assert body["status"] == "uploading" and body["size"] == len(data)
    assert api.get(f"images/{image['id']}/file").status_code == 204  # not yet the image's data
    glance_error(api.upload(image["id"], b"x"), 409)
    glance_error(api.put(f"images/{image['id']}/stage", raw=b"x", content_type="application/octet-stream"), 409)
    # staged data holds its bytes (it is in the store): counted once, from the stage on
    assert QuotaUsage.objects.get(project_id=project, resource="image_bytes").in_use == len(data)
    glance_error(api.post(f"images/{image['id']}/import", {"method": {"name": "web-download"}}), 400)
    response = api.post(f"images/{image['id']}/import", {"method": {"name": "glance-direct"}, "all_stores": True})
    assert response.status_code == 202
    body = api.get(f"images/{image['id']}").json()
    assert body["status"] == "active" and body["checksum"] == hashlib.md5(data).hexdigest()
    assert body["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert b"".join(api.get(f"images/{image['id']}/file").streaming_content) == data
    assert QuotaUsage.objects.get(project_id=project, resource="image_bytes").in_use == len(data)
    tasks = api.get(f"images/{image['id']}/tasks").json()["tasks"]
    assert len(tasks) == 1 and tasks[0]["status"] == "success"
    assert tasks[0]["request_id"] == response["x-openstack-request-id"]
    assert tasks[0]["input"]["import_req"]["method"]["name"] == "glance-direct"
    # a stage over the byte quota is refused at once
    identity.quota_set(actor=admin_actor, project_id=project, limits={"image_bytes": len(data) + 10})
    second = api.image(name="too-big")
    glance_error(api.put(f"images/{second['id']}/stage", raw=data, content_type="application/octet-stream"), 413)
    assert Image.objects.get(pk=second["id"]).status == "queued"
    # the bytes held by a stage stay held when the quota is lowered after it: the import succeeds
    identity.quota_set(actor=admin_actor, project_id=project, limits={"image_bytes": -1})
    assert api.put(f"images/{second['id']}/stage", raw=data, content_type="application/octet-stream"
                   ).status_code == 204
    assert QuotaUsage.objects.get(project_id=project, resource="image_bytes").in_use == 2 * len(data)
    identity.quota_set(actor=admin_actor, project_id=project, limits={"image_bytes": len(data) + 10}, force=True)
    assert api.post(f"images/{second['id']}/import", {"method": {"name": "glance-direct"}}).status_code == 202
    assert QuotaUsage.objects.get(project_id=project, resource="image_bytes").in_use == 2 * len(data)
    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"images/{second['id']}").status_code == 204
    # an import whose bytes are not held (a stage made before stages held quota) and are over the
    # quota fails: the task says so, the image is queued again and its data is gone
    identity.quota_set(actor=admin_actor, project_id=project, limits={"image_bytes": -1})
    second = api.image(name="legacy-stage")
    assert api.put(f"images/{second['id']}/stage", raw=data, content_type="application/octet-stream"
                   ).status_code == 204
    Image.objects.filter(pk=second["id"]).update(bytes_reserved=0)
    QuotaUsage.objects.filter(project_id=project, resource="image_bytes").update(in_use=len(data))
    identity.quota_set(actor=admin_actor, project_id=project, limits={"image_bytes": len(data) + 10})
    with django_capture_on_commit_callbacks(execute=True):
        glance_error(api.post(f"images/{second['id']}/import", {"method": {"name": "glance-direct"}}), 413)
    assert _store_files() == [Image.objects.get(pk=image["id"]).location]
    row = Image.objects.get(pk=second["id"])
    assert row.status == "queued" and not row.location and "os_glance_failed_import" in row.properties
    assert api.get(f"images/{second['id']}/tasks").json()["tasks"][0]["status"] == "failure"


def test_broken_stage_goes_back_to_queued(people):
    image = people["member"].api.image()

    def body() -> Iterator[bytes]:
        yield b"a" * 1000
        raise ClientGone("gone")

    with pytest.raises(ClientGone):
        services.image_stage(actor=people["member"].actor, image_id=image["id"], chunks=body())
    assert Image.objects.get(pk=image["id"]).status == "queued" and _store_files() == []


def test_virtual_size_from_the_data(people):
    import struct

    api = people["member"].api
    raw = api.image(disk_format="raw")
    assert api.upload(raw["id"], b"r" * 4096).status_code == 204
    assert api.get(f"images/{raw['id']}").json()["virtual_size"] == 4096
    qcow = api.image(disk_format="qcow2")
    header = b"QFI\xfb" + struct.pack(">I", 3) + b"\0" * 16 + struct.pack(">Q", 10 << 30)
    assert api.upload(qcow["id"], header + b"\0" * 1000).status_code == 204
    assert api.get(f"images/{qcow['id']}").json()["virtual_size"] == 10 << 30
    iso = api.image(disk_format="iso")
    # bytes that are no ISO 9660 image are refused (image format enforcement): no data, no size
    glance_error(api.upload(iso["id"], b"i" * 100), 400)
    assert api.get(f"images/{iso['id']}").json()["virtual_size"] is None
