"""Upload a volume to an image (Cinder's os-volume_upload_image, issue 11 item 6): the service makes
the Glance image and sends the work to the volume's storage node; the node's task (run in-process
here, with the real qcow2 driver and qemu-img) copies the volume's data into the image in the disk
format asked for; the volume goes back to what it was, a failure deletes the image. The API's
action answers Cinder's body; the dashboard's form calls the same service; another project's volume
is an unknown one, a reader changes nothing."""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from apps.core.errors import BadRequest, Forbidden, NotFound
from apps.core.models import TaskRecord
from apps.images import storage as image_storage
from apps.images.models import Image
from apps.volumes import services, states
from apps.volumes.models import Volume
from tests.api_client import SeededCloud
from tests.control_reports import run_storage_task as run
from tests.volumes.helpers import cinder_error
from tests.volumes.test_dashboard import client_for, messages_of
from tests.workers.test_storage import node  # noqa: F401  (the storage node fixture)
from workers import storage

pytestmark = pytest.mark.django_db
D = "/dashboard/volumes"
PATTERN_AT, PATTERN_LEN = 1 << 20, 64 << 10


def made_volume(cloud: SeededCloud, host: str, root: Path, name: str = "data") -> Volume:
    """An available 1 GiB volume on the node, with 64 KiB of 0xab written at 1 MiB (qemu-io)."""
    volume = services.volume_create(actor=cloud.member_actor, size=1, name=name)
    assert run(storage.create_volume, volume_id=volume.id, size_gb=1, host=host) == "available"
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"write -P 0xab {PATTERN_AT} {PATTERN_LEN}",
                    str(root / f"volume-{volume.id}.qcow2")], check=True, capture_output=True)
    return Volume.objects.get(pk=volume.id)


def run_upload_task(volume_id: str) -> str:
    """What the storage node's worker runs: the task the service recorded, with its own arguments (the
    volume's copy written into the image store), then its report applied on the control side."""
    record = TaskRecord.objects.filter(name="workers.storage.upload_volume", resource_id=volume_id) \
        .order_by("-created_at").first()
    assert record is not None and record.queue.startswith("storage.")
    return run(storage.upload_volume, **record.kwargs)


def image_bytes(image: Image, offset: int, length: int) -> bytes:
    return b"".join(image_storage.get_store().reader(image.location, offset=offset, length=length))


def test_upload_copies_the_volume_into_a_new_image(cloud: SeededCloud, node: tuple[str, Path],  # noqa: F811
                                                    tmp_path: Path) -> None:
    host, root = node
    volume = made_volume(cloud, host, root)
    upload = services.volume_upload_to_image(actor=cloud.member_actor, volume_id=volume.id, image_name="vol-img",
                                             disk_format="qcow2", protected=True)
    assert upload.volume.status == states.UPLOADING
    image = Image.objects.get(pk=upload.image.id)
    assert (image.status, image.name, image.owner, image.disk_format, image.min_disk, image.protected) == (
        Image.QUEUED, "vol-img", cloud.member_actor.project_id, "qcow2", 1, False)
    # while it uploads, it can be neither deleted nor uploaded again
    with pytest.raises(BadRequest):
        services.volume_delete(actor=cloud.member_actor, volume_id=volume.id)
    with pytest.raises(BadRequest):
        services.volume_upload_to_image(actor=cloud.member_actor, volume_id=volume.id, image_name="again")
    assert run_upload_task(volume.id) == "uploaded"
    assert Volume.objects.get(pk=volume.id).status == states.AVAILABLE
    image.refresh_from_db()
    assert image.status == Image.ACTIVE and image.protected and image.size and image.checksum
    # the image's data is the volume's: qemu-img compares them block by block
    copy = tmp_path / "copy.qcow2"
    copy.write_bytes(image_bytes(image, 0, image.size))
    compared = subprocess.run(["qemu-img", "compare", "-f", "qcow2", "-F", "qcow2",
                               str(root / f"volume-{volume.id}.qcow2"), str(copy)], capture_output=True, text=True)
    assert compared.returncode == 0, compared.stdout + compared.stderr
    assert not list((root / ".tmp").iterdir())  # the node's converted copy is gone
    # raw (Cinder's default format): the whole disk, the pattern where it was written. The node's copy
    # is checked at the driver (streaming 1 GiB through the image services is the qcow2 path above)
    raw = services.volume_upload_to_image(actor=cloud.member_actor, volume_id=volume.id, image_name="vol-raw")
    assert raw.disk_format == "raw" and raw.visibility == "private"
    copy_raw = storage.driver(host).export(volume.id, "raw")
    try:
        assert copy_raw.stat().st_size == 1 << 30
        with open(copy_raw, "rb") as fh:
            assert fh.read(4096) == b"\0" * 4096
            fh.seek(PATTERN_AT)
            assert fh.read(PATTERN_LEN) == b"\xab" * PATTERN_LEN
    finally:
        storage.driver(host).discard(copy_raw)


def test_a_failed_upload_deletes_the_image_and_says_why(cloud: SeededCloud, node: tuple[str, Path]) -> None:  # noqa: F811
    host, root = node
    volume = made_volume(cloud, host, root)
    (root / f"volume-{volume.id}.qcow2").unlink()  # the node lost its file
    upload = services.volume_upload_to_image(actor=cloud.member_actor, volume_id=volume.id, image_name="lost",
                                             disk_format="vmdk", protected=True)
    assert run_upload_task(volume.id).startswith("error")
    row = Volume.objects.get(pk=volume.id)
    assert row.status == states.AVAILABLE and f"Upload to image {upload.image.id} failed" in row.status_reason
    assert "has no file on this backend" in row.status_reason
    assert not Image.objects.filter(pk=upload.image.id).exclude(status="deleted").exists()
    assert b"Upload to image" in client_for("alice").get(f"{D}/{volume.id}/").content  # the page says why


def test_what_the_service_refuses(cloud: SeededCloud, node: tuple[str, Path]) -> None:  # noqa: F811
    host, root = node
    volume = made_volume(cloud, host, root)
    member = cloud.member_actor
    for bad in ({"disk_format": "iso"}, {"container_format": "ovf"}, {"visibility": "everyone"},
                {"image_name": " "}):
        with pytest.raises(BadRequest):
            services.volume_upload_to_image(actor=member, volume_id=volume.id, **{"image_name": "x", **bad})
    with pytest.raises(Forbidden):  # only admins publicize an image
        services.volume_upload_to_image(actor=member, volume_id=volume.id, image_name="x", visibility="public")
    with pytest.raises(Forbidden):  # a reader
        services.volume_upload_to_image(actor=cloud.reader_actor, volume_id=volume.id, image_name="x")
    with pytest.raises(NotFound):  # another project's volume is an unknown one
        services.volume_upload_to_image(actor=cloud.other_actor, volume_id=volume.id, image_name="x")
    Volume.objects.filter(pk=volume.id).update(status=states.IN_USE)
    with pytest.raises(BadRequest, match="in-use with force"):
        services.volume_upload_to_image(actor=member, volume_id=volume.id, image_name="x")
    assert Volume.objects.get(pk=volume.id).status == states.IN_USE
    assert not Image.objects.filter(name="x").exists()  # nothing refused left an image
    # forced: uploading, then back to in-use only while still attached (here it is not: available)
    services.volume_upload_to_image(actor=member, volume_id=volume.id, image_name="forced", force=True,
                                    disk_format="qcow2")
    assert run_upload_task(volume.id) == "uploaded"
    assert Volume.objects.get(pk=volume.id).status == states.AVAILABLE
    assert Image.objects.get(name="forced").status == Image.ACTIVE


def _action(client: Any, volume_id: str, body: Any, **kw: Any) -> Any:
    return client.post(f"volumes/{volume_id}/action", {"os-volume_upload_image": body}, **kw)


def test_the_api_action(cloud: SeededCloud, node: tuple[str, Path]) -> None:  # noqa: F811
    host, root = node
    volume = made_volume(cloud, host, root, name="api-vol")
    response = _action(cloud.member, volume.id, {"image_name": "api-img", "force": False, "disk_format": "qcow2",
                                                 "container_format": "bare", "visibility": "shared",
                                                 "protected": False},
                       headers={"OpenStack-API-Version": "volume 3.1"})
    assert response.status_code == 202, response.content[:500]
    body = response.json()["os-volume_upload_image"]
    assert set(body) == {"id", "updated_at", "status", "display_description", "size", "volume_type", "image_id",
                         "container_format", "disk_format", "image_name", "protected", "visibility"}
    assert (body["id"], body["status"], body["size"], body["image_name"], body["disk_format"],
            body["container_format"], body["visibility"], body["protected"]) == (
        volume.id, "uploading", 1, "api-img", "qcow2", "bare", "shared", False)
    assert body["volume_type"]["name"] == "__DEFAULT__"  # an object: the openstack client reads its name
    assert cloud.member.get(f"volumes/{volume.id}").json()["volume"]["status"] == "uploading"
    image = cloud.member.to("image").get(f"/image/v2/images/{body['image_id']}")
    assert image.status_code == 200 and image.json()["status"] == "queued"
    assert run_upload_task(volume.id) == "uploaded"
    assert cloud.member.to("image").get(f"/image/v2/images/{body['image_id']}").json()["status"] == "active"
    assert cloud.member.get(f"volumes/{volume.id}").json()["volume"]["status"] == "available"
    # Cinder's defaults: raw, bare, private
    defaults = _action(cloud.member, volume.id, {"image_name": "plain"}).json()["os-volume_upload_image"]
    assert (defaults["disk_format"], defaults["container_format"], defaults["visibility"]) == ("raw", "bare",
                                                                                                "private")
    Volume.objects.filter(pk=volume.id).update(status=states.AVAILABLE)
    # malformed bodies are 400s in Cinder's shape and change nothing
    images_before = Image.objects.count()
    for bad in ({}, {"image_name": ""}, {"image_name": 5}, {"image_name": "x", "disk_format": "iso"},
                {"image_name": "x", "force": "perhaps"}, {"image_name": "x", "color": "red"}, []):
        cinder_error(_action(cloud.member, volume.id, bad), 400, "badRequest")
    cinder_error(_action(cloud.member, volume.id, {"image_name": "x", "visibility": "public"}), 403, "forbidden")
    # another project's volume: 404, exactly as an unknown id; a reader: 403
    cinder_error(_action(cloud.other, volume.id, {"image_name": "x"}), 404, "itemNotFound")
    cinder_error(_action(cloud.other, "no-such-volume", {"image_name": "x"}), 404, "itemNotFound")
    cinder_error(_action(cloud.reader, volume.id, {"image_name": "x"}), 403, "forbidden")
    assert Image.objects.count() == images_before
    assert Volume.objects.get(pk=volume.id).status == states.AVAILABLE


def test_the_dashboard_form(cloud: SeededCloud, node: tuple[str, Path]) -> None:  # noqa: F811
    host, root = node
    volume = made_volume(cloud, host, root, name="dash-vol")
    alice = client_for("alice")
    assert f'href="{D}/{volume.id}/upload"' in alice.get(f"{D}/{volume.id}/").content.decode()
    form = alice.get(f"{D}/{volume.id}/upload")
    page = form.content.decode()
    assert form.status_code == 200 and 'value="dash-vol"' in page and 'value="qcow2"' in page
    assert 'value="public"' not in page and 'name="force"' not in page  # a member; not attached
    assert b'value="public"' in client_for("admin", "admin-pw").get(f"{D}/{volume.id}/upload").content
    assert alice.post(f"{D}/{volume.id}/upload", {"image_name": "", "disk_format": "qcow2",
                                                  "visibility": "private"}).status_code == 400
    done = alice.post(f"{D}/{volume.id}/upload", {"image_name": "dash-img", "disk_format": "qcow2",
                                                  "visibility": "private"}, follow=True)
    assert done.redirect_chain[-1][0] == f"{D}/{volume.id}/"
    assert "Uploading volume dash-vol to image dash-img." in messages_of(done)
    assert Volume.objects.get(pk=volume.id).status == states.UPLOADING
    # the service's refusal (uploading already) on the form, a 400
    again = alice.post(f"{D}/{volume.id}/upload", {"image_name": "x", "disk_format": "qcow2",
                                                   "visibility": "private"})
    assert again.status_code == 400 and b"current status is: uploading" in again.content
    assert run_upload_task(volume.id) == "uploaded"
    assert Image.objects.get(name="dash-img").status == Image.ACTIVE
    # a reader: 403; another project: 404; nothing is made
    assert client_for("rita").post(f"{D}/{volume.id}/upload", {"image_name": "r", "disk_format": "raw",
                                                               "visibility": "private"}).status_code == 403
    olga = client_for("olga")
    assert olga.get(f"{D}/{volume.id}/upload").status_code == 404
    assert olga.post(f"{D}/{volume.id}/upload", {"image_name": "o", "disk_format": "raw",
                                                 "visibility": "private"}).status_code == 404
    assert not Image.objects.filter(name__in=("r", "o")).exists()
