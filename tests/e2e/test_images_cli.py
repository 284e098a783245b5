"""Glance with the real `openstack` CLI against a running cloud (uvicorn): create with a real
qcow2 file, list/show/save/set/delete, sharing with another project which accepts."""
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
    """A second project with a member user (made with the CLI as admin)."""
    project, user = _name("imgp"), _name("imgu")
    pid = _json(live_cloud.openstack("project", "create", project, "-f", "json"))["id"]
    live_cloud.openstack("user", "create", "--project", project, "--password", "pw-other", user)
    live_cloud.openstack("role", "add", "--project", project, "--user", user, "member")
    return project, user, pid


def test_image_lifecycle_with_the_cli(live_cloud, qcow2, tmp_path):
    cli = live_cloud.openstack
    name = _name("img")
    data = qcow2.read_bytes()
    created = _json(cli("image", "create", "--file", str(qcow2), "--disk-format", "qcow2",
                        "--container-format", "bare", name, "-f", "json", user="demo"))
    assert created["status"] == "active" and created["disk_format"] == "qcow2"
    assert created["size"] == len(data) and created["checksum"] == hashlib.md5(data).hexdigest()
    assert created["virtual_size"] == 64 * 1024 * 1024  # read from the qcow2 header
    shown = _json(cli("image", "show", name, "-f", "json", user="demo"))
    hashes = {**shown, **shown.get("properties", {})}  # the CLI files the hash under properties
    assert shown["id"] == created["id"] and hashes["os_hash_algo"] == "sha512"
    assert hashes["os_hash_value"] == hashlib.sha512(data).hexdigest()
    listed = _json(cli("image", "list", "-f", "json", user="demo"))
    assert name in [row["Name"] for row in listed]
    saved = tmp_path / "saved.qcow2"
    cli("image", "save", "--file", str(saved), name, user="demo")
    assert saved.read_bytes() == data
    cli("image", "set", "--name", name + "-x", "--property", "os_distro=cirros", "--tag", "gold",
        "--min-disk", "1", name, user="demo")
    shown = _json(cli("image", "show", name + "-x", "-f", "json", user="demo"))
    assert shown["min_disk"] == 1 and "gold" in shown["tags"]
    assert shown["properties"]["os_distro"] == "cirros"
    cli("image", "set", "--protected", name + "-x", user="demo")
    refused = cli("image", "delete", name + "-x", user="demo", check=False)
    assert refused.returncode != 0
    cli("image", "set", "--unprotected", name + "-x", user="demo")
    cli("image", "delete", name + "-x", user="demo")
    gone = cli("image", "show", created["id"], user="demo", check=False)
    assert gone.returncode != 0 and ("No Image found" in gone.stderr or "404" in gone.stderr), gone.stderr


def test_share_with_another_project_which_accepts(live_cloud, qcow2, other_project):
    cli = live_cloud.openstack
    project, user, pid = other_project
    name = _name("shared")
    image = _json(cli("image", "create", "--file", str(qcow2), "--disk-format", "qcow2", "--shared",
                      name, "-f", "json", user="demo"))
    as_other = {"user": user, "project": project, "password": "pw-other"}
    assert image["id"] not in [r["ID"] for r in _json(cli("image", "list", "-f", "json", **as_other))]
    # a member cannot look project names up in Keystone: it shares by project id
    member = _json(cli("image", "add", "project", name, pid, "-f", "json", user="demo"))
    assert member["status"] == "pending" and member["member_id"] == pid
    cli("image", "set", "--accept", image["id"], **as_other)
    assert image["id"] in [r["ID"] for r in _json(cli("image", "list", "-f", "json", **as_other))]
    members = _json(cli("image", "member", "list", name, "-f", "json", user="demo"))
    assert [(m["Member ID"], m["Status"]) for m in members] == [(pid, "accepted")]
    shown = _json(cli("image", "show", image["id"], "-f", "json", **as_other))
    assert shown["name"] == name
    refused = cli("image", "delete", image["id"], check=False, **as_other)
    assert refused.returncode != 0
    cli("image", "remove", "project", name, pid, user="demo")
    assert image["id"] not in [r["ID"] for r in _json(cli("image", "list", "-f", "json", **as_other))]
    cli("image", "delete", name, user="demo")


def test_interoperable_import_with_the_cli(live_cloud, qcow2):
    """`image create --import`: the CLI stages the file (PUT /stage) and imports it (glance-direct)."""
    cli = live_cloud.openstack
    name = _name("imported")
    data = qcow2.read_bytes()
    created = _json(cli("image", "create", "--import", "--file", str(qcow2), "--disk-format", "qcow2",
                        "--container-format", "bare", name, "-f", "json", user="demo"))
    shown = _json(cli("image", "show", created["id"], "-f", "json", user="demo"))
    assert shown["status"] == "active" and shown["checksum"] == hashlib.md5(data).hexdigest()
    assert shown["virtual_size"] == 64 * 1024 * 1024
    cli("image", "delete", created["id"], user="demo")
