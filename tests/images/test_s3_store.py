"""The S3 image store against a real S3-compatible server in a subprocess (moto's server mode; no
MinIO here): the driver alone (multipart, ranges, abort leaves nothing) and the whole API path
(upload → object in the bucket → download → delete)."""
from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator

import boto3
import pytest

from apps.images import storage
from lib.imagestore import StoreError, store_from_config
from lib.imagestore.s3 import S3Store
from tests.conftest import VENV_BIN, free_port

CREDS = {"access_key": "stratus-test", "secret_key": "stratus-test-secret", "region": "us-east-1"}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = VENV_BIN / "moto_server"
    if not server.exists():
        pytest.skip("moto_server is missing: pip install -r requirements-test.txt")
    port = free_port()
    proc = subprocess.Popen([str(server), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("moto_server did not start") from None
            time.sleep(0.2)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _client(endpoint: str):  # type: ignore[no-untyped-def]
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=CREDS["access_key"],
                        aws_secret_access_key=CREDS["secret_key"], region_name=CREDS["region"])


def _store(endpoint: str, bucket: str) -> S3Store:
    store = store_from_config({"kind": "s3", "endpoint_url": endpoint, "bucket": bucket, **CREDS})
    assert isinstance(store, S3Store)
    store.ensure_bucket()
    return store


def test_driver_multipart_range_and_abort(s3_endpoint):
    store = _store(s3_endpoint, "driver-test")
    client = _client(s3_endpoint)
    data = os.urandom(12 * 1024 * 1024 + 123)  # two parts of 8 MiB (the last one shorter)
    writer = store.writer("img-a")
    for i in range(0, len(data), 1 << 20):
        writer.write(data[i:i + (1 << 20)])
        assert len(writer.buffer) < store.part_size  # at most one part is buffered
    assert writer.upload_id is not None and len(writer.parts) == 1
    location = writer.commit()
    head = client.head_object(Bucket="driver-test", Key=location)
    assert head["ContentLength"] == len(data)
    assert b"".join(store.reader(location)) == data
    assert b"".join(store.reader(location, offset=5, length=10)) == data[5:15]
    assert all(len(c) <= 65536 for c in store.reader(location, chunk_size=65536))
    # abort: the multipart upload is cancelled, no object
    aborted = store.writer("img-b")
    for _ in range(10):
        aborted.write(b"z" * (1 << 20))
    assert aborted.upload_id is not None
    aborted.abort()
    assert client.list_multipart_uploads(Bucket="driver-test").get("Uploads", []) == []
    assert not store.exists("img-b")
    # small objects go in one PUT
    small = store.writer("img-c")
    small.write(b"tiny")
    assert small.commit() == "img-c" and b"".join(store.reader("img-c")) == b"tiny"
    store.delete("img-c")
    assert not store.exists("img-c")
    with pytest.raises(StoreError):
        list(store.reader("img-missing"))


@pytest.fixture
def s3_settings(settings, s3_endpoint):
    settings.STRATUS_IMAGE_STORE = "s3"
    settings.STRATUS_IMAGE_S3 = {"endpoint_url": s3_endpoint, "bucket": "images-e2e", "prefix": "glance/", **CREDS}
    storage.reset()
    yield s3_endpoint
    storage.reset()


def test_api_upload_lands_in_the_bucket_and_downloads(people, s3_settings, django_capture_on_commit_callbacks):
    client = _client(s3_settings)
    api = people["member"].api
    data = os.urandom(9 * 1024 * 1024 + 7)
    image = api.image(name="on-s3")
    assert api.upload(image["id"], data).status_code == 204
    body = api.get(f"images/{image['id']}").json()
    assert body["status"] == "active" and body["checksum"] == hashlib.md5(data).hexdigest()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="images-e2e").get("Contents", [])]
    assert len(keys) == 1 and keys[0].startswith(f"glance/{image['id']}")
    assert client.get_object(Bucket="images-e2e", Key=keys[0])["Body"].read() == data
    response = api.get(f"images/{image['id']}/file")
    assert response["Content-MD5"] == body["checksum"]
    assert b"".join(response.streaming_content) == data
    from apps.images.models import Image

    assert Image.objects.get(pk=image["id"]).store == "s3"
    # a broken upload leaves no object and no multipart upload behind
    broken = api.image(name="broken")
    from apps.images import services

    def body_then_gone() -> Iterator[bytes]:
        for _ in range(7):
            yield b"q" * (1 << 20)
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        services.image_upload(actor=people["member"].actor, image_id=broken["id"], chunks=body_then_gone())
    assert api.get(f"images/{broken['id']}").json()["status"] == "queued"
    assert client.list_multipart_uploads(Bucket="images-e2e").get("Uploads", []) == []
    assert len(client.list_objects_v2(Bucket="images-e2e").get("Contents", [])) == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"images/{image['id']}").status_code == 204
    assert client.list_objects_v2(Bucket="images-e2e").get("Contents", []) == []
