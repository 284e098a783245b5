"""The S3 engine (boto3) under Swift, against a real S3-compatible server in a subprocess (moto's server
mode): objects written through the Swift API land in the bucket under opaque keys, read back with
ranges, and their keys go when they are overwritten or deleted."""
from __future__ import annotations

import hashlib
import os

import boto3
import pytest

from apps.objects import storage
from tests.images.test_s3_store import CREDS, s3_endpoint  # noqa: F401 - the moto_server fixture

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def s3_engine(settings, s3_endpoint):  # noqa: F811
    settings.STRATUS_OBJECT_STORE = "s3"
    settings.STRATUS_OBJECT_S3 = {"endpoint_url": s3_endpoint, "bucket": "swift-objects", "prefix": "v1/", **CREDS}
    storage.reset()
    yield boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id=CREDS["access_key"],
                       aws_secret_access_key=CREDS["secret_key"], region_name=CREDS["region"])
    storage.reset()


def keys(client) -> list[str]:
    return [o["Key"] for o in client.list_objects_v2(Bucket="swift-objects").get("Contents", [])]


def test_swift_on_the_s3_engine(cloud, s3_engine):
    api = cloud.member
    assert storage.get_engine().name == "s3"
    assert api.call("PUT", "c", raw=b"", content_type="text/plain").status_code == 201
    data = os.urandom(12 * 1024 * 1024 + 5)  # two multipart parts of the engine
    r = api.call("PUT", "c/big", raw=data, content_type="application/octet-stream")
    assert r.status_code == 201 and r["Etag"] == hashlib.md5(data).hexdigest()
    (key,) = keys(s3_engine)
    assert key.startswith("v1/")
    assert s3_engine.head_object(Bucket="swift-objects", Key=key)["ContentLength"] == len(data)
    got = api.call("GET", "c/big")
    assert got.getvalue() == data
    part = api.call("GET", "c/big", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.getvalue() == data[100:200]
    assert api.call("PUT", "c/big", raw=b"small", content_type="text/plain").status_code == 201
    (new_key,) = keys(s3_engine)
    assert new_key != key
    assert api.call("DELETE", "c/big").status_code == 204
    assert keys(s3_engine) == []
