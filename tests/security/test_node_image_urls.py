"""Issue 16: nodes read and write image data through the image API with URLs the control tier signs for
one image, one purpose and one node, valid for a while (``apps.images.selectors.image_node_url``,
``lib/imageurl.py``). What a URL allows is exactly that: not another image, not the other purpose, not
after it expired, not with a tampered field or signature, not on any other endpoint; and no user can get
one through the API (only the control tier puts one in a node's spec). Each attack is refused in Glance's
error format and changes nothing."""
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


def put(url: str, data: bytes, **headers: str) -> Any:
    return Client().generic("PUT", url, data, content_type=OCTET, **headers)


def test_a_read_url_reads_its_image_as_a_stream(cloud: SeededCloud, tmp_path: Path) -> None:
    data = qcow2(tmp_path)
    image = stored(cloud.member_actor, data)
    response = Client().get(image_node_url(image_id=image.id, purpose="read", node="node-a"))
    assert response.status_code == 200 and response.streaming
    assert b"".join(response.streaming_content) == data
    assert response["Content-Length"] == str(len(data)) and response["Content-MD5"] == image.checksum


def test_a_url_for_image_a_does_not_read_image_b(cloud: SeededCloud, tmp_path: Path) -> None:
    a = stored(cloud.member_actor, qcow2(tmp_path, "a.qcow2"), name="a")
    b = stored(cloud.other_actor, qcow2(tmp_path, "b.qcow2", "-o", "cluster_size=4096"), name="b")
    url = image_node_url(image_id=a.id, purpose="read", node="node-a")
    swapped = url.replace(f"/images/{a.id}/", f"/images/{b.id}/")
    assert "allow" in glance_refusal(Client().get(swapped), 403)


def test_an_expired_url_is_refused(cloud: SeededCloud, tmp_path: Path, settings: Any) -> None:
    image = stored(cloud.member_actor, qcow2(tmp_path))
    old = image_node_url(image_id=image.id, purpose="read", node="node-a",
                         now=time.time() - settings.STRATUS_IMAGE_URL_TTL_SECONDS - 5)
    assert "expired" in glance_refusal(Client().get(old), 401)
    # and pushing its expiry forward breaks the signature
    later = with_query(old, expires=str(int(time.time()) + 3600))
    glance_refusal(Client().get(later), 403)


def test_tampered_signatures_and_fields_are_refused(cloud: SeededCloud, tmp_path: Path) -> None:
    image = stored(cloud.member_actor, qcow2(tmp_path))
    url = image_node_url(image_id=image.id, purpose="read", node="node-a")
    signature = parse_qs(urlsplit(url).query)["signature"][0]
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    for bad in (with_query(url, signature=flipped), with_query(url, signature=""),
                with_query(url, signature=signature[:-2]), with_query(url, node="node-b"),
                with_query(url, expires="not-a-number"), urlsplit(url).path):
        glance_refusal(Client().get(bad), 403)
    # the key is the control tier's: a URL signed under another key is refused
    forged_grant = imageurl.Grant(image_id=image.id, purpose="read", node="node-a", expires=int(time.time()) + 60)
    forged = with_query(url, expires=str(forged_grant.expires),
                        signature=imageurl.signature(b"guessed-key", forged_grant))
    glance_refusal(Client().get(forged), 403)


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
    glance_refusal(Client().get(image_node_url(image_id=full.id, purpose="write", node="node-a")), 403)
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
    query = urlsplit(image_node_url(image_id=image.id, purpose="read", node="node-a")).query
    write_query = urlsplit(image_node_url(image_id=image.id, purpose="write", node="node-a")).query
    # Glance's own endpoints want a token: the signature in the query is nothing to them
    assert Client().get(f"/image/v2/images/{image.id}/file?{query}").status_code == 401
    assert Client().get(f"/image/v2/images/{image.id}?{query}").status_code == 401
    assert put(f"/image/v2/images/{image.id}/file?{write_query}", b"x").status_code == 401
    # and the node endpoint answers only GET and PUT
    assert Client().delete(f"/image/v2/node/images/{image.id}/file?{write_query}").status_code == 405
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
    assert spec["image"]["url"].startswith(f"/image/v2/node/images/{boot.id}/file?purpose=read&node=node-a&")
    assert spec["kernel"] == {"id": foreign_kernel.id, "missing": True}
    # the URL it signed is good from that node's spec only: as another node's it is refused
    glance_refusal(Client().get(with_query(spec["image"]["url"], node="node-b")), 403)
    assert Client().get(spec["image"]["url"]).status_code == 200


async def _asgi_put(url: str, body: bytes) -> tuple[int, bytes]:
    async def behind(scope, receive, send):  # type: ignore[no-untyped-def]
        raise AssertionError("the node upload path must not reach Django")

    parts = urlsplit(url)
    scope = {"type": "http", "method": "PUT", "path": parts.path, "query_string": parts.query.encode(),
             "headers": [(b"host", b"localhost"), (b"content-type", OCTET.encode()),
                         (b"content-length", str(len(body)).encode())]}
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
