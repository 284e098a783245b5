"""apps/objects/asgi.py: object GET/HEAD/PUT (Swift and S3) reach their views without Django's handler, and
answer exactly what Django answers (status, every header, the body), errors included; a PUT's body streams
to the engine (a client that goes away mid-body leaves nothing); what the fast path does not take goes to
Django."""
from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest

from apps.objects import services as objects
from apps.objects.asgi import DirectObjects
from apps.objects.models import Object
from tests.security.test_s3_signatures import _key

pytestmark = pytest.mark.django_db(transaction=True)

# per-request values: present on both sides, compared by name only
VARYING = {"x-trans-id", "x-openstack-request-id", "date", "x-timestamp", "x-amz-request-id"}
REQUEST_ID = re.compile(rb"(tx[0-9a-f]{21}-[0-9a-f]{10}|<RequestId>[^<]*</RequestId>)")

Message = MutableMapping[str, Any]


def _scope(method: str, target: str, headers: dict[str, str]) -> dict[str, Any]:
    path, _, query = target.partition("?")
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
            "path": unquote(path), "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
            "headers": ([] if "host" in {k.lower() for k in headers} else [(b"host", b"testserver")])
            + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            "client": ("127.0.0.1", 40000), "server": ("testserver", 80)}


async def _acall(app: Callable[..., Awaitable[None]], scope: dict[str, Any], parts: list[bytes],
                 disconnect: bool) -> list[Message]:
    incoming: list[Message] = [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1 or disconnect}
                               for i, p in enumerate(parts or [b""])]
    sent: list[Message] = []

    async def receive() -> Message:
        if incoming:
            return incoming.pop(0)
        if not disconnect:  # the client waits for the answer (Django's handler listens for a disconnect)
            await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def call(app: Any, method: str, target: str, headers: dict[str, str] | None = None, parts: list[bytes] | None = None,
         *, disconnect: bool = False) -> tuple[int, dict[str, str], bytes] | None:
    sent = asyncio.run(_acall(app, _scope(method, target, headers or {}), parts or [], disconnect))
    if not sent:
        return None
    start = sent[0]
    assert start["type"] == "http.response.start"
    names = [k.decode().lower() for k, _ in start["headers"]]
    assert len(names) == len(set(names)), names
    return (start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]},
            b"".join(m.get("body", b"") for m in sent[1:]))


def _unreachable(*args: Any) -> Awaitable[None]:
    raise AssertionError("the fast path sent this request to Django")


@pytest.fixture
def apps() -> tuple[DirectObjects, Any]:
    """(the fast path alone: Django behind it fails the test, Django's own ASGI handler)."""
    from portal.asgi import django_asgi

    return DirectObjects(_unreachable), django_asgi


def same(apps: tuple[DirectObjects, Any], method: str, target: str, headers: dict[str, str] | None = None,
         parts: list[bytes] | None = None, *, skip: frozenset[str] = frozenset()) -> tuple[int, dict[str, str], bytes]:
    """The request through the fast path and through Django: the same answer (``skip``: headers compared by
    name only, e.g. a PUT's Last-Modified, which moves with the second)."""
    fast_app, django_app = apps
    fast = call(fast_app, method, target, headers, parts)
    slow = call(django_app, method, target, headers, parts)
    assert fast is not None and slow is not None
    assert fast[0] == slow[0], (fast, slow)
    assert set(fast[1]) == set(slow[1]), (sorted(fast[1]), sorted(slow[1]))
    for name in set(fast[1]) - VARYING - skip:
        assert fast[1][name] == slow[1][name], name
    assert REQUEST_ID.sub(b"", fast[2]) == REQUEST_ID.sub(b"", slow[2])
    return fast


def test_swift_object_get_head_put_answer_as_django(cloud, apps):
    token, pid = cloud.member_token, cloud.demo_project.id
    auth = {"X-Auth-Token": token}
    base = f"/object-store/v1/AUTH_{pid}"
    objects.container_create(actor=cloud.member_actor, name="c")
    data = b"a" * 4096
    status, headers, _ = same(apps, "PUT", f"{base}/c/small.txt", {
        **auth, "Content-Type": "text/plain", "X-Object-Meta-Color": "blue", "Etag": hashlib.md5(data).hexdigest(),
        "Content-Length": str(len(data))}, [data], skip=frozenset({"last-modified"}))
    assert status == 201 and headers["etag"] == hashlib.md5(data).hexdigest()
    status, headers, got = same(apps, "GET", f"{base}/c/small.txt", auth)
    assert status == 200 and got == data and headers["x-object-meta-color"] == "blue"
    assert headers["content-type"] == "text/plain" and headers["content-length"] == "4096"
    assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY"
    assert same(apps, "HEAD", f"{base}/c/small.txt", auth)[2] == b""
    status, headers, got = same(apps, "GET", f"{base}/c/small.txt", {**auth, "Range": "bytes=10-19"})
    assert status == 206 and got == data[10:20]
    assert same(apps, "GET", f"{base}/c/small.txt", {**auth, "If-None-Match": headers["etag"]})[0] == 304
    # a body in many messages (and more than the fast path's first read): streamed through, read back streamed
    big = bytes(range(256)) * 12288  # 3 MiB
    parts = [big[i:i + 65536] for i in range(0, len(big), 65536)]
    status, headers, _ = same(apps, "PUT", f"{base}/c/big", {**auth, "Etag": hashlib.md5(big).hexdigest(),
                                                             "Content-Length": str(len(big))}, parts,
                              skip=frozenset({"last-modified"}))
    assert status == 201
    status, headers, got = same(apps, "GET", f"{base}/c/big", auth)
    assert status == 200 and got == big
    # chunked (no Content-Length)
    status, _, _ = same(apps, "PUT", f"{base}/c/chunked", {**auth, "Transfer-Encoding": "chunked"}, parts[:3],
                        skip=frozenset({"last-modified"}))
    assert status == 201 and same(apps, "GET", f"{base}/c/chunked", auth)[2] == big[:3 * 65536]


def test_swift_errors_answer_as_django(cloud, apps):
    pid = cloud.demo_project.id
    base = f"/object-store/v1/AUTH_{pid}"
    auth = {"X-Auth-Token": cloud.member_token}
    objects.container_create(actor=cloud.member_actor, name="c")
    objects.object_put(actor=cloud.member_actor, container="c", name="o", stream=[b"x"])
    assert same(apps, "GET", f"{base}/c/missing", auth)[0] == 404
    assert same(apps, "HEAD", f"{base}/c/missing", auth)[0] == 404
    assert same(apps, "GET", f"{base}/nope/o", auth)[0] == 404
    assert same(apps, "GET", f"{base}/c/o")[0] == 401
    assert same(apps, "GET", f"{base}/c/o", {"X-Auth-Token": "not-a-token"})[0] == 401
    assert same(apps, "GET", f"{base}/c/o", {"X-Auth-Token": cloud.other_token})[0] == 404  # another project's
    assert same(apps, "PUT", f"{base}/c/o", {"X-Auth-Token": cloud.reader_token}, [b"y"])[0] == 403
    assert same(apps, "PUT", f"{base}/c/bad", {**auth, "Etag": "0" * 32}, [b"y"])[0] == 422
    assert same(apps, "PUT", f"{base}/nope/o", auth, [b"y"])[0] == 404
    assert same(apps, "GET", f"{base}/c/o", {**auth, "Range": "bytes=5-9"})[0] == 416
    assert same(apps, "GET", f"{base}/c/o?temp_url_sig=abc&temp_url_expires=1")[0] == 401
    assert Object.objects.filter(name__in=["bad"]).count() == 0


def test_a_client_that_goes_away_mid_body_leaves_nothing(cloud, apps, object_engine):
    from pathlib import Path

    base = f"/object-store/v1/AUTH_{cloud.demo_project.id}"
    objects.container_create(actor=cloud.member_actor, name="c")
    parts = [b"z" * 65536] * 40  # more than the first read: the rest streams, then the client is gone
    answer = call(apps[0], "PUT", f"{base}/c/gone", {"X-Auth-Token": cloud.member_token,
                                                     "Content-Length": str(10 * 65536 * 40)}, parts, disconnect=True)
    assert answer is None  # nobody to answer, as Django's handler
    assert not Object.objects.filter(name="gone").exists()
    assert not [p for p in Path(object_engine).rglob("*") if p.is_file()]


def _signed(creds: Any, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
            ) -> dict[str, str]:
    request = AWSRequest(method=method, url=f"http://testserver{path}", data=body, headers=dict(headers or {}))
    S3SigV4Auth(creds, "s3", "RegionOne").add_auth(request)
    prepared = request.prepare()
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in prepared.headers.items()
            if k.lower() != "host"}


def test_s3_object_get_head_put_answer_as_django(cloud, apps):
    creds = _key(cloud.member_actor)
    objects.container_create(actor=cloud.member_actor, name="bucket")
    data = b"s3 bytes" * 512
    headers = _signed(creds, "PUT", "/s3/bucket/k", data, {"Content-Type": "text/plain", "x-amz-meta-a": "b"})
    status, answer, _ = same(apps, "PUT", "/s3/bucket/k", headers, [data])
    assert status == 200 and answer["etag"] == f'"{hashlib.md5(data).hexdigest()}"'
    status, answer, got = same(apps, "GET", "/s3/bucket/k", _signed(creds, "GET", "/s3/bucket/k"))
    assert status == 200 and got == data and answer["x-amz-meta-a"] == "b"
    assert same(apps, "HEAD", "/s3/bucket/k", _signed(creds, "HEAD", "/s3/bucket/k"))[0] == 200
    status, _, got = same(apps, "GET", "/s3/bucket/nokey", _signed(creds, "GET", "/s3/bucket/nokey"))
    assert status == 404 and b"<Code>NoSuchKey</Code>" in got
    assert same(apps, "GET", "/s3/bucket/k")[0] == 403  # unsigned
    tampered = _signed(creds, "PUT", "/s3/bucket/t", b"one")
    assert same(apps, "PUT", "/s3/bucket/t", tampered, [b"two"])[0] in (400, 403)
    assert not Object.objects.filter(name="t").exists()


def test_what_the_fast_path_does_not_take_goes_to_django(cloud):
    seen: list[str] = []

    async def django(scope: Any, receive: Any, send: Any) -> None:
        seen.append(f"{scope['method']} {scope['path']}")
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    fast = DirectObjects(django)
    base = f"/object-store/v1/AUTH_{cloud.demo_project.id}"
    for method, path in (("GET", f"{base}/c"), ("GET", base), ("POST", f"{base}/c/o"), ("DELETE", f"{base}/c/o"),
                         ("COPY", f"{base}/c/o"), ("GET", "/s3/bucket"), ("GET", "/s3/"), ("GET", "/object-store/info"),
                         ("GET", "/compute/v2.1/servers")):
        assert call(fast, method, path)[0] == 299
    assert call(fast, "GET", f"{base}/c/o", {"Host": "evil.example"})[0] == 299  # Django refuses the host
    assert len(seen) == 10
