"""Issue 16: nodes read and write image data through the image API with URLs the control tier signs for
one image, one purpose and one node, valid for a while (``apps.images.selectors.image_node_url``,
``lib/imageurl.py``). What a URL allows is exactly that: not another image, not the other purpose, not
after it expired, not with a tampered field or signature, not on any other endpoint; and no user can get
one through the API (only the control tier puts one in a node's spec). The signature is a credential: it
travels in the X-Stratus-Image-Signature header, never in the URL an access log records, and a signature
in the query string is refused. Each attack is refused in Glance's error format and changes nothing."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from django.test import Client

from apps.images import services as image_services
from apps.images import storage as image_storage
from apps.images.asgi import StreamedImageData
from apps.images.models import Image
from apps.images.selectors import image_node_url
from lib import imageurl
from tests.api_client import SeededCloud

pytestmark = pytest.mark.django_db

OCTET = "application/octet-stream"


@pytest.fixture(autouse=True)
def image_store(settings: Any, tmp_path: Path) -> Any:
    settings.STRATUS_IMAGE_STORE, settings.STRATUS_IMAGE_DIR = "file", str(tmp_path / "images")
    image_storage.reset()
    yield
    image_storage.reset()


def qcow2(tmp_path: Path, name: str = "disk.qcow2", *extra: str) -> bytes:
    path = tmp_path / name
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", *extra, str(path), "16M"], check=True)
    return path.read_bytes()


def stored(actor: Any, data: bytes, *, name: str = "img", visibility: str = "private") -> Image:
    image = image_services.image_create(actor=actor, name=name, disk_format="qcow2", container_format="bare",
                                        visibility=visibility)
    return image_services.image_upload(actor=actor, image_id=image.id, chunks=[data])


def queued(actor: Any, name: str = "snap") -> Image:
    return image_services.image_create(actor=actor, name=name, disk_format="qcow2", container_format="bare")


def glance_refusal(response: Any, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.content[:300])
    body = response.json()
    assert set(body) == {"code", "title", "message"} and body["code"] == status
    return body["message"]


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return f"{parts.path}?{urlencode(query)}"


def signed_headers(signed: dict[str, str], signature: str | None = None) -> dict[str, str]:
    return {"HTTP_X_STRATUS_IMAGE_SIGNATURE": signed["signature"] if signature is None else signature}


def get(signed: dict[str, str], *, path: str | None = None, signature: str | None = None) -> Any:
    """A node's GET of grant ``signed`` (its path, or ``path`` instead), the signature in the header."""
    return Client().get(path or signed["path"], **signed_headers(signed, signature))


def put(signed: dict[str, str], data: bytes, *, path: str | None = None) -> Any:
    return Client().generic("PUT", path or signed["path"], data, content_type=OCTET, **signed_headers(signed))


def test_a_read_url_reads_its_image_as_a_stream(cloud: SeededCloud, tmp_path: Path) -> None:
    data = qcow2(tmp_path)
    image = stored(cloud.member_actor, data)
    response = get(image_node_url(image_id=image.id, purpose="read", node="node-a"))
    assert response.status_code == 200 and response.streaming
    assert b"".join(response.streaming_content) == data
    assert response["Content-Length"] == str(len(data)) and response["Content-MD5"] == image.checksum


def test_a_url_for_image_a_does_not_read_image_b(cloud: SeededCloud, tmp_path: Path) -> None:
    a = stored(cloud.member_actor, qcow2(tmp_path, "a.qcow2"), name="a")
    b = stored(cloud.other_actor, qcow2(tmp_path, "b.qcow2", "-o", "cluster_size=4096"), name="b")
    signed = image_node_url(image_id=a.id, purpose="read", node="node-a")
    swapped = signed["path"].replace(f"/images/{a.id}/", f"/images/{b.id}/")
    assert "allow" in glance_refusal(get(signed, path=swapped), 403)


def test_an_expired_url_is_refused(cloud: SeededCloud, tmp_path: Path, settings: Any) -> None:
    image = stored(cloud.member_actor, qcow2(tmp_path))
    old = image_node_url(image_id=image.id, purpose="read", node="node-a",
                         now=time.time() - settings.STRATUS_IMAGE_URL_TTL_SECONDS - 5)
    assert "expired" in glance_refusal(get(old), 401)
    # and pushing its expiry forward breaks the signature
    later = with_query(old["path"], expires=str(int(time.time()) + 3600))
    glance_refusal(get(old, path=later), 403)


def test_tampered_signatures_and_fields_are_refused(cloud: SeededCloud, tmp_path: Path) -> None:
    image = stored(cloud.member_actor, qcow2(tmp_path))
    signed = image_node_url(image_id=image.id, purpose="read", node="node-a")
    url, signature = signed["path"], signed["signature"]
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    for bad in (flipped, "", signature[:-2]):
        glance_refusal(get(signed, signature=bad), 403)
    for path in (with_query(url, node="node-b"), with_query(url, expires="not-a-number"), urlsplit(url).path):
        glance_refusal(get(signed, path=path), 403)
    glance_refusal(Client().get(url), 403)  # no header at all
    # the key is the control tier's: a URL signed under another key is refused
    forged_grant = imageurl.Grant(image_id=image.id, purpose="read", node="node-a", expires=int(time.time()) + 60)
    forged = with_query(url, expires=str(forged_grant.expires))
    glance_refusal(get(signed, path=forged, signature=imageurl.signature(b"guessed-key", forged_grant)), 403)


def test_a_read_url_cannot_write_and_a_write_url_cannot_read(cloud: SeededCloud, tmp_path: Path) -> None:
    data = qcow2(tmp_path)
    target = queued(cloud.member_actor)
    read_url = image_node_url(image_id=target.id, purpose="read", node="node-a")
    glance_refusal(put(read_url, data), 403)
    target.refresh_from_db()
    assert target.status == Image.QUEUED and not target.location and not target.size
    # the ASGI path (the web server's PUT before Django) refuses it the same way
    status, body = async_to_sync(_asgi_put)(read_url, data)
    assert status == 403 and b'"code": 403' in body
    target.refresh_from_db()
    assert target.status == Image.QUEUED and not target.location
    # a write URL reads nothing
    full = stored(cloud.member_actor, data, name="full")
    glance_refusal(get(image_node_url(image_id=full.id, purpose="write", node="node-a")), 403)
    # and its own purpose works: the upload path (checksums, active)
    assert put(image_node_url(image_id=target.id, purpose="write", node="node-a"), data).status_code == 204
    target.refresh_from_db()
    assert target.status == Image.ACTIVE and target.size == len(data) and target.checksum


def test_a_write_url_goes_through_the_upload_checks(cloud: SeededCloud, tmp_path: Path) -> None:
    """A node's upload is a user's upload: the format inspector refuses a qcow2 that names a backing
    file (a node cannot make an image that reads the controller's files), and an image that is no longer
    queued takes no data."""
    target = queued(cloud.member_actor)
    url = image_node_url(image_id=target.id, purpose="write", node="node-a")
    evil = qcow2(tmp_path, "evil.qcow2", "-F", "raw", "-b", "/etc/passwd")
    assert put(url, evil).status_code == 400
    target.refresh_from_db()
    assert target.status == Image.QUEUED and not target.location
    good = qcow2(tmp_path)
    assert put(url, good).status_code == 204
    glance_refusal(put(url, good), 409)  # active now: the URL cannot overwrite it


def test_a_signed_url_is_accepted_nowhere_else(cloud: SeededCloud, tmp_path: Path) -> None:
    image = stored(cloud.member_actor, qcow2(tmp_path))
    read = image_node_url(image_id=image.id, purpose="read", node="node-a")
    write = image_node_url(image_id=image.id, purpose="write", node="node-a")
    query, write_query = urlsplit(read["path"]).query, urlsplit(write["path"]).query
    # Glance's own endpoints want a token: the signed grant is nothing to them
    assert get(read, path=f"/image/v2/images/{image.id}/file?{query}").status_code == 401
    assert get(read, path=f"/image/v2/images/{image.id}?{query}").status_code == 401
    assert put(write, b"x", path=f"/image/v2/images/{image.id}/file?{write_query}").status_code == 401
    # and the node endpoint answers only GET and PUT
    assert Client().delete(write["path"], **signed_headers(write)).status_code == 405
    assert Image.objects.filter(pk=image.id, status=Image.ACTIVE).exists()


def test_a_user_never_obtains_a_node_url(cloud: SeededCloud, tmp_path: Path) -> None:
    """Another tenant's private image: olga cannot read it, with her token or without, and nothing the
    API shows her or its owner holds a signed URL; only the control tier makes one, for a node's spec
    (``test_a_spec_signs_only_what_the_project_may_boot``)."""
    image = stored(cloud.member_actor, qcow2(tmp_path))
    other = cloud.other.to("image")
    assert other.get(f"/image/v2/images/{image.id}").status_code == 404
    assert other.get(f"/image/v2/images/{image.id}/file").status_code == 404
    for client in (Client(), Client(HTTP_X_AUTH_TOKEN=cloud.other_token)):
        glance_refusal(client.get(f"/image/v2/node/images/{image.id}/file"), 403)
    shown = cloud.member.to("image").get(f"/image/v2/images/{image.id}")
    assert shown.status_code == 200 and "signature" not in shown.content.decode()
    listed = cloud.member.to("image").get("/image/v2/images")
    assert listed.status_code == 200 and "/node/" not in listed.content.decode()


def test_a_spec_signs_only_what_the_project_may_boot(cloud: SeededCloud, tmp_path: Path) -> None:
    """The control tier signs a read URL for the boot image it decided the node needs, for that node;
    a kernel named by the image but private to another project gets no URL at all."""
    from apps.compute.models import Instance
    from apps.compute.selectors.node_specs import server_node_spec

    foreign_kernel = stored(cloud.other_actor, qcow2(tmp_path, "k.qcow2"), name="kernel")
    boot = image_services.image_create(actor=cloud.member_actor, name="boot", disk_format="qcow2",
                                       container_format="bare", properties={"kernel_id": foreign_kernel.id})
    boot = image_services.image_upload(actor=cloud.member_actor, image_id=boot.id, chunks=[qcow2(tmp_path)])
    instance = Instance.objects.create(project_id=cloud.member_actor.project_id, user_id=cloud.member_actor.user.id,
                                       name="vm", image_id=boot.id, host="node-a", vcpus=1, memory_mb=64, root_gb=1)
    spec = server_node_spec(instance_id=instance.id, task="spawn")
    signed = spec["image"]["url"]
    assert signed["path"].startswith(f"/image/v2/node/images/{boot.id}/file?purpose=read&node=node-a&")
    assert "signature" not in signed["path"] and signed["signature"]
    assert spec["kernel"] == {"id": foreign_kernel.id, "missing": True}
    # the URL it signed is good from that node's spec only: as another node's it is refused
    glance_refusal(get(signed, path=with_query(signed["path"], node="node-b")), 403)
    assert get(signed).status_code == 200


async def _asgi_put(signed: dict[str, str], body: bytes, *, path: str | None = None,
                    header: bool = True) -> tuple[int, bytes]:
    async def behind(scope, receive, send):  # type: ignore[no-untyped-def]
        raise AssertionError("the node upload path must not reach Django")

    parts = urlsplit(path or signed["path"])
    headers = [(b"host", b"localhost"), (b"content-type", OCTET.encode()),
               (b"content-length", str(len(body)).encode())]
    if header:
        headers.append((b"x-stratus-image-signature", signed["signature"].encode()))
    scope = {"type": "http", "method": "PUT", "path": parts.path, "query_string": parts.query.encode(),
             "headers": headers}
    app = ApplicationCommunicator(StreamedImageData(behind), scope)
    await app.send_input({"type": "http.request", "body": body, "more_body": False})
    start = await app.receive_output(5)
    payload = await app.receive_output(5)
    return start["status"], payload.get("body", b"")


def test_the_node_launchers_withhold_the_image_store() -> None:
    """Every node agent the launchers start (``make run``, ``up --role``, the test nodes) gets neither the
    database's credentials nor the image store's settings, credentials or the URL key."""
    from portal.launcher import without_database, without_image_store

    controller = {"DATABASE_URL": "postgres://x", "STRATUS_IMAGE_STORE": "s3", "STRATUS_IMAGE_DIR": "/srv/images",
                  "STRATUS_IMAGE_S3_ACCESS_KEY": "ak", "STRATUS_IMAGE_S3_SECRET_KEY": "sk",
                  "STRATUS_IMAGE_URL_KEY": "k", "STRATUS_PUBLIC_URL": "http://controller:8000",
                  "STRATUS_IMAGE_CACHE_PATH": "/var/cache/images", "CELERY_BROKER_URL": "amqp://node"}
    node = without_database(controller)
    assert node == {"STRATUS_PUBLIC_URL": "http://controller:8000", "STRATUS_IMAGE_CACHE_PATH": "/var/cache/images",
                    "CELERY_BROKER_URL": "amqp://node", "STRATUS_NO_DATABASE": "1"}
    assert set(without_image_store(controller)) == {"DATABASE_URL", "STRATUS_PUBLIC_URL", "STRATUS_IMAGE_CACHE_PATH",
                                                    "CELERY_BROKER_URL"}


class _Recorder:
    """A plain HTTP server on loopback that records each request line and headers as an access log sees
    them, and answers with ``body``."""

    def __init__(self, body: bytes) -> None:
        import http.server
        import threading

        seen: list[tuple[str, dict[str, str]]] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append((self.requestline, {k.lower(): v for k, v in self.headers.items()}))
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.seen = seen
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_node_fetch_logs_no_signature(cloud: SeededCloud, tmp_path: Path, settings: Any) -> None:
    """What an access log records of a node's fetch (the request line: method, path and query) holds no
    signature: the node (``workers.images.download`` over ``lib.imagehttp``) sends it in the
    X-Stratus-Image-Signature header; the same request replayed to the image API reads the image. A
    grant in the old one-string form (a task record made before) is sent the same way."""
    from workers import images

    data = qcow2(tmp_path)
    image = stored(cloud.member_actor, data)
    signed = image_node_url(image_id=image.id, purpose="read", node="node-a")
    recorder = _Recorder(b"x")
    settings.STRATUS_PUBLIC_URL, settings.STRATUS_CONTROLLER_CA = recorder.url, ""
    try:
        assert b"".join(images.download(signed)) == b"x"
        old_style = f"{signed['path']}&signature={signed['signature']}"
        assert b"".join(images.download(old_style)) == b"x"
    finally:
        recorder.close()
    assert len(recorder.seen) == 2
    for line, headers in recorder.seen:
        assert signed["signature"] not in line and "signature" not in line.lower()
        assert headers["x-stratus-image-signature"] == signed["signature"]
        target = line.split(" ")[1]
        assert target == signed["path"]
        response = Client().get(target, HTTP_X_STRATUS_IMAGE_SIGNATURE=headers["x-stratus-image-signature"])
        assert response.status_code == 200 and b"".join(response.streaming_content) == data
    # the node's HTTP client itself will not put a signature in a URL
    from lib import imagehttp

    with pytest.raises(imagehttp.ImageHTTPError):
        list(imagehttp.download(f"{recorder.url}{old_style}", signature=signed["signature"]))


def test_a_signature_in_the_query_string_is_refused(cloud: SeededCloud, tmp_path: Path) -> None:
    """An old-style URL (the signature in its query) is refused on GET and PUT, through Django and the
    ASGI upload path, with or without the header: a credential that was logged never works."""
    data = qcow2(tmp_path)
    image = stored(cloud.member_actor, data)
    read = image_node_url(image_id=image.id, purpose="read", node="node-a")
    in_query = f"{read['path']}&signature={read['signature']}"
    assert "header" in glance_refusal(Client().get(in_query), 403)
    glance_refusal(get(read, path=in_query), 403)
    glance_refusal(get(read, path=f"{read['path']}&signature="), 403)
    assert get(read).status_code == 200  # the same grant with its signature in the header
    target = queued(cloud.member_actor)
    write = image_node_url(image_id=target.id, purpose="write", node="node-a")
    write_in_query = f"{write['path']}&signature={write['signature']}"
    glance_refusal(Client().generic("PUT", write_in_query, data, content_type=OCTET), 403)
    glance_refusal(put(write, data, path=write_in_query), 403)
    for header in (False, True):
        status, body = async_to_sync(_asgi_put)(write, data, path=write_in_query, header=header)
        assert status == 403 and b"header" in body
    target.refresh_from_db()
    assert target.status == Image.QUEUED and not target.location and not target.size
    assert put(write, data).status_code == 204  # the same grant with its signature in the header
    target.refresh_from_db()
    assert target.status == Image.ACTIVE and target.size == len(data)
