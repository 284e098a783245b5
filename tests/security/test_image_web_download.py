"""Attacks on the web-download import method (Glance's import filtering): a tenant never makes the
control tier fetch a file:// or ftp:// URI, nor from loopback, private, link-local (the metadata
service) or other internal addresses, by literal, by a name that resolves there or by a redirect; nor
imports into another project's image. A refused request changes nothing."""
from __future__ import annotations

import socket

import pytest

from apps.core.models import TaskRecord
from apps.images.models import Image, ImageTask
from tests.images.conftest import glance_error, image_store  # noqa: F401 - the per-test store fixture
from tests.images.webserver import run_web_downloads, web_server

pytestmark = pytest.mark.django_db


@pytest.fixture
def cloud_api() -> str:
    return "image"


def _import(api, image_id: str, uri: str):
    return api.post(f"images/{image_id}/import", {"method": {"name": "web-download", "uri": uri}})


def _unchanged(image_id: str, before: Image) -> None:
    after = Image.objects.get(pk=image_id)
    assert (after.status, after.size, after.location, after.updated_at, after.properties) == \
        ("queued", None, "", before.updated_at, before.properties)
    assert not ImageTask.objects.filter(image_id=image_id).exists()
    assert not TaskRecord.objects.filter(resource_id=image_id).exists()


@pytest.mark.parametrize("uri", [
    "file:///etc/passwd", "ftp://example.com/disk.raw", "gopher://example.com/", "http:///nohost",
    "http://127.0.0.1/disk.raw", "http://127.1/disk.raw", "http://2130706433/", "http://169.254.169.254/latest/meta-data/",
    "http://10.1.2.3/disk.raw", "http://192.168.0.1/", "http://172.16.0.1/", "http://[::1]/disk.raw",
    "http://[::ffff:127.0.0.1]/", "http://[fe80::1]/", "http://0.0.0.0/", "http://224.0.0.1/",
    "http://localhost/disk.raw", "https://user:pw@example.com/disk.raw", "http://example.com:22/disk.raw",
    "http://example.com:6379/",
])
def test_refused_uris_change_nothing(cloud, uri, settings):
    settings.STRATUS_IMAGE_IMPORT_ALLOWED_HOSTS = []
    image = cloud.member.image(name="target")
    before = Image.objects.get(pk=image["id"])
    glance_error(_import(cloud.member, image["id"], uri), 400)
    _unchanged(image["id"], before)


def test_a_name_resolving_to_loopback_or_metadata_is_refused(cloud, settings, monkeypatch):
    settings.STRATUS_IMAGE_IMPORT_ALLOWED_HOSTS = []
    real = socket.getaddrinfo
    answers = {"evil.example": "127.0.0.1", "meta.example": "169.254.169.254", "mixed.example": "10.0.0.5"}

    def fake(host, *args, **kwargs):
        if host in answers:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], 80))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    image = cloud.member.image(name="target")
    before = Image.objects.get(pk=image["id"])
    for host in answers:
        glance_error(_import(cloud.member, image["id"], f"http://{host}/disk.raw"), 400)
    _unchanged(image["id"], before)


def test_a_dns_rebind_after_the_check_is_refused_by_the_fetch(cloud, settings, monkeypatch):
    """The name answered a public address when the request was checked, loopback when the task
    resolves it: the task checks the address it connects to and refuses."""
    settings.STRATUS_IMAGE_IMPORT_ALLOWED_HOSTS = []
    real = socket.getaddrinfo
    answer = {"ip": "93.184.216.34"}

    def fake(host, *args, **kwargs):
        if host == "rebind.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answer["ip"], 80))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    image = cloud.member.image(name="rebind")
    assert _import(cloud.member, image["id"], "http://rebind.example/disk.raw").status_code == 202
    answer["ip"] = "127.0.0.1"
    [result] = run_web_downloads()
    assert result.startswith("failed: ") and "not allowed" in result
    row = Image.objects.get(pk=image["id"])
    assert row.status == "queued" and not row.location and row.properties.get("os_glance_failed_import")
    assert ImageTask.objects.get(image_id=image["id"]).status == "failure"


@pytest.mark.parametrize("target", ["http://169.254.169.254/latest/meta-data/", "http://localhost:{port}/disk.raw",
                                    "file:///etc/passwd", "http://10.0.0.1/x"])
def test_a_redirect_to_a_refused_host_is_not_followed(cloud, settings, target):
    with web_server() as server:
        settings.STRATUS_IMAGE_IMPORT_ALLOWED_HOSTS = ["127.0.0.1"]
        settings.STRATUS_IMAGE_IMPORT_ALLOWED_PORTS = [80, 443, server.port]
        server.routes["/disk.raw"] = (200, {}, b"secret" * 1000)
        server.routes["/go"] = (302, {"Location": target.format(port=server.port)}, b"")
        image = cloud.member.image(name="redirected")
        assert _import(cloud.member, image["id"], server.url("/go")).status_code == 202
        [result] = run_web_downloads()
        assert result.startswith("failed: "), result
        assert server.hits == ["/go"]
    row = Image.objects.get(pk=image["id"])
    assert row.status == "queued" and row.size is None and not row.location and not row.checksum
    task = ImageTask.objects.get(image_id=image["id"])
    assert task.status == "failure" and "refused" in task.message.lower()


def test_an_allowed_host_does_not_open_other_ports_nor_other_hosts(cloud, settings):
    settings.STRATUS_IMAGE_IMPORT_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.STRATUS_IMAGE_IMPORT_ALLOWED_PORTS = [80, 443]
    image = cloud.member.image(name="ports")
    before = Image.objects.get(pk=image["id"])
    for uri in ("http://127.0.0.1:6379/", "http://127.0.0.2/", "http://[::1]/"):
        glance_error(_import(cloud.member, image["id"], uri), 400)
    _unchanged(image["id"], before)


def test_another_projects_image_is_not_found_and_unchanged(cloud, settings):
    settings.STRATUS_IMAGE_IMPORT_ALLOWED_HOSTS = ["127.0.0.1"]
    image = cloud.member.image(name="mine")
    before = Image.objects.get(pk=image["id"])
    glance_error(_import(cloud.other, image["id"], "http://127.0.0.1/disk.raw"), 404)
    glance_error(_import(cloud.reader, image["id"], "http://127.0.0.1/disk.raw"), 403)
    _unchanged(image["id"], before)
