"""Glance with the real `openstack` CLI against a running cloud (uvicorn): create with a real
qcow2 file, show/save/set/delete, sharing with another project which accepts, import. Each CLI call costs
about a second of start-up, so the setup (the other project) and the checks around those commands (lists,
shows after a change, members) go through openstacksdk in-process (test_images_sdk.py has the breadth)."""
from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def _json(result: subprocess.CompletedProcess):  # type: ignore[no-untyped-def]
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def qcow2(tmp_path_factory) -> Path:
    """A real qcow2 image (qemu-img), with some data written into it when qemu-io is there."""
    path = tmp_path_factory.mktemp("img") / "disk.qcow2"
    if shutil.which("qemu-img") is None:
        pytest.skip("qemu-img is missing: `make system-deps-test` installs qemu-utils")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "64M"], check=True)
    if shutil.which("qemu-io"):
        subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 3M", str(path)], check=True,
                       capture_output=True)
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(path)], check=True,
                                     capture_output=True, text=True).stdout)
    assert info["format"] == "qcow2"
    return path


@pytest.fixture(scope="module")
def other_project(live_cloud) -> tuple[str, str, str]:
    """A second project with a member user of the same name: (name, password, project id)."""
    name = _name("imgp")
    password = live_cloud.new_member(name)
    return name, password, live_cloud.sdk().identity.find_project(name, ignore_missing=False).id


def test_image_lifecycle_with_the_cli(live_cloud, qcow2, tmp_path):
    cli = live_cloud.openstack
    demo = live_cloud.sdk(user="demo")
    name = _name("img")
    data = qcow2.read_bytes()
    created = _json(cli("image", "create", "--file", str(qcow2), "--disk-format", "qcow2",
                        "--container-format", "bare", name, "-f", "json", user="demo"))
    assert created["status"] == "active" and created["disk_format"] == "qcow2"
    assert created["size"] == len(data) and created["checksum"] == hashlib.md5(data).hexdigest()
    assert created["virtual_size"] == 64 * 1024 * 1024  # read from the qcow2 header
    shown = demo.image.find_image(name, ignore_missing=False)
    assert shown.id == created["id"] and shown.hash_algo == "sha512"
    assert shown.hash_value == hashlib.sha512(data).hexdigest()
    assert name in [image.name for image in demo.image.images()]
    saved = tmp_path / "saved.qcow2"
    cli("image", "save", "--file", str(saved), name, user="demo")
    assert saved.read_bytes() == data
    cli("image", "set", "--name", name + "-x", "--property", "os_distro=cirros", "--tag", "gold",
        "--min-disk", "1", name, user="demo")
    shown = demo.image.find_image(name + "-x", ignore_missing=False)
    assert shown.min_disk == 1 and "gold" in shown.tags
    assert shown.os_distro == "cirros"
    cli("image", "set", "--protected", name + "-x", user="demo")
    refused = cli("image", "delete", name + "-x", user="demo", check=False)
    assert refused.returncode != 0
    demo.image.update_image(created["id"], is_protected=False)
    cli("image", "delete", name + "-x", user="demo")
    gone = cli("image", "show", created["id"], user="demo", check=False)
    assert gone.returncode != 0 and ("No Image found" in gone.stderr or "404" in gone.stderr), gone.stderr


def test_share_with_another_project_which_accepts(live_cloud, qcow2, other_project):
    cli = live_cloud.openstack
    project, password, pid = other_project
    demo, other = live_cloud.sdk(user="demo"), live_cloud.sdk(user=project, password=password)
    name = _name("shared")
    image = _json(cli("image", "create", "--file", str(qcow2), "--disk-format", "qcow2", "--shared",
                      name, "-f", "json", user="demo"))
    as_other = {"user": project, "project": project, "password": password}
    assert image["id"] not in [i.id for i in other.image.images()]
    # a member cannot look project names up in Keystone: it shares by project id
    member = _json(cli("image", "add", "project", name, pid, "-f", "json", user="demo"))
    assert member["status"] == "pending" and member["member_id"] == pid
    cli("image", "set", "--accept", image["id"], **as_other)
    assert image["id"] in [r["ID"] for r in _json(cli("image", "list", "-f", "json", **as_other))]
    assert [(m.member_id, m.status) for m in demo.image.members(image["id"])] == [(pid, "accepted")]
    assert other.image.get_image(image["id"]).name == name
    refused = cli("image", "delete", image["id"], check=False, **as_other)
    assert refused.returncode != 0
    cli("image", "remove", "project", name, pid, user="demo")
    assert image["id"] not in [i.id for i in other.image.images()]
    demo.image.delete_image(image["id"])


def test_interoperable_import_with_the_cli(live_cloud, qcow2):
    """`image create --import`: the CLI stages the file (PUT /stage) and imports it (glance-direct)."""
    cli = live_cloud.openstack
    name = _name("imported")
    data = qcow2.read_bytes()
    created = _json(cli("image", "create", "--import", "--file", str(qcow2), "--disk-format", "qcow2",
                        "--container-format", "bare", name, "-f", "json", user="demo"))
    demo = live_cloud.sdk(user="demo")
    shown = demo.image.get_image(created["id"])
    assert shown.status == "active" and shown.checksum == hashlib.md5(data).hexdigest()
    assert shown.virtual_size == 64 * 1024 * 1024
    demo.image.delete_image(created["id"])
