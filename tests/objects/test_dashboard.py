"""The Object Store panel (apps/objects/views.py) through the Django test client: the containers' live
table (sort, filter, pages at constant queries; create, public/private, delete with a 409 shown as a
message, bulk delete), isolation between projects and a reader who cannot write."""
from __future__ import annotations

import hashlib
import html
import json
import re
from urllib.parse import quote

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from apps.objects import selectors, services
from apps.objects.models import Container, Object
from tests.dashboard.conftest import sign_in
from tests.dashboard.table_pages import table_page, walk
from tests.identity.factories import PASSWORD

pytestmark = pytest.mark.django_db

CONTAINERS = "/dashboard/objects/containers/"


def _client(name: str, password: str = PASSWORD) -> Client:
    client = Client()
    assert sign_in(client, name, password).status_code == 302
    return client


def _put(actor, container: str, name: str, data: bytes = b"x") -> None:
    services.object_put(actor=actor, container=container, name=name, stream=[data])


def test_containers_table_sorts_filters_and_pages_at_constant_queries(cloud):
    alice = _client("alice")
    actor = cloud.member_actor
    for i in range(3):
        services.container_create(actor=actor, name=f"c{i:02d}")
    _put(actor, "c01", "a", b"x" * 3000)
    small = table_page(alice, CONTAINERS)
    assert small.ids == ["c00", "c01", "c02"]
    assert "2.9\xa0KB" in small.html and "3 containers, 1 object" in small.html
    for i in range(3, 60):
        services.container_create(actor=actor, name=f"c{i:02d}")
    pages, counts = walk(alice, CONTAINERS + "?sort=name&dir=asc")
    assert [i for p in pages for i in p.ids] == [f"c{i:02d}" for i in range(60)]
    assert len(counts) == 1, counts  # every page after a marker costs the same
    first = table_page(alice, CONTAINERS)
    assert first.queries == small.queries  # 3 containers or 60: the same queries
    by_size = table_page(alice, CONTAINERS + "?sort=bytes_used&dir=desc")
    assert by_size.ids[0] == "c01"
    assert table_page(alice, CONTAINERS + "?q=c5").ids == [f"c{i}" for i in range(50, 60)]
    assert table_page(alice, CONTAINERS + "?partial=1").ids == first.ids


def test_create_toggle_public_and_delete(cloud):
    alice = _client("alice")
    created = alice.post(CONTAINERS + "create", {"name": "photos"})
    assert created.status_code == 302
    row = Container.objects.get(project_id=cloud.demo_project.id, name="photos")
    assert row.read_acl == "" and not selectors.is_public(row)
    again = alice.post(CONTAINERS + "create", {"name": "photos"})
    assert again.status_code == 400 and "already exists" in again.content.decode()
    bad = alice.post(CONTAINERS + "create", {"name": "a/b"})
    assert bad.status_code == 400 and "cannot contain" in bad.content.decode()
    services.container_update(actor=cloud.member_actor, name="photos", read_acl="other:*")
    assert alice.post(CONTAINERS + "photos/public").status_code == 302
    row.refresh_from_db()
    assert row.read_acl == "other:*,.r:*,.rlistings" and selectors.is_public(row)
    listed = alice.get(CONTAINERS).content.decode()
    assert 'data-access="public"' in listed and 'href="/dashboard/objects/containers/photos/"' in listed
    assert Client().get(f"/object-store/v1/AUTH_{cloud.demo_project.id}/photos").status_code == 204
    assert alice.post(CONTAINERS + "photos/public").status_code == 302
    row.refresh_from_db()
    assert row.read_acl == "other:*"
    assert Client().get(f"/object-store/v1/AUTH_{cloud.demo_project.id}/photos").status_code == 401
    _put(cloud.member_actor, "photos", "cat.jpg")
    refused = alice.post(CONTAINERS + "photos/delete", follow=True)
    assert "Container photos is not empty" in refused.content.decode()
    assert Container.objects.filter(name="photos").exists()
    services.object_delete(actor=cloud.member_actor, container="photos", name="cat.jpg")
    assert alice.post(CONTAINERS + "photos/delete").status_code == 302
    assert not Container.objects.filter(name="photos").exists()
    public = alice.post(CONTAINERS + "create", {"name": "open", "public": "on"})
    assert public.status_code == 302 and selectors.is_public(Container.objects.get(name="open"))


def test_bulk_delete_reports_each_row(cloud):
    alice = _client("alice")
    for name in ("a", "b", "full"):
        services.container_create(actor=cloud.member_actor, name=name)
    _put(cloud.member_actor, "full", "x")
    answer = alice.post(CONTAINERS + "act", {"action": "delete", "ids": ["a", "full", "b", "nope"]},
                        HTTP_ACCEPT="application/json")
    results = {r["id"]: r for r in json.loads(answer.content)["results"]}
    assert results["a"]["ok"] and results["b"]["ok"]
    assert not results["full"]["ok"] and "not empty" in results["full"]["message"]
    assert not results["nope"]["ok"]
    assert list(Container.objects.values_list("name", flat=True)) == ["full"]


def test_isolation_and_reader(cloud):
    services.container_create(actor=cloud.other_actor, name="theirs")
    services.container_create(actor=cloud.member_actor, name="ours")
    alice, rita, olga = _client("alice"), _client("rita"), _client("olga")
    assert table_page(alice, CONTAINERS).ids == ["ours"]
    assert table_page(olga, CONTAINERS).ids == ["theirs"]
    assert alice.post(CONTAINERS + "theirs/delete").status_code == 404
    assert alice.post(CONTAINERS + "theirs/public").status_code == 404
    assert Container.objects.filter(name="theirs").exists()
    page = table_page(rita, CONTAINERS)
    assert page.ids == ["ours"] and "container-card" not in page.html and 'data-action="delete"' not in page.html
    assert rita.post(CONTAINERS + "ours/delete").status_code == 403
    assert rita.post(CONTAINERS + "ours/public").status_code == 403
    assert rita.post(CONTAINERS + "create", {"name": "mine"}).status_code == 400
    assert set(Container.objects.values_list("name", flat=True)) == {"theirs", "ours"}
    bob = _client("bob")  # another member of the project uses alice's container
    assert bob.post(CONTAINERS + "ours/public").status_code == 302


def _folder(container: str, prefix: str = "") -> str:
    return f"{CONTAINERS}{container}/" + (f"?prefix={quote(prefix, safe='')}" if prefix else "")


def test_browse_folders_at_constant_queries(cloud):
    actor = cloud.member_actor
    services.container_create(actor=actor, name="docs")
    for name in ("a.txt", "photos/cat.jpg", "photos/2024/dog.jpg", "zeta/x"):
        _put(actor, "docs", name)
    alice = _client("alice")
    top = table_page(alice, _folder("docs"))
    assert top.ids == ["a.txt", "photos/", "zeta/"]
    assert 'data-kind="folder"' in top.html and "?prefix=photos%2F" in top.html
    inner = table_page(alice, _folder("docs", "photos/"))
    assert inner.ids == ["photos/2024/", "photos/cat.jpg"]
    assert 'href="/dashboard/objects/containers/docs/?prefix=photos%2F2024%2F"' in inner.html  # breadcrumbs too
    assert '<input type="hidden" name="prefix" value="photos/">' in inner.html  # the filter keeps the folder
    assert table_page(alice, _folder("docs", "photos/") + "&q=c").ids == ["photos/cat.jpg"]
    assert table_page(alice, _folder("docs") + "?sort=name&dir=desc").ids == ["zeta/", "photos/", "a.txt"]
    for i in range(120):
        _put(actor, "docs", f"many/{i:03d}")
    pages, counts = walk(alice, _folder("docs", "many/"))
    assert [i for p in pages for i in p.ids] == [f"many/{i:03d}" for i in range(120)]
    assert all("prefix=many%2F" in p.next for p in pages[:-1])
    assert len(counts) == 1 and table_page(alice, _folder("docs", "many/")).queries == inner.queries
    back = table_page(alice, pages[2].previous)
    assert back.ids == pages[1].ids
    assert table_page(alice, _folder("docs", "many/") + "&partial=1").ids == pages[0].ids


def test_upload_download_metadata_delete(cloud, settings):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024  # the file goes to a temporary file, and streams from it
    alice = _client("alice")
    services.container_create(actor=cloud.member_actor, name="docs")
    data = bytes(range(256)) * 600
    upload = SimpleUploadedFile("report.bin", data, content_type="application/octet-stream")
    done = alice.post(CONTAINERS + "docs/upload", {"file": upload, "prefix": "reports/"})
    assert done.status_code == 302 and done["Location"] == _folder("docs", "reports/")
    obj = selectors.object_get(actor=cloud.member_actor, project_id=cloud.demo_project.id, container="docs",
                               name="reports/report.bin")
    assert obj.size == len(data) and obj.etag == hashlib.md5(data).hexdigest()
    named = alice.post(CONTAINERS + "docs/upload", {"file": SimpleUploadedFile("x", b"hi"), "name": "notes.txt"},
                       HTTP_ACCEPT="application/json")
    assert json.loads(named.content)["name"] == "notes.txt"
    assert selectors.object_get(actor=cloud.member_actor, project_id=cloud.demo_project.id, container="docs",
                                name="notes.txt").content_type == "text/plain"
    got = alice.get(CONTAINERS + "docs/download?object=reports/report.bin")
    assert got.status_code == 200 and got.streaming
    assert b"".join(got.streaming_content) == data
    assert got["Content-Disposition"] == "attachment; filename*=UTF-8''report.bin"
    services.object_update(actor=cloud.member_actor, container="docs", name="notes.txt",
                           metadata={"color": "blue"}, headers={"Content-Disposition": "inline"})
    info = alice.get(CONTAINERS + "docs/object?object=notes.txt").content.decode()
    assert "X-Object-Meta-color" in info and "blue" in info and hashlib.md5(b"hi").hexdigest() in info
    assert alice.get(CONTAINERS + "docs/object?object=nope").status_code == 404
    gone = alice.post(CONTAINERS + "docs/objects/act", {"action": "delete", "ids": ["notes.txt", "nope"]},
                      HTTP_ACCEPT="application/json")
    results = json.loads(gone.content)["results"]
    assert [r["ok"] for r in results] == [True, False]
    assert list(Object.objects.values_list("name", flat=True)) == ["reports/report.bin"]
    empty = alice.post(CONTAINERS + "docs/upload", {"prefix": ""})
    assert empty.status_code == 400


def test_objects_isolation_and_reader(cloud):
    services.container_create(actor=cloud.other_actor, name="theirs")
    _put(cloud.other_actor, "theirs", "secret")
    services.container_create(actor=cloud.member_actor, name="ours")
    _put(cloud.member_actor, "ours", "mine")
    alice, rita = _client("alice"), _client("rita")
    assert alice.get(_folder("theirs")).status_code == 404
    assert alice.get(CONTAINERS + "theirs/download?object=secret").status_code == 404
    assert alice.get(CONTAINERS + "theirs/object?object=secret").status_code == 404
    assert alice.post(CONTAINERS + "theirs/upload", {"file": SimpleUploadedFile("f", b"x")}).status_code == 404
    assert alice.post(CONTAINERS + "theirs/objects/act", {"action": "delete", "ids": ["secret"]}).status_code == 404
    page = table_page(rita, _folder("ours"))
    assert page.ids == ["mine"] and "upload-card" not in page.html and 'data-action="delete"' not in page.html
    assert b"".join(rita.get(CONTAINERS + "ours/download?object=mine").streaming_content) == b"x"
    assert rita.post(CONTAINERS + "ours/upload", {"file": SimpleUploadedFile("f", b"x")}).status_code == 403
    answer = rita.post(CONTAINERS + "ours/objects/act", {"action": "delete", "ids": ["mine"]},
                       HTTP_ACCEPT="application/json")
    assert json.loads(answer.content)["results"][0]["ok"] is False
    assert set(Object.objects.values_list("name", flat=True)) == {"secret", "mine"}


def test_temp_url(cloud):
    alice, rita = _client("alice"), _client("rita")
    services.container_create(actor=cloud.member_actor, name="docs")
    _put(cloud.member_actor, "docs", "a b/report.txt", b"the report")
    refused = rita.post(CONTAINERS + "docs/tempurl", {"object": "a b/report.txt", "minutes": 5})
    assert refused.status_code == 403
    made = alice.post(CONTAINERS + "docs/tempurl", {"object": "a b/report.txt", "minutes": 5})
    assert made.status_code == 200 and made["Cache-Control"] == "no-store"
    url = html.unescape(re.search(r'value="([^"]+)" id="temp-url"', made.content.decode())
                        .group(1))
    assert "temp_url_sig=" in url and "/a%20b/report.txt?" in url
    got = Client().get(url.removeprefix("http://testserver"))
    assert got.status_code == 200 and got.getvalue() == b"the report"
    tampered = url.replace("report.txt", "other.txt")
    assert Client().get(tampered.removeprefix("http://testserver")).status_code == 401
    assert alice.post(CONTAINERS + "docs/tempurl", {"object": "nope", "minutes": 5}).status_code == 404
    assert alice.post(CONTAINERS + "docs/tempurl", {"object": "a b/report.txt", "minutes": 0}).status_code == 400


def test_overview_shows_the_object_usage(cloud):
    alice = _client("alice")
    assert 'id="object-usage"' not in alice.get("/dashboard/").content.decode()
    services.container_create(actor=cloud.member_actor, name="docs")
    _put(cloud.member_actor, "docs", "a", b"x" * 2048)
    page = alice.get("/dashboard/").content.decode()
    assert 'id="object-usage"' in page and "2.0\xa0KB" in page
    assert 'id="object-usage"' not in _client("olga").get("/dashboard/").content.decode()
