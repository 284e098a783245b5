"""The Glance v2 API in-process: create, show, list, update (both patch dialects), delete, tags,
deactivate/reactivate, discovery and schemas, errors in Glance's format."""
from __future__ import annotations

import pytest

from apps.images.models import Image
from tests.api_client import ApiClient
from tests.images.conftest import glance_error

V20 = "application/openstack-images-v2.0-json-patch"


def test_versions_discovery(people):
    for path in ("/image", "/image/"):
        response = people["member"].api.client.get(path)
        assert response.status_code == 300
        versions = response.json()["versions"]
        current = [v for v in versions if v["status"] == "CURRENT"]
        assert [v["id"] for v in current] == ["v2.16"]
        assert current[0]["links"][0]["href"].endswith("/image/v2/")


def test_create_show_and_defaults(people):
    api = people["member"].api
    body = api.image(name="cirros", **{"owner_specified.openstack.sha256": "abc", "ramdisk_id": "r1"})
    assert body["status"] == "queued" and body["visibility"] == "shared" and body["protected"] is False
    assert body["owner"] == people["member"].project.id
    assert body["owner_specified.openstack.sha256"] == "abc" and body["ramdisk_id"] == "r1"
    assert body["checksum"] is None and body["size"] is None and body["tags"] == []
    assert body["self"] == f"/v2/images/{body['id']}" and body["file"] == f"/v2/images/{body['id']}/file"
    assert body["schema"] == "/v2/schemas/image"
    shown = api.get(f"images/{body['id']}").json()
    assert shown == body


def test_create_refuses_bad_input_and_read_only(people):
    api = people["member"].api
    glance_error(api.post("images", {"disk_format": "floppy"}), 400)
    glance_error(api.post("images", {"visibility": "everyone"}), 400)
    glance_error(api.post("images", {"status": "active"}), 403)
    glance_error(api.post("images", {"size": 3}), 403)
    glance_error(api.post("images", {"min_ram": -1}), 400)
    glance_error(api.post("images", {"x": 1}), 400)  # extra properties are strings
    glance_error(api.post("images", ["not", "an", "object"]), 400)
    assert Image.objects.count() == 0


def test_client_given_id_and_duplicate(people):
    api = people["member"].api
    body = api.image(id="00000000-1111-2222-3333-444455556666", name="fixed")
    assert body["id"] == "00000000-1111-2222-3333-444455556666"
    glance_error(api.post("images", {"id": body["id"]}), 409)


def test_only_admin_creates_public(people):
    glance_error(people["member"].api.post("images", {"visibility": "public"}), 403)
    assert people["admin"].api.image(visibility="public")["visibility"] == "public"
    image = people["member"].api.image()
    glance_error(people["member"].api.patch(f"images/{image['id']}", [
        {"op": "replace", "path": "/visibility", "value": "public"}]), 403)


def test_patch_v21_core_and_extra(people):
    api = people["member"].api
    image = api.image(name="one")
    response = api.patch(f"images/{image['id']}", [
        {"op": "replace", "path": "/name", "value": "two"},
        {"op": "add", "path": "/os_distro", "value": "cirros"},
        {"op": "add", "path": "/owner_specified.openstack.md5", "value": "m"},
        {"op": "replace", "path": "/min_disk", "value": 2},
        {"op": "add", "path": "/tags", "value": ["a", "b", "a"]},
        {"op": "replace", "path": "/protected", "value": True},
    ])
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["name"] == "two" and body["os_distro"] == "cirros" and body["min_disk"] == 2
    assert body["owner_specified.openstack.md5"] == "m" and body["tags"] == ["a", "b"] and body["protected"]
    body = api.patch(f"images/{image['id']}", [{"op": "remove", "path": "/os_distro"}]).json()
    assert "os_distro" not in body
    # remove of a missing property, replace of a missing one: 409 and nothing changed
    glance_error(api.patch(f"images/{image['id']}", [
        {"op": "replace", "path": "/name", "value": "three"}, {"op": "remove", "path": "/nope"}]), 409)
    assert api.get(f"images/{image['id']}").json()["name"] == "two"
    glance_error(api.patch(f"images/{image['id']}", [{"op": "replace", "path": "/nope", "value": "x"}]), 409)
    glance_error(api.patch(f"images/{image['id']}", [{"op": "replace", "path": "/status", "value": "active"}]), 403)
    glance_error(api.patch(f"images/{image['id']}", [{"op": "remove", "path": "/name"}]), 403)
    glance_error(api.patch(f"images/{image['id']}", [{"op": "move", "path": "/name", "from": "/x"}]), 400)


def test_patch_v20_dialect_and_media_type(people):
    api = people["member"].api
    image = api.image(name="old")
    response = api.patch(f"images/{image['id']}", [{"replace": "/name", "value": "new"},
                                                   {"add": "/hw_disk_bus", "value": "virtio"}], content_type=V20)
    assert response.status_code == 200 and response.json()["name"] == "new"
    assert response.json()["hw_disk_bus"] == "virtio"
    assert api.patch(f"images/{image['id']}", [{"remove": "/hw_disk_bus"}], content_type=V20).status_code == 200
    glance_error(api.patch(f"images/{image['id']}", [{"op": "replace", "path": "/name", "value": "x"}],
                           content_type="application/json"), 415)


def test_delete_and_protected(people):
    api = people["member"].api
    image = api.image(protected=True)
    glance_error(api.delete(f"images/{image['id']}"), 403)
    api.patch(f"images/{image['id']}", [{"op": "replace", "path": "/protected", "value": False}])
    assert api.delete(f"images/{image['id']}").status_code == 204
    glance_error(api.get(f"images/{image['id']}"), 404)
    glance_error(api.delete(f"images/{image['id']}"), 404)


def test_tags(people):
    api = people["member"].api
    image = api.image()
    assert api.put(f"images/{image['id']}/tags/blue").status_code == 204
    assert api.put(f"images/{image['id']}/tags/blue").status_code == 204
    assert api.put(f"images/{image['id']}/tags/green").status_code == 204
    assert api.get(f"images/{image['id']}").json()["tags"] == ["blue", "green"]
    assert api.delete(f"images/{image['id']}/tags/blue").status_code == 204
    glance_error(api.delete(f"images/{image['id']}/tags/blue"), 404)
    assert api.get(f"images/{image['id']}").json()["tags"] == ["green"]


def test_deactivate_reactivate(people):
    api = people["member"].api
    image = api.image()
    glance_error(api.post(f"images/{image['id']}/actions/deactivate"), 403)  # queued
    assert api.upload(image["id"], b"x" * 1000).status_code == 204
    assert api.post(f"images/{image['id']}/actions/deactivate").status_code == 204
    assert api.get(f"images/{image['id']}").json()["status"] == "deactivated"
    glance_error(api.get(f"images/{image['id']}/file"), 403)
    assert people["admin"].api.get(f"images/{image['id']}/file").status_code == 200
    assert api.post(f"images/{image['id']}/actions/reactivate").status_code == 204
    assert api.get(f"images/{image['id']}").json()["status"] == "active"
    assert b"".join(api.get(f"images/{image['id']}/file").streaming_content) == b"x" * 1000


def test_schemas_are_json_schemas(people):
    api = people["reader"].api
    image = api.get("schemas/image").json()
    assert image["name"] == "image" and image["additionalProperties"] == {"type": "string"}
    for key in ("id", "name", "status", "visibility", "protected", "checksum", "os_hash_value", "tags", "size"):
        assert key in image["properties"]
    assert api.get("schemas/images").json()["properties"]["images"]["items"]["name"] == "image"
    assert set(api.get("schemas/member").json()["properties"]) >= {"member_id", "image_id", "status"}
    assert api.get("schemas/members").json()["name"] == "members"


def test_info(people):
    api = people["member"].api
    assert api.get("info/import").json()["import-methods"] == {
        "description": "Import methods available.", "type": "array", "value": ["glance-direct", "web-download"]}
    glance_error(api.get("info/stores"), 404)  # one store per site, as a Glance without multiple backends
    assert api.get("images").headers["x-openstack-request-id"].startswith("req-")


def test_unauthenticated_is_401(people):
    response = ApiClient(api="image").get("images")
    assert response.status_code == 401


@pytest.mark.parametrize("path", ["images/nope", "images/00000000-0000-0000-0000-000000000000"])
def test_missing_is_404_in_glance_format(people, path):
    glance_error(people["member"].api.get(path), 404)


def test_empty_id_and_unknown_paths_are_glance_404(people):
    api = people["member"].api
    glance_error(api.get("images/"), 404)
    glance_error(api.delete("images/"), 404)
    glance_error(api.get("nothing/here"), 404)


def test_admin_gives_an_image_to_any_owner_and_quota_follows(people, admin_actor):
    from apps.identity.models import QuotaUsage

    admin = people["admin"].api
    stranger = "0" * 32  # not a project of this cloud: no quota to count against
    image = admin.image(owner=stranger)
    assert admin.get(f"images/{image['id']}").json()["owner"] == stranger
    beta = people["other"].project.id
    admin.patch(f"images/{image['id']}", [{"op": "replace", "path": "/owner", "value": beta}])
    assert QuotaUsage.objects.get(project_id=beta, resource="images").in_use == 1
    assert people["other"].api.get(f"images/{image['id']}").json()["owner"] == beta
    admin.patch(f"images/{image['id']}", [{"op": "replace", "path": "/owner", "value": stranger}])
    assert QuotaUsage.objects.get(project_id=beta, resource="images").in_use == 0


def test_os_glance_properties_are_reserved(people):
    api = people["member"].api
    glance_error(api.post("images", {"os_glance_foo": "bar"}), 403)
    image = api.image()
    glance_error(api.patch(f"images/{image['id']}", [{"op": "add", "path": "/os_glance_foo", "value": "b"}]), 403)
