"""The S3 face in-process (botocore-signed requests through Django's test client): listings cost the
same queries whatever the bucket holds, the XML bodies and errors S3 clients parse, malformed input.
Query strings are written encoded, as clients sign them (``%2F``, not ``/``)."""
from __future__ import annotations

import base64
import hashlib
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.objects import services as objects
from apps.objects.models import Container, Object
from tests.security.test_s3_signatures import _code, _key, _send

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(cloud):
    objects.container_create(actor=cloud.member_actor, name="bkt")
    return cloud.member_actor, _key(cloud.member_actor)


def _fill(actor, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        objects.object_put(actor=actor, container="bkt", name=f"dir{i % 3}/obj{i:04d}", stream=[b"x" * i])


def _queries(path: str, creds) -> int:
    with CaptureQueriesContext(connection) as ctx:
        r = _send("GET", path, creds)
        assert r.status_code == 200, r.content
    return len(ctx.captured_queries)


def test_listings_cost_constant_queries(alice):
    actor, creds = alice
    _fill(actor, 6)
    objects.container_create(actor=actor, name="bkt2")
    _queries("/s3", creds)  # the key's first use fills the worker's cache (token_cache.py): measure from the second
    counts = [_queries(p, creds) for p in ("/s3", "/s3/bkt?list-type=2", "/s3/bkt?list-type=2&delimiter=%2F",
                                           "/s3/bkt?list-type=2&prefix=dir1%2F&max-keys=2")]
    _fill(actor, 60, start=6)
    for name in ("bkt3", "bkt4", "bkt5"):
        objects.container_create(actor=actor, name=name)
    assert [_queries(p, creds) for p in ("/s3", "/s3/bkt?list-type=2", "/s3/bkt?list-type=2&delimiter=%2F",
                                         "/s3/bkt?list-type=2&prefix=dir1%2F&max-keys=2")] == counts


def test_list_objects_v2_xml(alice):
    actor, creds = alice
    objects.object_put(actor=actor, container="bkt", name="a b+c%d", stream=[b"12345"])
    objects.object_put(actor=actor, container="bkt", name="z/1", stream=[b""])
    text = _send("GET", "/s3/bkt?list-type=2&encoding-type=url&max-keys=1", creds).content.decode()
    assert "<Key>a%20b%2Bc%25d</Key>" in text and "<IsTruncated>true</IsTruncated>" in text
    assert f"<ETag>\"{hashlib.md5(b'12345').hexdigest()}\"</ETag>" in text and "<Size>5</Size>" in text
    token = re.search(r"<NextContinuationToken>(.*?)</NextContinuationToken>", text).group(1)
    text = _send("GET", f"/s3/bkt?list-type=2&delimiter=%2F&continuation-token={token}", creds).content.decode()
    assert "<CommonPrefixes><Prefix>z/</Prefix></CommonPrefixes>" in text and "<KeyCount>1</KeyCount>" in text
    assert "<IsTruncated>false</IsTruncated>" in text
    r = _send("GET", "/s3/bkt?list-type=2&continuation-token=%21%21%21", creds)
    assert r.status_code == 400 and _code(r) == "InvalidArgument"
    r = _send("GET", "/s3/bkt?list-type=2&max-keys=x", creds)
    assert r.status_code == 400


def test_put_with_content_md5(alice):
    _, creds = alice
    body = b"checked"
    good = base64.b64encode(hashlib.md5(body).digest()).decode()
    bad = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    r = _send("PUT", "/s3/bkt/k", creds, body=body, headers={"Content-MD5": bad})
    assert r.status_code == 400 and _code(r) == "BadDigest"
    assert not Object.objects.filter(name="k").exists()
    r = _send("PUT", "/s3/bkt/k", creds, body=body, headers={"Content-MD5": "notbase64!"})
    assert r.status_code == 400 and _code(r) == "InvalidDigest"
    r = _send("PUT", "/s3/bkt/k", creds, body=body, headers={"Content-MD5": good})
    assert r.status_code == 200 and r["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'


@pytest.mark.parametrize("body, code", [
    (b"<Delete><Object><Key>a</Key></Object>", "MalformedXML"),
    (b"<Other/>", "MalformedXML"),
    (b"<Delete></Delete>", "MalformedXML"),
    (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e "x">]><Delete><Object><Key>&e;</Key></Object></Delete>',
     "MalformedXML"),
    (b"<Delete>" + b"<Object><Key>k</Key></Object>" * 1001 + b"</Delete>", "MalformedXML"),
])
def test_delete_objects_refuses_bad_xml(alice, body, code):
    actor, creds = alice
    objects.object_put(actor=actor, container="bkt", name="a", stream=[b"1"])
    r = _send("POST", "/s3/bkt?delete", creds, body=body)
    assert r.status_code == 400 and _code(r) == code
    assert Object.objects.filter(name="a").exists()


def test_delete_objects_quiet_and_missing_keys(alice):
    actor, creds = alice
    _fill(actor, 3)
    keys = "".join(f"<Object><Key>{k}</Key></Object>" for k in ("dir0/obj0000", "dir1/obj0001", "never"))
    r = _send("POST", "/s3/bkt?delete", creds, body=f"<Delete>{keys}</Delete>".encode())
    text = r.content.decode()
    assert r.status_code == 200 and text.count("<Deleted>") == 3
    r = _send("POST", "/s3/bkt?delete", creds,
              body=b"<Delete><Quiet>true</Quiet><Object><Key>dir2/obj0002</Key></Object></Delete>")
    assert "<Deleted>" not in r.content.decode()
    assert not Object.objects.exists() and Container.objects.get(name="bkt").object_count == 0


def test_bucket_names_and_errors(alice):
    _, creds = alice
    for bad in ("A", "ab", "UPPER", "a..b", "-ab", "x" * 64):
        r = _send("PUT", f"/s3/{bad}", creds)
        assert r.status_code == 400 and _code(r) == "InvalidBucketName", bad
    r = _send("GET", "/s3/bkt/missing", creds)
    assert r.status_code == 404 and _code(r) == "NoSuchKey" and r["Content-Type"] == "application/xml"
    r = _send("HEAD", "/s3/bkt/missing", creds)
    assert r.status_code == 404 and r.content == b""
    r = _send("GET", "/s3/nobucket/k", creds)
    assert r.status_code == 404 and _code(r) == "NoSuchBucket"
    r = _send("POST", "/s3/bkt/k?uploadId=nope", creds, body=b"<CompleteMultipartUpload/>")
    assert r.status_code == 404 and _code(r) == "NoSuchUpload"
    r = _send("PATCH", "/s3/bkt/k", creds)
    assert r.status_code == 405


def test_multipart_rules(alice):
    _, creds = alice
    r = _send("POST", "/s3/bkt/big?uploads", creds)
    upload = re.search(r"<UploadId>(.*?)</UploadId>", r.content.decode()).group(1)
    etags = []
    for n, size in ((1, 10), (2, 10)):
        r = _send("PUT", f"/s3/bkt/big?partNumber={n}&uploadId={upload}", creds, body=b"p" * size)
        assert r.status_code == 200
        etags.append(r["ETag"])
    r = _send("PUT", f"/s3/bkt/big?partNumber=10001&uploadId={upload}", creds, body=b"p")
    assert r.status_code == 400
    parts = "".join(f"<Part><PartNumber>{n}</PartNumber><ETag>{e}</ETag></Part>" for n, e in enumerate(etags, 1))
    r = _send("POST", f"/s3/bkt/big?uploadId={upload}", creds,
              body=f"<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>".encode())
    assert r.status_code == 400 and _code(r) == "EntityTooSmall"  # a first part under 5 MiB
    reversed_parts = "".join(f"<Part><PartNumber>{n}</PartNumber><ETag>{e}</ETag></Part>"
                             for n, e in reversed(list(enumerate(etags, 1))))
    r = _send("POST", f"/s3/bkt/big?uploadId={upload}", creds,
              body=f"<CompleteMultipartUpload>{reversed_parts}</CompleteMultipartUpload>".encode())
    assert r.status_code == 400
    one = f"<Part><PartNumber>2</PartNumber><ETag>{etags[1]}</ETag></Part>"
    r = _send("POST", f"/s3/bkt/big?uploadId={upload}", creds,
              body=f"<CompleteMultipartUpload>{one}</CompleteMultipartUpload>".encode())
    assert r.status_code == 200, r.content
    got = _send("GET", "/s3/bkt/big", creds)
    assert got.getvalue() == b"p" * 10
    # the upload's marker and its unused part are gone; the used part stays for the object
    assert sorted(Object.objects.filter(container__name="bkt+segments").values_list("name", flat=True)) == [
        f"big/{upload}/00002"]
    assert _send("DELETE", "/s3/bkt/big", creds).status_code == 204
    assert not Object.objects.filter(container__name="bkt+segments").exists()
    assert _send("DELETE", "/s3/bkt", creds).status_code == 204
    assert not Container.objects.filter(name__startswith="bkt").exists()


def test_list_multipart_uploads(alice):
    _, creds = alice
    r = _send("GET", "/s3/bkt?uploads", creds)
    assert r.status_code == 200 and "<Upload>" not in r.content.decode()  # none yet (no +segments container)
    ids = {}
    for key in ("a/one", "a/two", "b"):
        text = _send("POST", f"/s3/bkt/{key}?uploads", creds).content.decode()
        ids[key] = re.search(r"<UploadId>(.*?)</UploadId>", text).group(1)
    _send("PUT", f"/s3/bkt/a/one?partNumber=1&uploadId={ids['a/one']}", creds, body=b"part")
    text = _send("GET", "/s3/bkt?uploads", creds).content.decode()
    assert re.findall(r"<Key>(.*?)</Key><UploadId>(.*?)</UploadId>", text) == [
        ("a/one", ids["a/one"]), ("a/two", ids["a/two"]), ("b", ids["b"])]
    text = _send("GET", "/s3/bkt?uploads&prefix=a%2F&max-uploads=1", creds).content.decode()
    assert re.findall(r"<Key>(.*?)</Key>", text) == ["a/one"] and "<IsTruncated>true</IsTruncated>" in text
    text = _send("GET", "/s3/bkt?uploads&key-marker=a%2Fone", creds).content.decode()
    assert re.findall(r"<Key>(.*?)</Key>", text) == ["a/two", "b"]
    _send("DELETE", f"/s3/bkt/b?uploadId={ids['b']}", creds)
    text = _send("GET", "/s3/bkt?uploads", creds).content.decode()
    assert re.findall(r"<Key>(.*?)</Key>", text) == ["a/one", "a/two"]
