"""Attacks on the S3 face (in-process, requests signed by botocore): tampered requests, expired or
skewed ones, a signed request replayed or re-aimed at another project, unknown, revoked and
read-only keys, unsigned requests. Each refusal changes nothing."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from django.test import Client

from apps.identity import services as identity
from apps.objects import services as objects
from apps.objects.models import Object
from tests.core.test_sigv4 import _at

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def object_engine(settings: Any, tmp_path: Any) -> Any:
    from apps.objects import storage

    settings.STRATUS_OBJECT_STORE = "file"
    settings.STRATUS_OBJECT_DIR = str(tmp_path / "objects")
    storage.reset()
    yield
    storage.reset()


def _key(actor) -> Credentials:
    cred = identity.ec2_credential_create(actor=actor, user_id=actor.user_id, project_id=actor.project_id)
    blob = json.loads(cred.blob)
    return Credentials(blob["access"], blob["secret"])


def _send(method: str, path: str, creds: Credentials | None, *, body: bytes = b"", headers: dict | None = None,
          presign: int | None = None, when: datetime | None = None, tamper: Any = None):
    url = f"http://testserver{path}"
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    if creds is not None:
        with _at(when or datetime.now(tz=UTC)):
            if presign is not None:
                S3SigV4QueryAuth(creds, "s3", "RegionOne", expires=presign).add_auth(request)
            else:
                S3SigV4Auth(creds, "s3", "RegionOne").add_auth(request)
    prepared = request.prepare()
    sent = {"method": method, "url": prepared.url, "body": body,
            "headers": {k: v.decode() if isinstance(v, bytes) else v for k, v in prepared.headers.items()}}
    if tamper is not None:
        tamper(sent)
    parts = urlsplit(sent["url"])
    path_qs = parts.path + (f"?{parts.query}" if parts.query else "")
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in sent["headers"].items()
             if k.lower() not in ("content-length", "content-type")}
    extra.setdefault("HTTP_HOST", "testserver")
    return Client().generic(sent["method"], path_qs, data=sent["body"], content_type="application/octet-stream",
                            **extra)


def _code(response) -> str:
    text = response.content.decode()
    return text.split("<Code>", 1)[1].split("</Code>", 1)[0] if "<Code>" in text else ""


@pytest.fixture
def world(cloud):
    alice, olga = _key(cloud.member_actor), _key(cloud.other_actor)
    objects.container_create(actor=cloud.member_actor, name="same")
    objects.container_create(actor=cloud.other_actor, name="same")
    objects.container_create(actor=cloud.member_actor, name="alices")
    objects.object_put(actor=cloud.member_actor, container="alices", name="doc", stream=[b"alice's doc"])
    objects.object_put(actor=cloud.other_actor, container="same", name="doc", stream=[b"olga's doc"])
    return cloud, alice, olga


def test_the_control_a_signed_request_works(world):
    _, alice, _ = world
    r = _send("GET", "/s3/alices/doc", alice)
    assert r.status_code == 200, r.content
    assert r.getvalue() == b"alice's doc"


def test_unsigned_and_unknown_keys_reach_nothing(world):
    _, alice, _ = world
    r = _send("GET", "/s3/alices/doc", None)
    assert r.status_code == 403 and _code(r) == "AccessDenied" and b"alice's doc" not in r.content
    r = _send("GET", "/s3/alices/doc", Credentials("0" * 32, alice.secret_key))
    assert r.status_code == 403 and _code(r) == "InvalidAccessKeyId"
    r = _send("GET", "/s3/alices/doc", Credentials(alice.access_key, "wrong"))
    assert r.status_code == 403 and _code(r) == "SignatureDoesNotMatch"


@pytest.mark.parametrize("tamper", [
    lambda s: s.update(url=s["url"].replace("/alices/doc", "/alices/other")),
    lambda s: s.update(url=s["url"].replace("/alices/", "/same/")),
    lambda s: s.update(method="DELETE"),
    lambda s: s["headers"].update({"X-Amz-Date": (datetime.now(tz=UTC) - timedelta(minutes=1))
                                   .strftime("%Y%m%dT%H%M%SZ")}),
])
def test_tampered_requests_refused(world, tamper):
    _, alice, _ = world
    r = _send("GET", "/s3/alices/doc", alice, tamper=tamper)
    assert r.status_code == 403 and _code(r) == "SignatureDoesNotMatch"
    assert Object.objects.filter(name="doc").count() == 2


def test_unsigned_header_added_refused(world):
    _, alice, _ = world
    r = _send("PUT", "/s3/alices/new", alice, body=b"x",
              tamper=lambda s: s["headers"].update({"x-amz-copy-source": "/same/doc"}))
    assert r.status_code == 403 and _code(r) == "AccessDenied"
    assert not Object.objects.filter(name="new").exists()


def test_tampered_body_refused_and_not_stored(world):
    _, alice, _ = world
    r = _send("PUT", "/s3/alices/new", alice, body=b"the signed body",
              tamper=lambda s: s.update(body=b"the evil body!!"))
    assert r.status_code == 400 and _code(r) == "XAmzContentSHA256Mismatch"
    assert not Object.objects.filter(name="new").exists()
    r = _send("PUT", "/s3/alices/new", alice, body=b"the signed body")
    assert r.status_code == 200 and Object.objects.filter(name="new").exists()


def test_skewed_and_expired_requests_refused(world):
    _, alice, _ = world
    r = _send("GET", "/s3/alices/doc", alice, when=datetime.now(tz=UTC) - timedelta(minutes=20))
    assert r.status_code == 403 and _code(r) == "RequestTimeTooSkewed"
    r = _send("GET", "/s3/alices/doc", alice, presign=60, when=datetime.now(tz=UTC) - timedelta(minutes=2))
    assert r.status_code == 403 and _code(r) == "AccessDenied" and b"expired" in r.content
    r = _send("GET", "/s3/alices/doc", alice, presign=600, when=datetime.now(tz=UTC) - timedelta(minutes=2))
    assert r.status_code == 200  # the control: still within its lifetime
    r = _send("GET", "/s3/alices/doc", alice, presign=600,
              tamper=lambda s: s.update(url=s["url"].replace("X-Amz-Expires=600", "X-Amz-Expires=6000")))
    assert r.status_code == 403 and _code(r) == "SignatureDoesNotMatch"


def test_replayed_in_another_project_reaches_nothing(world):
    _, alice, olga = world
    # olga's own key on alice's bucket: not found (never forbidden, never the bytes)
    r = _send("GET", "/s3/alices/doc", olga)
    assert r.status_code == 404 and _code(r) == "NoSuchBucket"
    # alice's signed request re-sent under olga's key id: the signature is alice's secret's
    r = _send("GET", "/s3/alices/doc", alice,
              tamper=lambda s: s["headers"].update(Authorization=s["headers"]["Authorization"].replace(
                  alice.access_key, olga.access_key)))
    assert r.status_code == 403 and _code(r) == "SignatureDoesNotMatch"
    # the same bucket name in both projects: each key reaches its own project's only
    r = _send("GET", "/s3/same/doc", olga)
    assert r.getvalue() == b"olga's doc"
    r = _send("GET", "/s3/same/doc", alice)
    assert r.status_code == 404 and _code(r) == "NoSuchKey"
    r = _send("PUT", "/s3/same/doc", alice, body=b"alice overwrites?")
    assert r.status_code == 200
    r = _send("GET", "/s3/same/doc", olga)
    assert r.getvalue() == b"olga's doc"
    r = _send("DELETE", "/s3/alices", olga)
    assert r.status_code == 404
    listed = _send("GET", "/s3", olga).content.decode()
    assert "alices" not in listed and "<Name>same</Name>" in listed


def test_reader_key_reads_but_writes_nothing(world):
    cloud, _, _ = world
    rita = _key(cloud.reader_actor)
    assert _send("GET", "/s3/alices/doc", rita).status_code == 200
    for method, path in (("PUT", "/s3/alices/new"), ("DELETE", "/s3/alices/doc"), ("PUT", "/s3/newbucket"),
                         ("DELETE", "/s3/alices")):
        r = _send(method, path, rita, body=b"x" if method == "PUT" else b"")
        assert r.status_code == 403 and _code(r) == "AccessDenied", (method, path, r.content)
    assert Object.objects.filter(container__name="alices").count() == 1


def test_revoked_key_and_lost_role_refused(world):
    cloud, alice, _ = world
    from apps.identity.models import Role

    assert _send("GET", "/s3/alices/doc", alice).status_code == 200
    identity.role_revoke(actor=cloud.admin_actor, role_id=Role.objects.get(name="member").id,
                         user_id=cloud.member_actor.user_id, project_id=cloud.demo_project.id)
    r = _send("GET", "/s3/alices/doc", alice)
    assert r.status_code == 403 and _code(r) == "InvalidAccessKeyId"
    bob = _key(cloud.member2_actor)
    assert _send("GET", "/s3/alices/doc", bob).status_code == 200
    identity.ec2_credential_delete(actor=cloud.member2_actor, user_id=cloud.member2_actor.user_id,
                                   access=bob.access_key)
    r = _send("GET", "/s3/alices/doc", bob)
    assert r.status_code == 403 and _code(r) == "InvalidAccessKeyId"
