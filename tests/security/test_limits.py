"""Bodies too large for a JSON API: every API answers its own 413 before it reads them (Nova and
Neutron's max request body, STRATUS_MAX_JSON_BODY), by Content-Length and, under ASGI, by what
actually arrives. Image data (Glance PUT file / stage) is not JSON: its cap is
STRATUS_IMAGE_SIZE_CAP, and staged data holds image_bytes quota until it is imported or deleted."""
from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from django.test import Client

from apps.identity import selectors as identity_selectors
from apps.identity import services as identity
from apps.identity.models import Project
from tests.api_client import SeededCloud
from tests.compute.test_servers_support import env_fixture, image_dir_fixture  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

KIB = 1024


@pytest.fixture(autouse=True)
def image_store(settings: Any, tmp_path: Any) -> Any:
    from apps.images import storage

    settings.STRATUS_IMAGE_STORE = "file"
    settings.STRATUS_IMAGE_DIR = str(tmp_path / "images")
    storage.reset()
    yield
    storage.reset()


@pytest.fixture
def member(cloud: SeededCloud) -> dict[str, Any]:
    """The seeded cloud's olga, the one member of "other" (a project nothing else uses)."""
    return {"token": cloud.other_token, "project": cloud.other_project, "admin": cloud.admin_actor}


def _call(method: str, path: str, raw: bytes, token: str | None = None,
          content_type: str = "application/json") -> Any:
    extra = {"HTTP_X_AUTH_TOKEN": token} if token else {}
    return Client().generic(method, path, data=raw, content_type=content_type, **extra)


def _padded(wrapper: str, key: str, size: int) -> bytes:
    """A valid JSON body of exactly ``size`` bytes: {wrapper: {key: "xxxx..."}}."""
    empty = len(json.dumps({wrapper: {key: ""}}).encode())
    return json.dumps({wrapper: {key: "x" * (size - empty)}}).encode()


def _assert_shape(style: str, body: dict[str, Any]) -> None:
    if style == "keystone":
        assert body["error"]["code"] == 413 and body["error"]["message"], body
    elif style == "glance":
        assert set(body) == {"code", "title", "message"} and body["code"] == 413, body
    elif style == "neutron":
        assert body["NeutronError"]["message"] and body["NeutronError"]["type"], body
    else:  # nova and cinder
        assert body["overLimit"]["code"] == 413 and body["overLimit"]["message"], body


def _cases(project_id: str) -> list[tuple[str, str, str, str, str]]:
    """(style, method, path, wrapper, key) of a JSON write of each API."""
    return [
        ("keystone", "POST", "/identity/v3/auth/tokens", "auth", "x"),
        ("glance", "POST", "/image/v2/images", "name", "x"),
        ("neutron", "POST", "/network/v2.0/networks", "network", "name"),
        ("nova", "POST", "/compute/v2.1/servers", "server", "name"),
        ("cinder", "POST", f"/volume/v3/{project_id}/volumes", "volume", "name"),
    ]


def test_default_cap_is_novas_max_request_body():
    from django.conf import settings

    assert settings.STRATUS_MAX_JSON_BODY == 112 * KIB


def test_every_api_answers_its_own_413_over_the_cap(member):
    from apps.images.models import Image
    from apps.networks.models import Network

    limit = 112 * KIB
    for style, method, path, wrapper, key in _cases(member["project"].id):
        over = _call(method, path, _padded(wrapper, key, limit + 1), member["token"])
        assert over.status_code == 413, (path, over.status_code, over.content[:300])
        _assert_shape(style, over.json())
        under = _call(method, path, _padded(wrapper, key, limit), member["token"])
        assert under.status_code != 413, (path, under.content[:300])
    assert not Network.objects.filter(name__startswith="xxx").exists()
    assert not Image.objects.exists()


def test_the_cap_is_a_setting(settings, member):
    settings.STRATUS_MAX_JSON_BODY = 2 * KIB
    over = _call("POST", "/network/v2.0/networks", _padded("network", "name", 2 * KIB + 1), member["token"])
    assert over.status_code == 413
    _assert_shape("neutron", over.json())


def _asgi_scope(method: str, path: str, headers: dict[str, str]) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "query_string": b"",
            "root_path": "", "scheme": "http", "server": ("testserver", 80), "client": ("127.0.0.1", 5000),
            "http_version": "1.1", "asgi": {"version": "3.0"},
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}


async def _asgi_over_the_cap(scope: dict[str, Any], chunks: list[bytes]) -> tuple[int, bytes]:
    """Send ``chunks`` with more_body=True every time (the body never ends): the answer must come
    from what arrived, not from the end of the body or a Content-Length."""
    from portal.asgi import application

    app = ApplicationCommunicator(application, scope)
    for chunk in chunks:
        await app.send_input({"type": "http.request", "body": chunk, "more_body": True})
    start = await app.receive_output(10)
    body = await app.receive_output(10)
    return start["status"], body.get("body", b"")


def test_asgi_counts_a_streamed_body_without_content_length(member):
    chunk = b"[" + b" " * (64 * KIB - 1)
    status, body = async_to_sync(_asgi_over_the_cap)(
        _asgi_scope("POST", "/network/v2.0/networks", {"host": "localhost", "content-type": "application/json",
                                                        "x-auth-token": member["token"]}), [chunk, chunk])
    assert status == 413
    _assert_shape("neutron", json.loads(body))


def test_asgi_refuses_a_declared_length_over_the_cap_before_the_body(member):
    status, body = async_to_sync(_asgi_over_the_cap)(
        _asgi_scope("POST", "/compute/v2.1/servers", {"host": "localhost", "content-type": "application/json",
                                                       "content-length": str(112 * KIB + 1),
                                                       "x-auth-token": member["token"]}), [b"{"])
    assert status == 413
    _assert_shape("nova", json.loads(body))


# ---- image data ------------------------------------------------------------------------------

def _image(token: str) -> str:
    response = _call("POST", "/image/v2/images", json.dumps({"name": "i", "disk_format": "raw",
                                                             "container_format": "bare"}).encode(), token)
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_image_data_is_not_capped_as_json(member):
    image_id = _image(member["token"])
    data = b"\0" * (200 * KIB)
    response = _call("PUT", f"/image/v2/images/{image_id}/file", data, member["token"], "application/octet-stream")
    assert response.status_code == 204, response.content
    status, _ = async_to_sync(_asgi_image_put)(image_id, member["token"], [data[:100 * KIB], data[100 * KIB:]],
                                               stage=False, declared=None, expect_more=False)
    assert status == 409  # already active: the data route was reached, not a 413


async def _asgi_image_put(image_id: str, token: str, chunks: list[bytes], *, stage: bool, declared: int | None,
                          expect_more: bool) -> tuple[int, bytes]:
    from portal.asgi import application

    headers = {"host": "localhost", "content-type": "application/octet-stream", "x-auth-token": token}
    if declared is not None:
        headers["content-length"] = str(declared)
    path = f"/image/v2/images/{image_id}/{'stage' if stage else 'file'}"
    app = ApplicationCommunicator(application, _asgi_scope("PUT", path, headers))
    for i, chunk in enumerate(chunks):
        last = i == len(chunks) - 1 and not expect_more
        await app.send_input({"type": "http.request", "body": chunk, "more_body": not last})
    start = await app.receive_output(20)
    body = await app.receive_output(20)
    return start["status"], body.get("body", b"")


def test_image_content_length_over_the_size_cap_is_413(settings, member):
    from apps.images.models import Image

    settings.STRATUS_IMAGE_SIZE_CAP = 1000
    image_id = _image(member["token"])
    response = _call("PUT", f"/image/v2/images/{image_id}/file", b"\0" * 1001, member["token"],
                     "application/octet-stream")
    assert response.status_code == 413, response.content
    _assert_shape("glance", response.json())
    assert Image.objects.get(pk=image_id).status == "queued"


def test_image_stream_over_the_size_cap_is_aborted(settings, member, tmp_path):
    from apps.images.models import Image

    settings.STRATUS_IMAGE_SIZE_CAP = 1 << 20
    image_id = _image(member["token"])
    # no Content-Length, and the body never ends: the cap stops it
    status, body = async_to_sync(_asgi_image_put)(image_id, member["token"], [b"\0" * (1 << 20), b"\0" * (1 << 20)],
                                                  stage=True, declared=None, expect_more=True)
    assert status == 413, body
    _assert_shape("glance", json.loads(body))
    row = Image.objects.get(pk=image_id)
    assert row.status == "queued" and not row.location
    assert not [p for p in (tmp_path / "images").rglob("*") if p.is_file()]


def _bytes_in_use(project: Project) -> int:
    return identity_selectors.quota_usage(project=project)["image_bytes"]["in_use"]


def test_staged_data_counts_against_the_image_bytes_quota(member):
    project = member["project"]
    identity.quota_set(actor=member["admin"], project_id=project.id, limits={"image_bytes": 1000})
    first, second = _image(member["token"]), _image(member["token"])
    stage = _call("PUT", f"/image/v2/images/{first}/stage", b"a" * 800, member["token"], "application/octet-stream")
    assert stage.status_code == 204, stage.content
    assert _bytes_in_use(project) == 800  # held while staged
    over = _call("PUT", f"/image/v2/images/{second}/stage", b"b" * 800, member["token"], "application/octet-stream")
    assert over.status_code == 413, over.content
    _assert_shape("glance", over.json())
    imported = _call("POST", f"/image/v2/images/{first}/import",
                     json.dumps({"method": {"name": "glance-direct"}}).encode(), member["token"])
    assert imported.status_code == 202, imported.content
    assert _bytes_in_use(project) == 800  # counted once
    third = _image(member["token"])
    assert _call("PUT", f"/image/v2/images/{third}/stage", b"c" * 150, member["token"],
                 "application/octet-stream").status_code == 204
    assert _bytes_in_use(project) == 950
    assert _call("DELETE", f"/image/v2/images/{third}", b"", member["token"]).status_code == 204
    assert _bytes_in_use(project) == 800  # a deleted staged image gives its bytes back


# ---- regular expression filters ---------------------------------------------------------------

LONG_NAME = "a" * 250
CATASTROPHIC = [
    "(a+)+$", "(a*)*b", "(a|a)*b", "(a|aa)+$", "^(a+)+\\1$", "(.*a){20}$", "((a+)b?)+$",
    ".*.*.*.*.*.*x", "a*a*a*a*a*a*a*a*!", "[a-z]*[a-z]*[a-z]*[a-z]*!", "(a|a)" * 30 + "x",
    "(?=a)a*$", "(?<=a)a*$", "(?P<x>a+)(?P=x)$", "a" * 300,
]
HARMLESS = ["^web", "web[0-9]+$", "^a+$", "^(web|db)[0-9]$", "a{3}"]


@pytest.fixture
def cloud_api() -> str:
    return "compute"


def _sqlite_matches(patterns: list[str], names: list[str], timeout: float) -> dict[str, list[str]] | None:
    """What SQLite's REGEXP (Django's, Python's ``re``) says for each pattern, in a process of its own
    (a catastrophic pattern cannot be interrupted in-process); None when it did not finish in time."""
    import subprocess
    import sys

    script = ("import json, sys\n"
              "from django.db.backends.sqlite3._functions import _sqlite_regexp\n"
              "patterns, names = json.load(sys.stdin)\n"
              "print(json.dumps({p: [n for n in names if _sqlite_regexp(p, n)] for p in patterns}))\n")
    try:
        done = subprocess.run([sys.executable, "-c", script], input=json.dumps([patterns, names]), text=True,
                              capture_output=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return None
    return json.loads(done.stdout)


def test_regex_filters_cannot_hang_the_server(env):
    import time
    from urllib.parse import quote

    names = [LONG_NAME, "web1", "db2", "aaa!"]
    for name in names:
        env.boot(name=name)
    served: dict[str, list[str]] = {}
    for pattern in CATASTROPHIC + HARMLESS:
        for field in ("name", "ip"):
            started = time.monotonic()
            response = env.cloud.member.get(f"servers?{field}={quote(pattern)}")
            elapsed = time.monotonic() - started
            assert elapsed < 2, (pattern, field, elapsed)
            assert response.status_code in (200, 400), (pattern, field, response.content[:300])
            if response.status_code == 400:
                assert response.json()["badRequest"]["message"], response.content
            elif field == "name":
                served[pattern] = sorted(s["name"] for s in response.json()["servers"])
    assert all(p in served for p in HARMLESS), served  # the usual filters still work
    # what is served is what SQLite would serve too, and SQLite's matcher finishes as fast
    started = time.monotonic()
    expected = _sqlite_matches(list(served), names, timeout=10)
    assert expected is not None, f"SQLite's REGEXP did not finish one of {sorted(served)}"
    assert time.monotonic() - started < 5
    assert served == {p: sorted(v) for p, v in expected.items()}


def test_regex_filter_shapes():
    from apps.core.errors import BadRequest
    from apps.core.regex import regex_check

    for pattern in CATASTROPHIC:
        with pytest.raises(BadRequest):
            regex_check(pattern, field="name")
    for pattern in [*HARMLESS, "^10\\.0\\.0\\.[0-9]+$", "(ab){3}", "[^x]*-web$"]:
        assert regex_check(pattern, field="name") == pattern
