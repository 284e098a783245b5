"""lib/sigv4.py against signatures botocore makes: its header and presigned forms are accepted, any
change to what they sign is refused, and the clock, expiry and payload rules hold."""
from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from unittest import mock
from urllib.parse import unquote, urlsplit

import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from lib import sigv4

AK, SK = "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"
NOW = datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC)


def _at(when: datetime):  # botocore reads the clock through datetime.datetime.utcnow / now
    real = datetime

    class Frozen(real):
        @classmethod
        def utcnow(cls):  # type: ignore[override]
            return when.replace(tzinfo=None)

        @classmethod
        def now(cls, tz=None):  # type: ignore[override]
            return when if tz else when.replace(tzinfo=None)

    return mock.patch("botocore.auth.datetime.datetime", Frozen)


def _signed(method: str = "GET", url: str = "http://cloud.test:8080/s3/bucket/some%20key.txt?versionId=x&a=b",
            body: bytes = b"", headers: dict | None = None, presign: int | None = None, secret: str = SK,
            region: str = "RegionOne", when: datetime = NOW, unsigned: bool = False) -> sigv4.Request:
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    if unsigned:  # S3's option: the payload is not signed (UNSIGNED-PAYLOAD)
        request.context["client_config"] = Config(s3={"payload_signing_enabled": False})
    creds = Credentials(AK, secret)
    with _at(when):
        if presign is not None:
            S3SigV4QueryAuth(creds, "s3", region, expires=presign).add_auth(request)
        else:
            S3SigV4Auth(creds, "s3", region).add_auth(request)
    prepared = request.prepare()
    parts = urlsplit(prepared.url)
    headers = {k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in prepared.headers.items()}
    headers.setdefault("host", parts.netloc)
    return sigv4.Request(method=method, path=unquote(parts.path), query=parts.query, headers=headers)


def _ok(request: sigv4.Request, now: datetime = NOW, secret: str = SK) -> sigv4.Claim:
    claim = sigv4.parse(request, now=now)
    assert claim.access_key == AK
    assert sigv4.verify(request, claim, secret)
    return claim


def _refused(request: sigv4.Request, code: str = "", now: datetime = NOW) -> None:
    try:
        claim = sigv4.parse(request, now=now)
    except sigv4.SigV4Error as exc:
        assert not code or exc.code == code, (exc.code, exc.message)
        return
    assert not code or code == "SignatureDoesNotMatch", f"parsed, expected {code}"
    assert not sigv4.verify(request, claim, SK)


def _with(request: sigv4.Request, **changes) -> sigv4.Request:
    return sigv4.Request(**{**request.__dict__, **changes})


def test_header_form_accepted():
    req = _signed()
    claim = _ok(req)
    assert not claim.presigned and claim.region == "RegionOne" and claim.payload_hash == sigv4.EMPTY_SHA256
    assert "host" in claim.signed_headers and "x-amz-date" in claim.signed_headers


def test_put_with_body_and_metadata_accepted_and_payload_checked():
    body = b"hello world" * 100
    req = _signed("PUT", "http://cloud.test/s3/b/dir/k%2Bplus~tilde", body=body,
                  headers={"x-amz-meta-colour": "blue", "Content-Type": "text/plain"})
    claim = _ok(req)
    assert claim.payload_hash == hashlib.sha256(body).hexdigest()
    hasher = sigv4.PayloadHasher(claim)
    hasher.update(body[:10])
    hasher.update(body[10:])
    hasher.check()
    wrong = sigv4.PayloadHasher(claim)
    wrong.update(body + b"!")
    with pytest.raises(sigv4.SigV4Error) as exc:
        wrong.check()
    assert exc.value.code == "XAmzContentSHA256Mismatch" and exc.value.status == 400


def test_unsigned_payload_accepted_and_body_not_checked():
    req = _signed("PUT", "http://cloud.test/s3/b/k", body=b"abc", unsigned=True)
    claim = _ok(req)
    assert claim.payload_hash == sigv4.UNSIGNED_PAYLOAD
    hasher = sigv4.PayloadHasher(claim)
    hasher.update(b"anything")
    hasher.check()


def test_query_with_bare_names_and_unicode_keys():
    _ok(_signed("POST", "http://cloud.test/s3/b/%C3%A9t%C3%A9/%E4%B8%AD.txt?uploads"))
    _ok(_signed("GET", "http://cloud.test/s3/b?list-type=2&prefix=a%2Fb%20c&delimiter=%2F&max-keys=10"))


@pytest.mark.parametrize("change", [
    {"method": "DELETE"},
    {"path": "/s3/bucket/other key.txt"},
    {"path": "/s3/other-bucket/some key.txt"},
    {"query": "versionId=y&a=b"},
    {"query": "versionId=x&a=b&c=d"},
])
def test_tampering_with_the_request_refused(change):
    _refused(_with(_signed(), **change), "SignatureDoesNotMatch")


def test_tampered_signed_header_and_added_amz_header_refused():
    req = _signed("PUT", "http://cloud.test/s3/b/k", body=b"x", headers={"x-amz-meta-a": "1"})
    _refused(_with(req, headers={**req.headers, "x-amz-meta-a": "2"}), "SignatureDoesNotMatch")
    _refused(_with(req, headers={**req.headers, "x-amz-copy-source": "/victim/secret"}), "AccessDenied")
    _refused(_with(req, headers={**req.headers, "x-amz-content-sha256": sigv4.UNSIGNED_PAYLOAD}),
             "SignatureDoesNotMatch")
    _refused(_with(req, headers={**req.headers, "host": "evil.test"}), "SignatureDoesNotMatch")


def test_wrong_secret_refused():
    req = _signed()
    claim = sigv4.parse(req, now=NOW)
    assert not sigv4.verify(req, claim, SK[:-1] + "1")
    other = _signed(secret="another")
    assert not sigv4.verify(other, sigv4.parse(other, now=NOW), SK)


def test_clock_skew():
    req = _signed()
    _ok(req, now=NOW + timedelta(minutes=14))
    _ok(req, now=NOW - timedelta(minutes=14))
    _refused(req, "RequestTimeTooSkewed", now=NOW + timedelta(minutes=16))
    _refused(req, "RequestTimeTooSkewed", now=NOW - timedelta(minutes=16))


def test_header_form_needs_content_sha256_and_a_date():
    req = _signed()
    headers = {k: v for k, v in req.headers.items() if k != "x-amz-content-sha256"}
    _refused(_with(req, headers=headers), "AccessDenied")  # signed but missing
    auth = req.headers["authorization"].replace("x-amz-content-sha256;", "")
    headers = {**headers, "authorization": auth}
    _refused(_with(req, headers=headers), "InvalidRequest")


@pytest.mark.parametrize("auth, code", [
    ("AWS AKID:c2lnbmF0dXJl", "InvalidArgument"),
    ("AWS4-HMAC-SHA256 Credential=x", "AuthorizationHeaderMalformed"),
    ("AWS4-HMAC-SHA256 Credential=AK/20261203/RegionOne/ec2/aws4_request, SignedHeaders=host, Signature=" + "0" * 64,
     "AuthorizationHeaderMalformed"),
    ("AWS4-HMAC-SHA256 Credential=AK/20261202/RegionOne/s3/aws4_request, SignedHeaders=host, Signature=" + "0" * 64,
     "AuthorizationHeaderMalformed"),
    ("AWS4-HMAC-SHA256 Credential=AK/20261203/RegionOne/s3/aws4_request, SignedHeaders=x-amz-date, Signature="
     + "0" * 64, "AccessDenied"),
    ("AWS4-HMAC-SHA256 Credential=AK/20261203/RegionOne/s3/aws4_request, SignedHeaders=host, Signature=zz",
     "AuthorizationHeaderMalformed"),
])
def test_malformed_authorization(auth, code):
    req = _signed()
    _refused(_with(req, headers={**req.headers, "authorization": auth}), code)


def test_presigned_get_accepted_until_it_expires():
    req = _signed("GET", "http://cloud.test:9000/s3/bucket/k%20ey", presign=600)
    claim = _ok(req)
    assert claim.presigned and claim.payload_hash == sigv4.UNSIGNED_PAYLOAD
    assert claim.expires_at == NOW + timedelta(seconds=600)
    _ok(req, now=NOW + timedelta(seconds=599))
    _refused(req, "AccessDenied", now=NOW + timedelta(seconds=601))
    _refused(req, "AccessDenied", now=NOW - timedelta(minutes=16))  # not valid yet


def test_presigned_put_accepted_and_tampering_refused():
    req = _signed("PUT", "http://cloud.test/s3/bucket/upload.bin", presign=3600)
    _ok(req)
    _refused(_with(req, method="GET"), "SignatureDoesNotMatch")
    _refused(_with(req, path="/s3/bucket/other.bin"), "SignatureDoesNotMatch")
    _refused(_with(req, query=req.query.replace("X-Amz-Expires=3600", "X-Amz-Expires=7200")),
             "SignatureDoesNotMatch")
    _refused(_with(req, headers={**req.headers, "x-amz-acl": "public-read"}), "AccessDenied")


@pytest.mark.parametrize("edit, code", [
    (lambda q: q.replace("X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Algorithm=AWS4-HMAC-SHA1"),
     "AuthorizationQueryParametersError"),
    (lambda q: q.replace("X-Amz-Expires=600", "X-Amz-Expires=604801"), "AuthorizationQueryParametersError"),
    (lambda q: q.replace("X-Amz-Expires=600", "X-Amz-Expires=-1"), "AuthorizationQueryParametersError"),
    (lambda q: "&".join(p for p in q.split("&") if not p.startswith("X-Amz-Date")),
     "AuthorizationQueryParametersError"),
    (lambda q: q + "&X-Amz-Date=20261203T120000Z", "AuthorizationQueryParametersError"),
])
def test_malformed_presigned(edit, code):
    req = _signed("GET", "http://cloud.test/s3/bucket/k", presign=600)
    _refused(_with(req, query=edit(req.query)), code)


def test_anonymous_and_signed_told_apart():
    assert not sigv4.is_signed(sigv4.Request("GET", "/s3/b/k", "a=b", {"host": "h"}))
    assert sigv4.is_signed(_signed())
    assert sigv4.is_signed(_signed(presign=60))


def test_streaming_payload_not_implemented():
    req = _signed()
    _refused(_with(req, headers={**req.headers, "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"}),
             "NotImplemented")
