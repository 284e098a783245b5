"""Swift v1 through the Django test client with real tokens: account, containers, objects, listings,
conditional and range GETs, ACLs, temp URLs, large objects, bulk delete, /info and the headers every
response carries."""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from email.utils import formatdate

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.objects.models import Container, Object

pytestmark = pytest.mark.django_db(transaction=True)

TRANS = re.compile(r"^tx[0-9a-f]{21}-[0-9a-f]{10}$")


def req(api, method, path, data=b"", **headers):
    return api.call(method, path, raw=data, content_type=headers.pop("content_type", "application/octet-stream"),
                    token=headers.pop("token", None), headers=headers)


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_catalog_points_at_swift_and_info(cloud):
    from apps.identity.models import Endpoint

    urls = [e.url for e in Endpoint.objects.filter(service__type="object-store")]
    assert urls and all(u.endswith("/object-store/v1/AUTH_$(project_id)s") for u in urls)
    info = cloud.anonymous.get("/object-store/info")
    assert info.status_code == 200 and TRANS.match(info["X-Trans-Id"])
    caps = info.json()
    assert caps["swift"]["container_listing_limit"] == 10000 and "slo" in caps and "tempurl" in caps


def test_account_container_object_round_trip(cloud):
    api = cloud.member
    r = req(api, "HEAD", "")
    assert r.status_code == 204 and r["X-Account-Container-Count"] == "0"
    for header in ("X-Trans-Id", "X-Openstack-Request-Id", "X-Timestamp", "Date"):
        assert r.has_header(header), header
    assert r["X-Trans-Id"] == r["X-Openstack-Request-Id"]
    assert req(api, "GET", "").status_code == 204
    assert req(api, "GET", "?format=json").content == b"[]"
    assert req(api, "PUT", "photos", **{"X-Container-Meta-Color": "blue"}).status_code == 201
    assert req(api, "PUT", "photos").status_code == 202
    data = b"hello swift" * 1000
    r = req(api, "PUT", "photos/a/b.txt", data, content_type="text/plain", **{
        "X-Object-Meta-Owner": "alice", "Etag": hashlib.md5(data).hexdigest(), "Content-Disposition": "inline"})
    assert r.status_code == 201 and r["Etag"] == hashlib.md5(data).hexdigest()
    r = req(api, "GET", "photos/a/b.txt")
    assert r.status_code == 200 and body(r) == data and r["Content-Type"] == "text/plain"
    assert r["X-Object-Meta-Owner"] == "alice" and r["Content-Length"] == str(len(data))
    assert r["Content-Disposition"] == "inline" and r["Etag"] == hashlib.md5(data).hexdigest()
    r = req(api, "HEAD", "photos/a/b.txt")
    assert r.status_code == 200 and r["Content-Length"] == str(len(data)) and not body(r)
    r = req(api, "HEAD", "")
    assert (r["X-Account-Container-Count"], r["X-Account-Object-Count"], r["X-Account-Bytes-Used"]) == \
        ("1", "1", str(len(data)))
    r = req(api, "HEAD", "photos")
    assert r.status_code == 204 and r["X-Container-Meta-Color"] == "blue" and r["X-Container-Object-Count"] == "1"
    # a wrong etag: 422, nothing stored
    r = req(api, "PUT", "photos/bad", b"abc", Etag="0" * 32)
    assert r.status_code == 422 and b"<html>" in r.content
    assert req(api, "HEAD", "photos/bad").status_code == 404
    # POST replaces the object's metadata
    assert req(api, "POST", "photos/a/b.txt", **{"X-Object-Meta-New": "1"}).status_code == 202
    r = req(api, "HEAD", "photos/a/b.txt")
    assert r["X-Object-Meta-New"] == "1" and not r.has_header("X-Object-Meta-Owner")
    # copy both ways
    assert req(api, "COPY", "photos/a/b.txt", Destination="photos/copy1").status_code == 201
    assert req(api, "PUT", "photos/copy2", **{"X-Copy-From": "/photos/a/b.txt"}).status_code == 201
    for name in ("copy1", "copy2"):
        assert body(req(api, "GET", f"photos/{name}")) == data
    # container and account metadata
    assert req(api, "POST", "photos", **{"X-Remove-Container-Meta-Color": "x"}).status_code == 204
    assert not req(api, "HEAD", "photos").has_header("X-Container-Meta-Color")
    assert req(api, "POST", "", **{"X-Account-Meta-Team": "red"}).status_code == 204
    assert req(api, "HEAD", "")["X-Account-Meta-Team"] == "red"
    # a non-empty container is refused, then deleted once empty
    assert req(api, "DELETE", "photos").status_code == 409
    for name in ("a/b.txt", "copy1", "copy2"):
        assert req(api, "DELETE", f"photos/{name}").status_code == 204
    assert req(api, "DELETE", "photos/copy1").status_code == 404
    assert req(api, "DELETE", "photos").status_code == 204
    assert req(api, "HEAD", "photos").status_code == 404


def test_listings_formats_and_pages(cloud):
    api = cloud.member
    req(api, "PUT", "c")
    for name in ["a/1", "a/2", "b", "c/x/y", "d"]:
        req(api, "PUT", f"c/{name}", name.encode())
    assert req(api, "GET", "c").content == b"a/1\na/2\nb\nc/x/y\nd\n"
    page = json.loads(req(api, "GET", "c?format=json&limit=2&marker=a/1").content)
    assert [e["name"] for e in page] == ["a/2", "b"]
    assert set(page[0]) == {"name", "hash", "bytes", "content_type", "last_modified"}
    assert page[0]["hash"] == hashlib.md5(b"a/2").hexdigest() and page[0]["bytes"] == 3
    page = json.loads(req(api, "GET", "c?format=json&delimiter=/").content)
    assert [e.get("name") or e.get("subdir") for e in page] == ["a/", "b", "c/", "d"]
    assert json.loads(req(api, "GET", "c?format=json&prefix=c/&delimiter=/").content) == [{"subdir": "c/x/"}]
    assert req(api, "GET", "c?reverse=true&end_marker=a/2").content == b"d\nc/x/y\nb\n"
    xml = req(api, "GET", "c?format=xml&delimiter=/&prefix=a")
    assert xml["Content-Type"].startswith("application/xml") and b'<subdir name="a/">' in xml.content
    assert req(api, "GET", "c", Accept="application/json").status_code == 200
    assert json.loads(req(api, "GET", "?format=json").content)[0] == {
        "name": "c", "count": 5, "bytes": 13, "last_modified": json.loads(req(api, "GET", "?format=json").content)[0][
            "last_modified"]}
    assert req(api, "GET", "c?limit=10001").status_code == 412
    # a page costs the same queries whatever the container holds
    with CaptureQueriesContext(connection) as small:
        req(api, "GET", "c?format=json&limit=3&delimiter=/")
    for i in range(40):
        req(api, "PUT", f"c/z/{i:03d}", b"")
    with CaptureQueriesContext(connection) as large:
        req(api, "GET", "c?format=json&delimiter=/")
    assert len(large) == len(small), [q["sql"] for q in large]


def test_ranges_and_conditions(cloud):
    api = cloud.member
    req(api, "PUT", "c")
    data = bytes(range(256)) * 4
    etag = req(api, "PUT", "c/o", data)["Etag"]
    r = req(api, "GET", "c/o", Range="bytes=10-19")
    assert r.status_code == 206 and body(r) == data[10:20] and r["Content-Range"] == "bytes 10-19/1024"
    assert body(req(api, "GET", "c/o", Range="bytes=-5")) == data[-5:]
    assert body(req(api, "GET", "c/o", Range="bytes=1020-")) == data[1020:]
    r = req(api, "GET", "c/o", Range="bytes=2000-3000")
    assert r.status_code == 416 and r["Content-Range"] == "bytes */1024"
    r = req(api, "GET", "c/o", Range="bytes=0-1,5-6")
    assert r.status_code == 206 and r["Content-Type"].startswith("multipart/byteranges")
    assert len(body(r)) == int(r["Content-Length"])
    assert req(api, "GET", "c/o", **{"If-None-Match": etag}).status_code == 304
    assert req(api, "GET", "c/o", **{"If-Match": "nope"}).status_code == 412
    assert req(api, "GET", "c/o", **{"If-Match": f'"{etag}"'}).status_code == 200
    future = formatdate(time.time() + 3600, usegmt=True)
    past = formatdate(time.time() - 3600, usegmt=True)
    assert req(api, "GET", "c/o", **{"If-Modified-Since": future}).status_code == 304
    assert req(api, "GET", "c/o", **{"If-Modified-Since": past}).status_code == 200
    assert req(api, "GET", "c/o", **{"If-Unmodified-Since": past}).status_code == 412


def test_expiry(cloud):
    api = cloud.member
    req(api, "PUT", "c")
    r = req(api, "PUT", "c/o", b"x", **{"X-Delete-After": "100"})
    assert r.status_code == 201
    assert int(req(api, "HEAD", "c/o")["X-Delete-At"]) >= int(time.time()) + 99
    assert req(api, "PUT", "c/p", b"x", **{"X-Delete-At": str(int(time.time()) - 5)}).status_code == 400
    assert req(api, "PUT", "c/p", b"x", **{"X-Delete-After": "soon"}).status_code == 400
    Object.objects.filter(name="o").update(delete_at=int(time.time()) - 1)
    assert req(api, "GET", "c/o").status_code == 404
    assert req(api, "GET", "c").status_code == 204


def test_other_accounts_and_roles(cloud):
    req(cloud.member, "PUT", "mine")
    req(cloud.member, "PUT", "mine/o", b"secret")
    pid = cloud.demo_project.id
    path = f"/object-store/v1/AUTH_{pid}"
    for method, sub in (("HEAD", ""), ("GET", ""), ("POST", ""), ("HEAD", "/mine"), ("GET", "/mine"),
                        ("PUT", "/mine/x"), ("GET", "/mine/o"), ("DELETE", "/mine/o"), ("POST", "/mine"),
                        ("DELETE", "/mine"), ("PUT", "/mine"), ("COPY", "/mine/o"), ("HEAD", "/nothing")):
        r = req(cloud.other, method, path + sub, Destination="mine/z")
        assert r.status_code == 404, (method, sub, r.status_code)
        r = req(cloud.anonymous, method, path + sub, Destination="mine/z")
        assert r.status_code == 401, (method, sub, r.status_code)
    assert req(cloud.reader, "GET", "mine/o").status_code == 200
    for method, sub in (("PUT", "mine/x"), ("DELETE", "mine/o"), ("POST", "mine"), ("DELETE", "mine"),
                        ("POST", "")):
        assert req(cloud.reader, method, sub).status_code == 403, (method, sub)
    assert req(cloud.admin, "GET", path + "/mine/o").status_code == 200
    assert Object.objects.get(name="o").size == 6 and Container.objects.count() == 1
    assert req(cloud.member, "GET", "/object-store/v1/AUTH_/x").status_code == 404
    assert req(cloud.member, "GET", "mine/o", token="bogus").status_code == 401


def test_acls_public_read_and_project_grants(cloud):
    api = cloud.member
    pid = cloud.demo_project.id
    base = f"/object-store/v1/AUTH_{pid}/pub"
    req(api, "PUT", "pub", **{"X-Container-Read": ".r:*"})
    req(api, "PUT", "pub/index.html", b"<p>hi</p>", content_type="text/html")
    r = req(cloud.anonymous, "GET", base + "/index.html")
    assert r.status_code == 200 and body(r) == b"<p>hi</p>"
    assert req(cloud.anonymous, "GET", base).status_code == 401  # no .rlistings
    assert req(cloud.anonymous, "PUT", base + "/x", b"x").status_code == 401
    assert req(cloud.other, "PUT", base + "/x", b"x").status_code == 403
    req(api, "POST", "pub", **{"X-Container-Read": ".r:*,.rlistings",
                                "X-Container-Write": f"{cloud.other_project.id}:*"})
    assert req(cloud.anonymous, "GET", base).content == b"index.html\n"
    assert req(cloud.other, "PUT", base + "/x", b"x").status_code == 201
    assert not req(cloud.other, "HEAD", base).has_header("X-Container-Write")
    assert req(api, "HEAD", "pub")["X-Container-Write"] == f"{cloud.other_project.id}:*"
    assert req(api, "POST", "pub", **{"X-Container-Write": ".r:*"}).status_code == 400


def test_temp_url(cloud):
    api = cloud.member
    pid = cloud.demo_project.id
    req(api, "POST", "", **{"X-Account-Meta-Temp-URL-Key": "sekrit"})
    req(api, "PUT", "c")
    req(api, "PUT", "c/file.bin", b"payload")
    expires = int(time.time()) + 60
    path = f"/object-store/v1/AUTH_{pid}/c/file.bin"
    for algo, hexlen in ((hashlib.sha1, 40), (hashlib.sha256, 64)):
        sig = hmac.new(b"sekrit", f"GET\n{expires}\n{path}".encode(), algo).hexdigest()
        assert len(sig) == hexlen
        r = req(cloud.anonymous, "GET", f"{path}?temp_url_sig={sig}&temp_url_expires={expires}")
        assert r.status_code == 200 and body(r) == b"payload" and "attachment" in r["Content-Disposition"]
    short = f"/v1/AUTH_{pid}/c/file.bin"
    sig = hmac.new(b"sekrit", f"GET\n{expires}\n{short}".encode(), hashlib.sha256).hexdigest()
    assert req(cloud.anonymous, "GET", f"{path}?temp_url_sig={sig}&temp_url_expires={expires}").status_code == 200
    assert req(cloud.anonymous, "PUT", f"{path}?temp_url_sig={sig}&temp_url_expires={expires}").status_code == 401
    old = int(time.time()) - 1
    sig = hmac.new(b"sekrit", f"GET\n{old}\n{path}".encode(), hashlib.sha256).hexdigest()
    assert req(cloud.anonymous, "GET", f"{path}?temp_url_sig={sig}&temp_url_expires={old}").status_code == 401
    put_sig = hmac.new(b"sekrit", f"PUT\n{expires}\n{path}".encode(), hashlib.sha256).hexdigest()
    assert req(cloud.anonymous, "PUT", f"{path}?temp_url_sig={put_sig}&temp_url_expires={expires}",
               b"new").status_code == 201
    assert body(req(api, "GET", "c/file.bin")) == b"new"


def test_large_objects_and_bulk_delete(cloud):
    api = cloud.member
    req(api, "PUT", "c")
    req(api, "PUT", "c_segments")
    parts = [b"a" * 10, b"b" * 7, b"c" * 3]
    for i, part in enumerate(parts):
        req(api, "PUT", f"c_segments/f/{i:08d}", part)
    req(api, "PUT", "c/dlo", b"", **{"X-Object-Manifest": "c_segments/f/"})
    r = req(api, "GET", "c/dlo")
    assert body(r) == b"".join(parts) and r["X-Object-Manifest"] == "c_segments/f/"
    manifest = [{"path": f"/c_segments/f/{i:08d}", "etag": hashlib.md5(p).hexdigest(), "size_bytes": len(p)}
                for i, p in enumerate(parts)]
    r = req(api, "PUT", "c/slo?multipart-manifest=put", json.dumps(manifest).encode())
    assert r.status_code == 201, r.content
    r = req(api, "GET", "c/slo")
    assert body(r) == b"".join(parts) and r["X-Static-Large-Object"] == "True"
    assert body(req(api, "GET", "c/slo", Range="bytes=8-12")) == b"aabbb"
    got = json.loads(body(req(api, "GET", "c/slo?multipart-manifest=get")))
    assert [s["name"] for s in got] == [m["path"] for m in manifest]
    bad = [{"path": "/c_segments/none"}]
    assert req(api, "PUT", "c/bad?multipart-manifest=put", json.dumps(bad).encode()).status_code == 400
    assert req(api, "DELETE", "c/slo?multipart-manifest=delete").status_code == 204
    assert req(api, "GET", "c_segments").status_code == 204
    req(api, "PUT", "c/x", b"1")
    r = req(api, "POST", "?bulk-delete", b"/c/x\n/c/dlo\n/c/missing\n/c\n", content_type="text/plain",
            Accept="application/json")
    result = json.loads(r.content)
    assert (result["Number Deleted"], result["Number Not Found"], result["Errors"]) == (3, 1, []), result
    assert not Container.objects.filter(name="c").exists()


def test_tempest_found_details(cloud):
    """What tempest's object storage tests ask beyond the basics."""
    import io
    import tarfile

    api = cloud.member
    pid = cloud.demo_project.id
    req(api, "PUT", "c")
    # an object keeps an empty metadata value (a container or an account drops it)
    req(api, "PUT", "c/o", b"data", **{"X-Object-Meta-Empty": "", "X-Object-Meta-Full": "1"})
    r = req(api, "HEAD", "c/o")
    assert r["X-Object-Meta-Empty"] == "" and r["X-Object-Meta-Full"] == "1"
    # a copy says where from, and when that was last modified
    r = req(api, "COPY", "c/o", Destination="c/o2")
    assert r["X-Copied-From"] == "c/o" and r["X-Copied-From-Last-Modified"] == req(api, "HEAD", "c/o")["Last-Modified"]
    # temp URLs: a bad signature is a 401 even with a good token; inline; a prefix signature
    req(api, "POST", "c", **{"X-Container-Meta-Temp-URL-Key": "k"})
    req(api, "PUT", "c/pre/fix.txt", b"prefixed")
    expires = int(time.time()) + 60
    path = f"/object-store/v1/AUTH_{pid}/c/o"
    assert req(api, "GET", f"{path}?temp_url_sig={'0' * 64}&temp_url_expires={expires}").status_code == 401
    sig = hmac.new(b"k", f"GET\n{expires}\n{path}".encode(), hashlib.sha256).hexdigest()
    r = req(cloud.anonymous, "GET", f"{path}?temp_url_sig={sig}&temp_url_expires={expires}&inline")
    assert r.status_code == 200 and r["Content-Disposition"] == "inline"
    sig = hmac.new(b"k", f"GET\n{expires}\nprefix:/v1/AUTH_{pid}/c/pre".encode(), hashlib.sha256).hexdigest()
    query = f"temp_url_sig={sig}&temp_url_expires={expires}&temp_url_prefix=pre"
    assert body(req(cloud.anonymous, "GET", f"/object-store/v1/AUTH_{pid}/c/pre/fix.txt?{query}")) == b"prefixed"
    assert req(cloud.anonymous, "GET", f"{path}?{query}").status_code == 401  # not under the prefix
    # bulk upload (extract-archive) and bulk delete through DELETE
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for name, data in (("arch/a.txt", b"A"), ("arch/sub/b.txt", b"BB")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    r = req(api, "PUT", "?extract-archive=tar.gz", archive.getvalue(), Accept="application/json")
    assert r.status_code == 200 and json.loads(r.content)["Number Files Created"] == 2, r.content
    assert req(api, "GET", "arch").content == b"a.txt\nsub/b.txt\n"
    r = req(api, "DELETE", "?bulk-delete", b"/arch/a.txt\n/arch/sub/b.txt\n/arch\n", content_type="text/plain",
            Accept="application/json")
    assert json.loads(r.content)["Number Deleted"] == 3
    # the account's object count quota (Swift 2.34's header; the admin's to set)
    assert req(api, "POST", "", **{"X-Account-Quota-Count": "3"}).status_code == 403
    assert req(cloud.admin, "POST", f"/object-store/v1/AUTH_{pid}", **{"X-Account-Quota-Count": "4"}).status_code == 204
    assert req(api, "PUT", "c/three", b"").status_code == 201
    assert req(api, "PUT", "c/four", b"").status_code == 413
    assert req(api, "PUT", "c/three", b"again").status_code == 201  # an overwrite adds no object


def test_object_metadata_removal_and_copy_answer(cloud):
    api = cloud.member
    req(api, "PUT", "c")
    req(api, "PUT", "c/o", b"x", **{"X-Object-Meta-A": "1", "X-Remove-Object-Meta-B": "x"})
    r = req(api, "HEAD", "c/o")
    assert r["X-Object-Meta-A"] == "1" and not r.has_header("X-Object-Meta-B")
    req(api, "POST", "c/o", **{"X-Object-Meta-A": "2", "X-Remove-Object-Meta-A": "x", "X-Object-Meta-C": "3"})
    r = req(api, "HEAD", "c/o")
    assert not r.has_header("X-Object-Meta-A") and r["X-Object-Meta-C"] == "3"
    r = req(api, "COPY", "c/o", Destination="c/p", **{"X-Object-Meta-D": "4"})
    assert r["X-Object-Meta-C"] == "3" and r["X-Object-Meta-D"] == "4"
