"""Attack catalogue, section 2 of issue 9: a tenant's disk image must never reach a host file.

qemu-img and QEMU follow what an image file says. Each crafted image below is built with qemu-img and
names a host file (a stand-in for /etc/shadow, made in tmp with a marker only it holds): a qcow2 with
that file as its raw backing file, a qcow2 with it as external data-file, a VMDK descriptor with a
FLAT extent on it, and the same things hidden behind a false disk_format or a second header (an ISO
volume descriptor, an MBR signature). Every one is

- refused at upload and at stage (Glance's image_format_enforcement: 400 in Glance's error format, the
  image back to ``queued``, nothing kept in the store);
- when smuggled into the store directly (as a compromised store would), refused by every node path
  (image cache for a spawn, kernel/ramdisk, overlay, volume from image, snapshot to image) with a fault
  on the server or the volume, and the host file's marker never appears in any file the cloud made.

Well-formed images of every kind (qcow2, raw, raw with a partition table, VMDK monolithicSparse and
streamOptimized) still pass, so none of these tests can pass by refusing everything.
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from apps.compute.models import Instance, InstanceFault
from apps.images import services as image_services
from apps.images import storage as image_storage
from apps.images.models import Image
from apps.volumes import services as volume_services
from apps.volumes import states as volume_states
from apps.volumes.models import Volume
from lib import imageformat
from tests.api_client import SeededCloud
from tests.control_reports import run_storage_task as run
from tests.image_api import image_api_in_process
from tests.images.conftest import glance_error
from tests.workers.compute.conftest import make_instance, make_qcow2, node, run_task  # noqa: F401 - the node fixture
from tests.workers.test_storage import sent
from workers import storage
from workers.drivers.hypervisor import disk
from workers.drivers.hypervisor.layout import InstanceLayout

pytestmark = [pytest.mark.django_db,
              pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img not installed (qemu-utils)")]

MARKER = b"root:$y$HOST-SECRET-NEVER-IN-A-GUEST$:19000:0:99999:7:::\n"


def qemu_img(*args: str) -> None:
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


@pytest.fixture
def host_file(tmp_path: Path) -> Path:
    """A host file a tenant must never read (an /etc/shadow of our own)."""
    path = tmp_path / "host" / "shadow"
    path.parent.mkdir()
    path.write_bytes(MARKER * 20000)  # about 1 MiB
    return path


def _with_bytes(data: bytes, at: int, insert: bytes) -> bytes:
    out = bytearray(data.ljust(max(len(data), at + len(insert)), b"\0"))
    out[at:at + len(insert)] = insert
    return bytes(out)


def build_crafted(tmp: Path, host: Path) -> dict[str, tuple[bytes, str]]:
    """name → (the file's bytes, the disk_format it claims)."""
    work = tmp / "crafted"
    work.mkdir(exist_ok=True)
    qemu_img("create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(host), str(work / "backing.qcow2"), "1M")
    backing = (work / "backing.qcow2").read_bytes()
    # the data-file is named in the header when the image is made; whatever sits at that path later is
    # what the guest reads: here, the host file
    target = tmp / "host" / "data-file-target"
    qemu_img("create", "-q", "-f", "qcow2", "-o", f"data_file={target},data_file_raw=on", str(work / "df.qcow2"), "1M")
    target.write_bytes(host.read_bytes())
    data_file = (work / "df.qcow2").read_bytes()
    flat_vmdk = (b'# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n'
                 b'createType="monolithicFlat"\n\n# Extent description\n'
                 + f'RW 2048 FLAT "{host}" 0\n'.encode() + b'\nddb.virtualHWVersion = "4"\nddb.adapterType = "ide"\n')
    # a sparse VMDK whose embedded descriptor is swapped for one naming a FLAT extent on the host file
    clean_qcow2 = make_qcow2(work / "clean.qcow2", "1M")
    return {
        "qcow2-backing-file": (backing, "qcow2"),
        "qcow2-backing-file-claimed-raw": (backing, "raw"),
        "qcow2-data-file": (data_file, "qcow2"),
        "qcow2-data-file-claimed-raw": (data_file, "raw"),
        "vmdk-monolithicFlat-host-extent": (flat_vmdk, "vmdk"),
        "vmdk-descriptor-claimed-raw": (flat_vmdk, "raw"),
        "raw-claimed-qcow2": (MARKER * 100, "qcow2"),
        "qcow2-claimed-raw": (clean_qcow2, "raw"),
        "qcow2-claimed-vmdk": (clean_qcow2, "vmdk"),
        "qcow2-backing-file-claimed-aki": (backing, "aki"),
        "iso-header-over-qcow2": (_with_bytes(backing, 0x8000, b"\x01CD001\x01" + b"\0" * 2041), "iso"),
        "mbr-signature-over-qcow2": (_with_bytes(backing, 510, b"\x55\xaa"), "raw"),
    }


CASES = ["qcow2-backing-file", "qcow2-backing-file-claimed-raw", "qcow2-data-file", "qcow2-data-file-claimed-raw",
         "vmdk-monolithicFlat-host-extent", "vmdk-descriptor-claimed-raw", "raw-claimed-qcow2", "qcow2-claimed-raw",
         "qcow2-claimed-vmdk", "qcow2-backing-file-claimed-aki", "iso-header-over-qcow2", "mbr-signature-over-qcow2"]
# the cases that name the host file (the others only lie about their format)
READS_HOST = [c for c in CASES if c not in ("raw-claimed-qcow2", "qcow2-claimed-raw", "qcow2-claimed-vmdk")]
# what a node can be asked to boot or convert (iso is not bootable as a root disk here)
NODE_CASES = [c for c in CASES if c != "iso-header-over-qcow2"]


def bz_image() -> bytes:
    """What an x86 bzImage kernel starts with: a legacy boot sector (0x55AA at 510, partition entries
    that are no partitions) and the setup header ``HdrS`` at 0x202."""
    data = bytearray(b"\xea\x05\x00\xc0\x07" + b"\x90" * 4091)
    data[446:462] = bytes([0x41, 0x42, 0x43, 0x44]) + b"\xff" * 12  # garbage where a table would be
    data[510:512] = b"\x55\xaa"
    data[0x202:0x206] = b"HdrS"
    return bytes(data) + b"compressed kernel payload" * 4096


def build_good(tmp: Path) -> dict[str, tuple[bytes, str]]:
    work = tmp / "good"
    work.mkdir(exist_ok=True)
    qemu_img("create", "-q", "-f", "vmdk", "-o", "subformat=monolithicSparse", str(work / "sparse.vmdk"), "1M")
    qemu_img("create", "-q", "-f", "vmdk", "-o", "subformat=streamOptimized", str(work / "stream.vmdk"), "1M")
    mbr = bytearray(1 << 20)
    mbr[446:462] = bytes([0x80, 0, 2, 0, 0x83, 0, 0, 0]) + (1).to_bytes(4, "little") + (2047).to_bytes(4, "little")
    mbr[510:512] = b"\x55\xaa"
    return {
        "qcow2": (make_qcow2(work / "clean.qcow2", "1M"), "qcow2"),
        "raw": (b"\x01\x02plain raw disk\n" * 4096, "raw"),
        "raw-with-mbr": (bytes(mbr), "raw"),
        "vmdk-monolithicSparse": ((work / "sparse.vmdk").read_bytes(), "vmdk"),
        "vmdk-streamOptimized": ((work / "stream.vmdk").read_bytes(), "vmdk"),
        "kernel-aki": (b"\x7fELF fake kernel" * 64, "aki"),
        "bzImage-kernel-aki": (bz_image(), "aki"),
    }


@pytest.fixture
def crafted(tmp_path: Path, host_file: Path) -> dict[str, tuple[bytes, str]]:
    return build_crafted(tmp_path, host_file)


@pytest.fixture
def cloud_api() -> str:
    return "compute"


@pytest.fixture(autouse=True)
def image_dir(settings: Any, tmp_path: Path) -> Iterator[Path]:
    settings.STRATUS_IMAGE_STORE = "file"
    settings.STRATUS_IMAGE_DIR = str(tmp_path / "images")
    image_storage.reset()
    yield tmp_path / "images"
    image_storage.reset()


def store_files() -> list[str]:
    root = Path(settings.STRATUS_IMAGE_DIR)
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def files_holding_marker(*roots: Path) -> list[str]:
    """Every file under ``roots`` (recursively) whose bytes hold the host file's marker."""
    found = []
    for root in roots:
        if not root.exists():
            continue
        for path in root.rglob("*"):
            if path.is_file() and MARKER in path.read_bytes():
                found.append(str(path))
    return found


def smuggle(cloud: SeededCloud, data: bytes, disk_format: str, *, name: str = "smuggled") -> Image:
    """An active image whose bytes were put in the store directly, past the API's checks (what a
    compromised store, or an image uploaded before enforcement, would hold)."""
    store = image_storage.get_store()
    writer = store.writer(f"smuggled-{uuid.uuid4().hex}")
    writer.write(data)
    location = writer.commit()
    return Image.objects.create(
        name=name, owner=cloud.demo_project.id, visibility=Image.PRIVATE, status=Image.ACTIVE,
        disk_format=disk_format, container_format="bare", size=len(data), location=location, store=store.name,
        checksum=hashlib.md5(data, usedforsecurity=False).hexdigest(), os_hash_algo="sha512",
        os_hash_value=hashlib.sha512(data).hexdigest())


# ---- the inspector itself ----------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES)
def test_the_inspector_refuses_every_crafted_image(crafted, tmp_path, case) -> None:
    data, claimed = crafted[case]
    path = tmp_path / f"{case}.img"
    path.write_bytes(data)
    with pytest.raises(imageformat.ImageFormatError):
        imageformat.inspect(path, claimed)


@pytest.mark.parametrize("case", ["qcow2-backing-file", "qcow2-data-file", "vmdk-monolithicFlat-host-extent"])
def test_qemu_img_info_with_explicit_format_is_a_second_check(crafted, tmp_path, case) -> None:
    """Should the inspector miss one, ``qemu-img info -f <fmt>`` refuses backing files, data-files and
    extents outside the file on its own."""
    data, claimed = crafted[case]
    path = tmp_path / f"{case}.img"
    path.write_bytes(data)
    with pytest.raises(imageformat.ImageFormatError, match=r"backing file|data file|VMDK subformat|extent"):
        imageformat.check_qemu_info(imageformat.qemu_info(path, claimed), path)


def test_inspect_runs_the_qemu_img_check_even_when_the_inspector_is_fooled(crafted, tmp_path, monkeypatch) -> None:
    """The second check is wired into ``inspect``: with an inspector that saw nothing wrong (a bug, or
    a trick it does not know yet), qemu-img's own reading still refuses the image."""
    data, _claimed = crafted["qcow2-data-file"]
    path = tmp_path / "df.qcow2"
    path.write_bytes(data)
    monkeypatch.setattr(imageformat, "detect", lambda p, c: imageformat.Inspected("qcow2", "qcow2", 1 << 20))
    with pytest.raises(imageformat.ImageFormatError, match="data file"):
        imageformat.inspect(path, "qcow2")


def test_the_inspector_accepts_well_formed_images(tmp_path) -> None:
    for name, (data, claimed) in build_good(tmp_path).items():
        path = tmp_path / f"{name}.img"
        path.write_bytes(data)
        found = imageformat.inspect(path, claimed)
        assert found.format in (imageformat.INSPECTED_AS[claimed], "gpt"), name
    # the kernel's boot sector is no partition table of a disk: as raw it fails the MBR checks
    path = tmp_path / "bzImage-as-raw"
    path.write_bytes(bz_image())
    with pytest.raises(imageformat.ImageFormatError, match="mbr"):
        imageformat.inspect(path, "raw")


# ---- refused at upload and at stage --------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES)
def test_upload_refuses_a_crafted_image(cloud, crafted, case) -> None:
    data, claimed = crafted[case]
    api = cloud.member.to("image")
    image = api.image(name=case, disk_format=claimed)
    body = glance_error(api.upload(image["id"], data), 400)
    assert "format" in body["message"] or "refused" in body["message"], body
    shown = api.get(f"images/{image['id']}").json()
    assert (shown["status"], shown["size"], shown["checksum"]) == ("queued", None, None)
    assert store_files() == []


@pytest.mark.parametrize("case", ["qcow2-backing-file", "qcow2-data-file", "vmdk-monolithicFlat-host-extent",
                                  "raw-claimed-qcow2"])
def test_stage_refuses_a_crafted_image(cloud, crafted, case) -> None:
    data, claimed = crafted[case]
    api = cloud.member.to("image")
    image = api.image(name=case, disk_format=claimed)
    glance_error(api.put(f"images/{image['id']}/stage", raw=data, content_type="application/octet-stream"), 400)
    assert api.get(f"images/{image['id']}").json()["status"] == "queued"
    assert store_files() == []
    # nothing was staged, so there is nothing to import
    imported = api.post(f"images/{image['id']}/import", {"method": {"name": "glance-direct"}})
    assert imported.status_code == 409


def test_upload_accepts_well_formed_images(cloud, tmp_path) -> None:
    api = cloud.member.to("image")
    for name, (data, claimed) in build_good(tmp_path).items():
        image = api.image(name=name, disk_format=claimed)
        answer = api.upload(image["id"], data)
        assert answer.status_code == 204, (name, answer.content[:300])
        assert api.get(f"images/{image['id']}").json()["status"] == "active", name


def test_the_disk_format_of_an_image_with_data_cannot_change(cloud, tmp_path) -> None:
    """Glance's rule: disk_format and container_format are set while the image is queued. Otherwise an
    image checked as raw could be relabelled qcow2 after the check."""
    api = cloud.member.to("image")
    image = api.image(name="raw", disk_format="raw")
    assert api.upload(image["id"], b"\0" * 4096).status_code == 204
    for key, value in (("disk_format", "qcow2"), ("container_format", "ovf")):
        glance_error(api.patch(f"images/{image['id']}", [{"op": "replace", "path": f"/{key}", "value": value}]), 403)
    assert api.get(f"images/{image['id']}").json()["disk_format"] == "raw"


def test_enforcement_can_be_switched_off(cloud, crafted, settings) -> None:
    settings.STRATUS_IMAGE_FORMAT_ENFORCEMENT = False
    data, claimed = crafted["raw-claimed-qcow2"]
    api = cloud.member.to("image")
    image = api.image(name="lax", disk_format=claimed)
    assert api.upload(image["id"], data).status_code == 204


# ---- refused by every node path when smuggled into the store ---------------------------------------------

@pytest.mark.parametrize("case", NODE_CASES)
def test_spawn_refuses_a_smuggled_image_with_a_fault(cloud, node, crafted, tmp_path, case) -> None:  # noqa: F811
    data, claimed = crafted[case]
    image = smuggle(cloud, data, claimed)
    inst = make_instance(cloud, node, image)
    assert run_task("spawn", inst.id) == "failed"
    inst.refresh_from_db()
    assert inst.vm_state == "error"
    fault = InstanceFault.objects.filter(instance=inst).first()
    assert fault is not None and "refused" in fault.message.lower(), fault and fault.message
    assert not (node.cache / image.id).exists()  # nothing kept in the node's cache
    assert not Path(InstanceLayout(str(node.instances), inst.id).disk).exists()
    assert files_holding_marker(node.instances, node.cache) == []


def test_a_smuggled_kernel_is_refused(cloud, node, crafted, tmp_path) -> None:  # noqa: F811
    data, _ = crafted["qcow2-backing-file"]
    kernel = smuggle(cloud, data, "aki", name="vmlinuz")
    root = smuggle(cloud, make_qcow2(tmp_path / "root.qcow2", "1M"), "qcow2", name="root")
    Image.objects.filter(pk=root.id).update(properties={"kernel_id": kernel.id})
    inst = make_instance(cloud, node, root)
    assert run_task("spawn", inst.id) == "failed"
    fault = InstanceFault.objects.filter(instance=inst).first()
    assert fault is not None and "refused" in fault.message.lower()
    assert not (node.cache / kernel.id).exists()


def test_rebuild_to_a_smuggled_image_is_refused_with_a_fault(cloud, node, crafted, tmp_path) -> None:  # noqa: F811
    good = smuggle(cloud, make_qcow2(tmp_path / "good.qcow2", "1M"), "qcow2", name="good")
    inst = make_instance(cloud, node, good)
    assert run_task("spawn", inst.id) == "spawned"
    data, claimed = crafted["qcow2-data-file"]
    bad = smuggle(cloud, data, claimed)
    Instance.objects.filter(pk=inst.id).update(task_state="rebuilding", image_id=bad.id)
    assert run_task("rebuild", inst.id, bad.id) == "failed"
    inst.refresh_from_db()
    assert inst.vm_state == "error"
    fault = InstanceFault.objects.filter(instance=inst).order_by("-created_at").first()
    assert fault is not None and "refused" in fault.message.lower()
    assert not (node.cache / bad.id).exists()
    assert files_holding_marker(node.instances, node.cache) == []


@pytest.mark.parametrize("case", READS_HOST)
def test_overlay_creation_refuses_an_unsafe_base(crafted, tmp_path, case) -> None:
    data, claimed = crafted[case]
    base = tmp_path / "base"
    base.write_bytes(data)
    out = tmp_path / "overlay.qcow2"
    with pytest.raises(disk.DiskError, match="refused"):
        disk.overlay_create(base, out, 1, base_format=imageformat.QEMU_NAME.get(claimed, claimed))
    assert not out.exists()


@pytest.fixture
def storage_node(settings: Any, tmp_path: Path, cloud: SeededCloud, monkeypatch: pytest.MonkeyPatch
                 ) -> tuple[str, Path]:
    settings.STRATUS_VOLUMES_DIR = str(tmp_path / "volumes")
    image_api_in_process(monkeypatch)  # the node's signed image URLs reach the image API in this process
    host = f"store-{uuid.uuid4().hex[:6]}"
    volume_services.backend_report(host=host, capacity_gb=100, free_gb=100)
    from apps.volumes.models import StorageBackend

    StorageBackend.objects.exclude(host=host).update(last_heartbeat=None)
    return host, tmp_path / "volumes" / host


@pytest.mark.parametrize("case", NODE_CASES)
def test_volume_from_a_smuggled_image_is_refused(cloud, storage_node, crafted, case) -> None:
    _host, root = storage_node
    data, claimed = crafted[case]
    image = smuggle(cloud, data, claimed)
    volume = volume_services.volume_create(actor=cloud.member_actor, size=1, image_id=image.id)
    assert run(storage.create_volume, **sent(volume.id, "create_volume")) == "error"
    row = Volume.objects.get(pk=volume.id)
    assert row.status == volume_states.ERROR and "refused" in row.status_reason.lower(), row.status_reason
    assert not (root / f"volume-{volume.id}.qcow2").exists()
    assert not (root / ".image-cache" / image.id).exists()
    assert files_holding_marker(root) == []


@pytest.mark.parametrize("case", READS_HOST)
def test_the_volume_driver_refuses_an_unsafe_image_itself(crafted, tmp_path, case) -> None:
    """The storage driver checks the file it is handed, whoever hands it (not only the agent's task)."""
    from workers.drivers.storage import FileVolumeDriver, StorageError

    data, claimed = crafted[case]
    image = tmp_path / "image"
    image.write_bytes(data)
    driver = FileVolumeDriver(tmp_path / "backend")
    with pytest.raises(StorageError, match="refused"):
        driver.create_from_image("v1", 1, image, claimed)
    assert not driver.volume_path("v1").exists()
    assert files_holding_marker(tmp_path / "backend") == []


def test_volume_from_a_good_image_still_works(cloud, storage_node, tmp_path) -> None:
    _host, _root = storage_node
    for name, (data, claimed) in build_good(tmp_path).items():
        if claimed == "aki":
            continue
        image = smuggle(cloud, data, claimed, name=name)
        volume = volume_services.volume_create(actor=cloud.member_actor, size=1, image_id=image.id)
        assert run(storage.create_volume, **sent(volume.id, "create_volume")) == "available", (
            name, Volume.objects.get(pk=volume.id).status_reason)


@pytest.mark.parametrize("case", ["qcow2-data-file", "vmdk-monolithicFlat-host-extent", "qcow2-backing-file"])
def test_snapshot_refuses_a_root_disk_over_an_unsafe_base(cloud, node, crafted, tmp_path, case) -> None:  # noqa: F811
    """An instance whose cached base became unsafe (a cache filled before the checks, or tampered
    with): createImage refuses to read through it, the server gets a fault, Glance gets nothing."""
    data, claimed = crafted[case]
    image = smuggle(cloud, make_qcow2(tmp_path / "clean.qcow2", "1M"), "qcow2")
    inst = make_instance(cloud, node, image)
    assert run_task("spawn", inst.id) == "spawned"
    (node.cache / image.id).write_bytes(data)  # the base under the running instance's overlay
    Image.objects.filter(pk=image.id).update(disk_format=claimed)
    snap = image_services.image_create(actor=cloud.member_actor, name="snap", disk_format="qcow2",
                                       container_format="bare",  # as createImage makes it (a request cannot)
                                       service_properties={"instance_uuid": inst.id})
    Instance.objects.filter(pk=inst.id).update(task_state="image_snapshot")
    assert run_task("snapshot", inst.id, snap.id) == "failed"
    # the failed snapshot's image is deleted (as Nova does) or at least holds no data
    assert not Image.objects.filter(pk=snap.id).exclude(status=Image.QUEUED, location="").exists()
    fault = InstanceFault.objects.filter(instance=inst).order_by("-created_at").first()
    assert fault is not None and "refused" in fault.message.lower(), fault and fault.message
    assert files_holding_marker(Path(settings.STRATUS_IMAGE_DIR), node.instances) == []


def test_snapshot_of_a_server_whose_image_was_deleted_still_works(cloud, node, tmp_path) -> None:  # noqa: F811
    image = smuggle(cloud, make_qcow2(tmp_path / "clean.qcow2", "1M"), "qcow2")
    inst = make_instance(cloud, node, image)
    assert run_task("spawn", inst.id) == "spawned"
    Image.objects.filter(pk=image.id).delete()  # the cached base stays on the node, checked as what it holds
    snap = image_services.image_create(actor=cloud.member_actor, name="snap", disk_format="qcow2",
                                       container_format="bare",  # as createImage makes it (a request cannot)
                                       service_properties={"instance_uuid": inst.id})
    Instance.objects.filter(pk=inst.id).update(task_state="image_snapshot")
    assert run_task("snapshot", inst.id, snap.id) == "done"
    assert Image.objects.get(pk=snap.id).status == Image.ACTIVE


# ---- every qemu-img call names its input format --------------------------------------------------------

def test_every_qemu_img_call_has_an_explicit_format(cloud, node, storage_node, tmp_path,  # noqa: F811
                                                    monkeypatch) -> None:
    calls: list[list[str]] = []
    real_run = subprocess.run

    def spy(args: Any, *a: Any, **kw: Any) -> Any:
        if isinstance(args, list | tuple) and args and str(args[0]).endswith("qemu-img"):
            calls.append([str(x) for x in args])
        return real_run(args, *a, **kw)

    monkeypatch.setattr(subprocess, "run", spy)
    image = smuggle(cloud, make_qcow2(tmp_path / "clean.qcow2", "1M"), "qcow2")
    calls.clear()
    inst = make_instance(cloud, node, image)
    assert run_task("spawn", inst.id) == "spawned"
    snap = image_services.image_create(actor=cloud.member_actor, name="snap", disk_format="qcow2",
                                       container_format="bare",  # as createImage makes it (a request cannot)
                                       service_properties={"instance_uuid": inst.id})
    Instance.objects.filter(pk=inst.id).update(task_state="image_snapshot")
    assert run_task("snapshot", inst.id, snap.id) == "done"
    host, _root = storage_node
    volume = volume_services.volume_create(actor=cloud.member_actor, size=1, image_id=image.id)
    assert run(storage.create_volume, **sent(volume.id, "create_volume")) == "available"
    storage.driver(host).create_snapshot(str(uuid.uuid4()), volume.id)
    storage.driver(host).extend(volume.id, 3)
    assert calls
    reading = {"info", "convert", "resize", "check", "compare", "map", "measure", "rebase", "commit", "snapshot",
               "amend", "bench", "dd"}
    missing = [c for c in calls if c[1] in reading and "-f" not in c[2:]]
    assert missing == []

