"""Glance through openstacksdk against a running cloud: upload (the cloud layer's create_image,
which streams the file and checks its hashes), download whole and streamed, update, tags,
deactivate/reactivate, members accepted by the other project, and delete."""
from __future__ import annotations

import hashlib
import os
import secrets

import pytest

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def other(live_cloud):
    """A second project with a member user, made through the SDK as admin."""
    admin = live_cloud.sdk()
    name = f"sdkimg-{secrets.token_hex(3)}"
    project = admin.identity.create_project(name=name, domain_id="default")
    user = admin.identity.create_user(name=name, password="pw-sdk", default_project_id=project.id,
                                      domain_id="default")
    role = admin.identity.find_role("member")
    admin.identity.assign_project_role_to_user(project, user, role)
    return project, live_cloud.sdk(user=name, project=name, password="pw-sdk")


def test_sdk_image_flow(live_cloud, tmp_path, other):
    conn = live_cloud.sdk(user="demo", project="demo")
    path = tmp_path / "disk.raw"
    data = os.urandom(3 * 1024 * 1024 + 17)
    path.write_bytes(data)
    name = f"sdk-{secrets.token_hex(3)}"
    image = conn.create_image(name, filename=str(path), disk_format="raw", container_format="bare", wait=True)
    assert image.status == "active" and image.size == len(data)
    assert image.checksum == hashlib.md5(data).hexdigest()
    assert image.hash_algo == "sha512" and image.hash_value == hashlib.sha512(data).hexdigest()
    # the cloud layer records the file's hashes as extra properties
    assert image.properties["owner_specified.openstack.sha256"] in ("", hashlib.sha256(data).hexdigest())

    assert conn.image.download_image(image).content == data
    out = tmp_path / "out.raw"
    with open(out, "wb") as fh:
        conn.image.download_image(image, output=fh, stream=True, chunk_size=65536)
    assert out.read_bytes() == data

    conn.image.update_image(image, name=name + "-b", os_distro="debian", custom_key="custom value")
    fetched = conn.image.get_image(image)
    assert fetched.name == name + "-b" and fetched.os_distro == "debian"
    assert fetched.properties["custom_key"] == "custom value"
    conn.image.add_tag(image, "blue")
    assert conn.image.get_image(image).tags == ["blue"]
    conn.image.remove_tag(image, "blue")
    assert [i.id for i in conn.image.images(name=name + "-b")] == [image.id]
    assert [i.id for i in conn.image.images(tag="blue", name=name + "-b")] == []

    conn.image.deactivate_image(image)
    assert conn.image.get_image(image).status == "deactivated"
    conn.image.reactivate_image(image)
    assert conn.image.get_image(image).status == "active"

    project, other_conn = other
    assert other_conn.image.find_image(image.id) is None
    member = conn.image.add_member(image, member_id=project.id)
    assert member.status == "pending"
    assert image.id not in [i.id for i in other_conn.image.images()]
    other_conn.image.update_member(project.id, image, status="accepted")
    assert image.id in [i.id for i in other_conn.image.images()]
    assert other_conn.image.download_image(image.id).content == data
    assert [m.member_id for m in conn.image.members(image)] == [project.id]

    conn.image.delete_image(image)
    assert conn.image.find_image(image.id) is None


def test_sdk_pagination(live_cloud):
    conn = live_cloud.sdk()
    prefix = f"page-{secrets.token_hex(3)}"
    made = [conn.image.create_image(name=f"{prefix}-{i}", disk_format="raw", container_format="bare")
            for i in range(5)]
    try:
        names = [i.name for i in conn.image.images(limit=2, sort_key="name", sort_dir="asc")
                 if i.name.startswith(prefix)]
        assert names == sorted(m.name for m in made)
    finally:
        for image in made:
            conn.image.delete_image(image)
