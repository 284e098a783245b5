"""Who may do what with an image: reader/member/admin of the owner, another project (404 for a
private image, 403 for changing a visible one), visibility rules and the members flow."""
from __future__ import annotations

from functools import partial

from tests.api_client import assert_refused
from tests.images.conftest import glance_error


def test_reader_reads_but_cannot_write(people):
    image = people["member"].api.image(name="mine")
    reader = people["reader"].api
    assert reader.get(f"images/{image['id']}").status_code == 200
    assert [i["id"] for i in reader.get("images").json()["images"]] == [image["id"]]
    assert_refused(reader, [("POST", "images", {"name": "x"}),
                            ("PATCH", f"images/{image['id']}", [{"op": "replace", "path": "/name", "value": "y"}]),
                            ("DELETE", f"images/{image['id']}", None), ("PUT", f"images/{image['id']}/tags/t", None)],
                   partial(glance_error, status=403))
    glance_error(reader.upload(image["id"], b"abc"), 403)


def test_private_image_of_another_project_is_404(people):
    for visibility in ("private", "shared"):
        image = people["member"].api.image(visibility=visibility)
        other = people["other"].api
        assert_refused(other, [("GET", f"images/{image['id']}", None), ("GET", f"images/{image['id']}/file", None),
                               ("DELETE", f"images/{image['id']}", None),
                               ("PATCH", f"images/{image['id']}", [{"op": "replace", "path": "/name", "value": "z"}])],
                       partial(glance_error, status=404))
        assert image["id"] not in [i["id"] for i in other.get("images").json()["images"]]


def test_public_and_community_visible_but_not_writable(people):
    public = people["admin"].api.image(visibility="public", name="pub")
    community = people["member"].api.image(visibility="community", name="comm")
    other = people["other"].api
    assert other.get(f"images/{public['id']}").status_code == 200
    assert other.get(f"images/{community['id']}").status_code == 200
    glance_error(other.patch(f"images/{public['id']}", [{"op": "replace", "path": "/name", "value": "z"}]), 403)
    glance_error(other.delete(f"images/{community['id']}"), 403)
    listed = [i["id"] for i in other.get("images").json()["images"]]
    assert public["id"] in listed and community["id"] not in listed  # community only when asked for
    assert [i["id"] for i in other.get("images?visibility=community").json()["images"]] == [community["id"]]


def test_admin_sees_and_changes_everything(people):
    image = people["member"].api.image(visibility="private")
    admin = people["admin"].api
    assert image["id"] in [i["id"] for i in admin.get("images").json()["images"]]
    assert admin.patch(f"images/{image['id']}", [{"op": "replace", "path": "/visibility", "value": "public"}]
                       ).json()["visibility"] == "public"
    assert admin.delete(f"images/{image['id']}").status_code == 204


def test_owner_only_admin_sets_another(people):
    glance_error(people["member"].api.post("images", {"owner": people["other"].project.id}), 403)
    image = people["admin"].api.image(owner=people["other"].project.id)
    assert people["other"].api.get(f"images/{image['id']}").status_code == 200


def test_members_flow(people):
    owner, other = people["member"].api, people["other"].api
    beta = people["other"].project.id
    image = owner.image(name="to-share", visibility="shared")
    path = f"images/{image['id']}/members"
    glance_error(other.post(path, {"member": beta}), 404)  # not visible to beta yet
    response = owner.post(path, {"member": beta})
    assert response.status_code == 200
    assert response.json()["status"] == "pending" and response.json()["member_id"] == beta
    glance_error(owner.post(path, {"member": beta}), 409)
    # pending: beta can see it by id but it is not in its default list
    assert other.get(f"images/{image['id']}").status_code == 200
    assert image["id"] not in [i["id"] for i in other.get("images").json()["images"]]
    assert image["id"] in [i["id"] for i in other.get("images?member_status=pending").json()["images"]]
    # only the member answers; the owner cannot accept for it
    glance_error(owner.put(f"{path}/{beta}", {"status": "accepted"}), 403)
    glance_error(other.put(f"{path}/{beta}", {"status": "maybe"}), 400)
    assert other.put(f"{path}/{beta}", {"status": "accepted"}).json()["status"] == "accepted"
    assert image["id"] in [i["id"] for i in other.get("images").json()["images"]]
    assert [m["member_id"] for m in other.get(path).json()["members"]] == [beta]
    assert other.get(f"{path}/{beta}").json()["status"] == "accepted"
    # a member cannot change the image nor its members
    glance_error(other.patch(f"images/{image['id']}", [{"op": "replace", "path": "/name", "value": "z"}]), 403)
    glance_error(other.delete(f"{path}/{beta}"), 403)
    assert other.put(f"{path}/{beta}", {"status": "rejected"}).status_code == 200
    assert image["id"] not in [i["id"] for i in other.get("images").json()["images"]]
    assert owner.delete(f"{path}/{beta}").status_code == 204
    glance_error(other.get(f"images/{image['id']}"), 404)


def test_members_only_for_shared_images(people):
    image = people["member"].api.image(visibility="private")
    glance_error(people["member"].api.post(f"images/{image['id']}/members",
                                           {"member": people["other"].project.id}), 403)


def test_members_lose_access_when_the_image_is_no_longer_shared(people):
    owner, other = people["member"].api, people["other"].api
    beta = people["other"].project.id
    image = owner.image(visibility="shared")
    owner.post(f"images/{image['id']}/members", {"member": beta})
    other.put(f"images/{image['id']}/members/{beta}", {"status": "accepted"})
    assert other.get(f"images/{image['id']}").status_code == 200
    owner.patch(f"images/{image['id']}", [{"op": "replace", "path": "/visibility", "value": "private"}])
    glance_error(other.get(f"images/{image['id']}"), 404)
    assert image["id"] not in [i["id"] for i in other.get("images").json()["images"]]
