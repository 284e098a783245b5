"""The interoperable import method web-download: advertised, a queued image's data fetched from a URI
by a control-queue task and streamed through the upload path (size, md5, sha512, quota), the image
active; a failed fetch puts it back to queued with the reason on its task."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from apps.images.models import Image, ImageTask
from tests.images.conftest import glance_error
from tests.images.webserver import run_web_downloads, web_server

pytestmark = pytest.mark.django_db


@pytest.fixture
def server(settings):
    with web_server() as srv:
        settings.STRATUS_IMAGE_IMPORT_ALLOWED_HOSTS = ["127.0.0.1"]
        settings.STRATUS_IMAGE_IMPORT_ALLOWED_PORTS = [80, 443, srv.port]
        yield srv


def test_web_download_is_advertised(people):
    api = people["member"].api
    assert "web-download" in api.get("info/import").json()["import-methods"]["value"]
    response = api.post("images", {"name": "w", "disk_format": "raw", "container_format": "bare"})
    assert "web-download" in response["OpenStack-image-import-methods"].split(",")


def test_web_download_streams_into_the_store_and_activates(people, server):
    data = os.urandom(5 * (1 << 20) + 17)
    server.routes["/disk.raw"] = (200, {}, data)
    api = people["member"].api
    image = api.image(name="web")
    response = api.post(f"images/{image['id']}/import",
                        {"method": {"name": "web-download", "uri": server.url("/disk.raw")}})
    assert response.status_code == 202, response.content
    assert api.get(f"images/{image['id']}").json()["status"] == "importing"
    tasks = api.get(f"images/{image['id']}/tasks").json()["tasks"]
    assert len(tasks) == 1 and tasks[0]["status"] == "pending"
    assert run_web_downloads() == ["active"]
    body = api.get(f"images/{image['id']}").json()
    assert body["status"] == "active" and body["size"] == len(data)
    assert body["checksum"] == hashlib.md5(data).hexdigest()
    assert body["os_hash_algo"] == "sha512" and body["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert "os_glance_failed_import" not in body
    row = Image.objects.get(pk=image["id"])
    assert (Path(django_settings.STRATUS_IMAGE_DIR) / row.location).read_bytes() == data
    assert ImageTask.objects.get(image_id=image["id"]).status == "success"
    # the data downloads back as it came
    assert b"".join(api.get(f"images/{image['id']}/file").streaming_content) == data
    # an active image takes no second import
    glance_error(api.post(f"images/{image['id']}/import",
                          {"method": {"name": "web-download", "uri": server.url("/disk.raw")}}), 409)


def test_a_redirect_within_allowed_hosts_is_followed(people, server):
    data = os.urandom(100_000)
    server.routes["/disk.raw"] = (200, {}, data)
    server.routes["/moved"] = (302, {"Location": "/disk.raw"}, b"")
    api = people["member"].api
    image = api.image(name="moved")
    assert api.post(f"images/{image['id']}/import",
                    {"method": {"name": "web-download", "uri": server.url("/moved")}}).status_code == 202
    assert run_web_downloads() == ["active"]
    assert Image.objects.get(pk=image["id"]).checksum == hashlib.md5(data).hexdigest()
    assert server.hits == ["/moved", "/disk.raw"]


@pytest.mark.parametrize("route", ["missing", "too-large", "short"])
def test_a_failed_fetch_puts_the_image_back_to_queued(people, server, settings, route):
    data = os.urandom(300_000)
    server.routes["/too-large"] = (200, {}, data)
    server.routes["/short"] = (200, {"Content-Length": str(len(data) + 10)}, data)
    if route == "too-large":
        settings.STRATUS_IMAGE_SIZE_CAP = 100_000
    api = people["member"].api
    image = api.image(name="fails")
    assert api.post(f"images/{image['id']}/import",
                    {"method": {"name": "web-download", "uri": server.url(f"/{route}")}}).status_code == 202
    [result] = run_web_downloads()
    assert result.startswith("failed: ")
    body = api.get(f"images/{image['id']}").json()
    assert body["status"] == "queued" and body["size"] is None and body["checksum"] is None
    assert body["os_glance_failed_import"]
    task = ImageTask.objects.get(image_id=image["id"])
    assert task.status == "failure" and task.message
    assert list(Path(django_settings.STRATUS_IMAGE_DIR).glob("*")) == [] or \
        not any(Path(django_settings.STRATUS_IMAGE_DIR).iterdir())
    # and it may be imported again once the source is right
    server.routes[f"/{route}"] = (200, {}, data[:50_000])
    assert api.post(f"images/{image['id']}/import",
                    {"method": {"name": "web-download", "uri": server.url(f"/{route}")}}).status_code == 202
    assert run_web_downloads() == ["active"]
    assert api.get(f"images/{image['id']}").json()["size"] == 50_000


def test_web_download_needs_a_uri_and_a_writer(people, server):
    api = people["member"].api
    image = api.image(name="nouri")
    glance_error(api.post(f"images/{image['id']}/import", {"method": {"name": "web-download"}}), 400)
    glance_error(people["reader"].api.post(f"images/{image['id']}/import",
                                           {"method": {"name": "web-download",
                                                       "uri": server.url("/x")}}), 403)
    assert Image.objects.get(pk=image["id"]).status == "queued"
    assert run_web_downloads() == []
