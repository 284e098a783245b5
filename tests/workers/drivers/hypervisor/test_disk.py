"""Instance disks with the real qemu-img."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.workers.drivers.hypervisor.conftest import needs_qemu_img
from workers.drivers.hypervisor import disk
from workers.drivers.hypervisor.disk import DiskError, GiB

pytestmark = needs_qemu_img


def test_overlay_backing_chain_reported_by_qemu_img(tmp_path: Path) -> None:
    base = tmp_path / "cache" / "image-1"
    disk.blank_create(base, 1)
    t0 = time.perf_counter()
    top = disk.overlay_create(base, tmp_path / "inst" / "disk", 10)
    assert time.perf_counter() - t0 < 2
    assert top.format == "qcow2"
    assert top.virtual_size == 10 * GiB
    assert top.backing_file == str(base.resolve())
    assert top.backing_format == "qcow2"
    assert top.chain == (str(tmp_path / "inst" / "disk"), str(base.resolve()))
    again = disk.info(tmp_path / "inst" / "disk")
    assert again == top


def test_overlay_on_raw_base_keeps_its_size_and_names_the_format(tmp_path: Path) -> None:
    base = tmp_path / "raw.img"
    base.write_bytes(b"\0" * (4 * 1024 * 1024))
    top = disk.overlay_create(base, tmp_path / "disk", None, base_format="raw")
    assert top.backing_format == "raw" and top.virtual_size == 4 * 1024 * 1024


def test_overlay_smaller_than_image_and_missing_base_are_refused(tmp_path: Path) -> None:
    base = tmp_path / "base.qcow2"
    disk.blank_create(base, 2)
    with pytest.raises(DiskError, match="smaller"):
        disk.overlay_create(base, tmp_path / "disk", 1)
    assert not (tmp_path / "disk").exists()
    with pytest.raises(DiskError, match="does not exist"):
        disk.overlay_create(tmp_path / "nope", tmp_path / "disk2", 1)


def test_resize_grows_and_refuses_to_shrink(tmp_path: Path) -> None:
    p = tmp_path / "d.qcow2"
    disk.blank_create(p, 1)
    assert disk.resize(p, 3).virtual_size == 3 * GiB
    with pytest.raises(DiskError, match="shrink"):
        disk.resize(p, 2)
    assert disk.info(p).virtual_size == 3 * GiB


def test_convert_raw_to_qcow2_and_back(tmp_path: Path) -> None:
    raw = tmp_path / "a.raw"
    raw.write_bytes(b"stratus" * 100000)
    q = disk.convert(raw, tmp_path / "a.qcow2", out_format="qcow2", in_format="raw")
    assert q.format == "qcow2" and q.virtual_size >= raw.stat().st_size
    back = disk.convert(tmp_path / "a.qcow2", tmp_path / "b.raw", out_format="raw")
    assert back.format == "raw"
    assert (tmp_path / "b.raw").read_bytes()[: raw.stat().st_size] == raw.read_bytes()
    assert not list(tmp_path.glob("*.part-*"))


def test_delete_is_idempotent(tmp_path: Path) -> None:
    p = tmp_path / "d.qcow2"
    disk.blank_create(p, 1)
    assert disk.delete(p) is True
    assert disk.delete(p) is False


def test_info_of_garbage_is_a_disk_error(tmp_path: Path) -> None:
    with pytest.raises(DiskError):
        disk.info(tmp_path / "missing")
    with pytest.raises(DiskError):
        disk.parse_info("[]")


def test_snapshot_of_an_overlay_is_standalone(tmp_path: Path) -> None:
    base = tmp_path / "base.raw"
    base.write_bytes(b"B" * 1024 * 1024)
    top = tmp_path / "disk"
    disk.overlay_create(base, top, None, base_format="raw")
    snap = disk.convert(top, tmp_path / "snap.qcow2", out_format="qcow2", in_format="qcow2")
    assert snap.backing_file is None and snap.chain == (str(tmp_path / "snap.qcow2"),)
    back = disk.convert(tmp_path / "snap.qcow2", tmp_path / "snap.raw", out_format="raw")
    assert back.virtual_size == 1024 * 1024
    assert b"".join(disk.iter_file(tmp_path / "snap.raw", 4096)) == base.read_bytes()


def test_an_image_with_a_backing_file_is_refused_as_base(tmp_path: Path) -> None:
    secret = tmp_path / "host-secret"
    secret.write_bytes(b"S" * 65536)
    evil = tmp_path / "cache" / "user-image"
    evil.parent.mkdir()
    import subprocess

    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(secret), str(evil)], check=True)
    with pytest.raises(DiskError, match=r"backing.file"):
        disk.overlay_create(evil, tmp_path / "disk", 1, base_format="qcow2")
    assert not (tmp_path / "disk").exists()
    # nor is it taken when it claims to be raw: its content is a qcow2, not what it claims
    raw = tmp_path / "raw-image"
    raw.write_bytes(evil.read_bytes())
    with pytest.raises(DiskError, match="detected as qcow2"):
        disk.overlay_create(raw, tmp_path / "disk2", 1, base_format="raw")
    assert not (tmp_path / "disk2").exists()
    # a true raw image is used as raw (never probed)
    plain = tmp_path / "plain-raw"
    plain.write_bytes(b"R" * 65536)
    top = disk.overlay_create(plain, tmp_path / "disk3", 1, base_format="raw")
    assert top.backing_format == "raw"
