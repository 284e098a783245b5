"""The file-backed volume driver alone (no Django): real qemu-img, real files; idempotent operations
and no orphan file on failure."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from workers.drivers.storage import FileVolumeDriver, StorageError
from workers.drivers.storage.file import GiB

VID = "11111111-2222-4333-8444-555555555555"
VID2 = "21111111-2222-4333-8444-555555555555"
SID = "31111111-2222-4333-8444-555555555555"


@pytest.fixture
def drv(tmp_path: Path) -> FileVolumeDriver:
    return FileVolumeDriver(tmp_path / "backend")


def files(drv: FileVolumeDriver) -> list[str]:
    return sorted(p.name for p in drv.root.iterdir() if p.name != ".tmp") + sorted(
        p.name for p in (drv.root / ".tmp").iterdir())


def write_pattern(path: str, offset: int, data: bytes) -> None:
    subprocess.run(["qemu-io", "-c", f"write -P 0x{data[0]:02x} {offset} {len(data)}", path], check=True,
                   capture_output=True)


def test_blank_create_is_idempotent(drv: FileVolumeDriver) -> None:
    path = drv.create_blank(VID, 1)
    info = drv.info(path)
    assert info["format"] == "qcow2" and info["virtual-size"] == GiB
    mtime = os.stat(path).st_mtime_ns
    assert drv.create_blank(VID, 1) == path and os.stat(path).st_mtime_ns == mtime  # found, not redone
    assert files(drv) == [f"volume-{VID}.qcow2"]


def test_extend_and_delete(drv: FileVolumeDriver) -> None:
    drv.create_blank(VID, 1)
    drv.extend(VID, 3)
    drv.extend(VID, 3)  # again: nothing to do
    assert drv.virtual_size(drv.volume_path(VID)) == 3 * GiB
    assert drv.delete_volume(VID) is True
    assert drv.delete_volume(VID) is False  # already gone: still fine
    assert files(drv) == []
    with pytest.raises(StorageError):
        drv.extend(VID, 4)


def test_snapshot_and_volume_from_it_keep_the_data(drv: FileVolumeDriver, tmp_path: Path) -> None:
    path = drv.create_blank(VID, 1)
    try:
        write_pattern(path, 0, b"\xab" * 4096)
    except FileNotFoundError:
        pytest.skip("qemu-io is not installed")
    snap = drv.create_snapshot(SID, VID)
    assert drv.info(snap)["format"] == "qcow2"
    write_pattern(path, 0, b"\xcd" * 4096)  # the volume changes; the snapshot does not
    new = drv.create_from_snapshot(VID2, 2, SID)
    assert drv.virtual_size(new) == 2 * GiB
    raw = tmp_path / "out.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", new, str(raw)], check=True)
    with open(raw, "rb") as fh:
        assert fh.read(4096) == b"\xab" * 4096
    # the snapshot can go before or after the volume made from it
    assert drv.delete_snapshot(SID) and drv.delete_volume(VID) and drv.delete_volume(VID2)
    assert files(drv) == []


def test_clone_and_from_image(drv: FileVolumeDriver, tmp_path: Path) -> None:
    drv.create_blank(VID, 1)
    clone = drv.create_from_volume(VID2, 2, VID)
    assert drv.virtual_size(clone) == 2 * GiB
    image = tmp_path / "img.raw"
    image.write_bytes(b"\x01" * (1 << 20))
    vol = drv.create_from_image(SID, 1, image, "raw")
    assert drv.info(vol)["format"] == "qcow2" and drv.virtual_size(vol) == GiB


def test_failures_leave_no_orphan(drv: FileVolumeDriver, tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        drv.create_from_snapshot(VID, 1, SID)  # no such snapshot
    bad = tmp_path / "bad.qcow2"
    bad.write_bytes(b"not a qcow2 image at all" * 100)
    with pytest.raises(StorageError):
        drv.create_from_image(VID, 1, bad, "qcow2")
    big = tmp_path / "big.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(big), "5G"], check=True)
    with pytest.raises(StorageError):
        drv.create_from_image(VID, 1, big, "qcow2")  # larger than the volume
    with pytest.raises(StorageError):
        drv.create_from_image(VID, 1, big, "bogus")
    with pytest.raises(StorageError):
        drv.create_blank("../escape", 1)
    assert files(drv) == []


def test_leftovers_of_a_killed_run_are_cleaned(drv: FileVolumeDriver) -> None:
    (drv.root / ".tmp" / "volume-x.qcow2.1234").write_bytes(b"partial")
    assert drv.clean_tmp() == 1 and files(drv) == []


def test_capacity(drv: FileVolumeDriver) -> None:
    cap = drv.capacity()
    assert cap.total_gb > 0 and 0 <= cap.free_gb <= cap.total_gb
