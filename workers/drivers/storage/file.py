"""File-backed volumes: one qcow2 file per volume and per snapshot under the backend's directory.

``FileVolumeDriver(root)`` keeps ``<root>/volume-<id>.qcow2`` and ``<root>/snapshot-<id>.qcow2``.
Every operation is idempotent (a repeated create finds the finished file, a repeated delete finds
nothing to remove) and leaves no orphan on failure: files are built under ``<root>/.tmp/`` and renamed
into place only when complete. Snapshots are full copies (``qemu-img convert``), so a volume and its
snapshots never depend on each other's files and can be deleted in any order. Images come in through
the caller's image cache (a path to the downloaded image), are inspected (``imageformat.inspect``:
the disk_format they claim, nothing that makes qemu-img read another file) and converted to qcow2.
Every qemu-img call names its input format (``-f``): nothing is probed.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from lib import imageformat

GiB = 1 << 30
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")
QEMU_FORMATS = {"raw": "raw", "qcow2": "qcow2", "vmdk": "vmdk", "vdi": "vdi", "vhd": "vpc", "vhdx": "vhdx",
                "iso": "raw", "ami": "raw", "ari": "raw", "aki": "raw"}


class StorageError(RuntimeError):
    """A storage operation failed; nothing it started is left behind."""


@dataclass(frozen=True)
class Capacity:
    total_gb: float
    free_gb: float


def _run(*args: str, timeout: float = 3600) -> str:
    try:
        done = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StorageError(f"{args[0]} failed: {exc}") from exc
    if done.returncode != 0:
        raise StorageError(f"{' '.join(args[:3])}... exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return done.stdout


class FileVolumeDriver:
    def __init__(self, root: str | os.PathLike[str], *, qemu_img: str = "qemu-img") -> None:
        self.root = Path(root)
        self.qemu_img = qemu_img
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / ".tmp").mkdir(exist_ok=True)

    # ---- paths -------------------------------------------------------------------------------

    def _checked(self, item_id: str) -> str:
        if not _SAFE_ID.match(item_id or ""):
            raise StorageError(f"unsafe id {item_id!r}")
        return item_id

    def volume_path(self, volume_id: str) -> Path:
        return self.root / f"volume-{self._checked(volume_id)}.qcow2"

    def snapshot_path(self, snapshot_id: str) -> Path:
        return self.root / f"snapshot-{self._checked(snapshot_id)}.qcow2"

    def _tmp(self, final: Path) -> Path:
        return self.root / ".tmp" / f"{final.name}.{uuid.uuid4().hex[:8]}"

    # ---- inspection --------------------------------------------------------------------------

    def info(self, path: str | os.PathLike[str], fmt: str = "qcow2") -> dict:
        """``qemu-img info`` of a file of this backend (qcow2) or, with ``fmt``, of an inspected image:
        always with an explicit ``-f``, so qemu-img never probes."""
        return json.loads(_run(self.qemu_img, "info", "--output=json", "-U", "-f", fmt, str(path)))

    def virtual_size(self, path: str | os.PathLike[str], fmt: str = "qcow2") -> int:
        return int(self.info(path, fmt)["virtual-size"])

    def capacity(self) -> Capacity:
        st = os.statvfs(self.root)
        return Capacity(total_gb=round(st.f_blocks * st.f_frsize / GiB, 2),
                        free_gb=round(st.f_bavail * st.f_frsize / GiB, 2))

    # ---- building a file atomically ------------------------------------------------------------

    def _publish(self, tmp: Path, final: Path, size_gb: int) -> str:
        try:
            if self.virtual_size(tmp) < size_gb * GiB:
                _run(self.qemu_img, "resize", "-q", "-f", "qcow2", str(tmp), f"{size_gb}G")
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        return str(final)

    def _done(self, final: Path, size_gb: int) -> bool:
        """The file exists and is a readable image of at least ``size_gb`` (a finished earlier run)."""
        if not final.is_file():
            return False
        try:
            return self.virtual_size(final) >= size_gb * GiB
        except StorageError:
            return False

    # ---- volumes -------------------------------------------------------------------------------

    def create_blank(self, volume_id: str, size_gb: int) -> str:
        final = self.volume_path(volume_id)
        if self._done(final, size_gb):
            return str(final)
        tmp = self._tmp(final)
        try:
            _run(self.qemu_img, "create", "-q", "-f", "qcow2", str(tmp), f"{size_gb}G")
            return self._publish(tmp, final, size_gb)
        finally:
            tmp.unlink(missing_ok=True)

    def _convert_into(self, final: Path, source: str | os.PathLike[str], source_format: str,
                      size_gb: int) -> str:
        if self._done(final, size_gb):
            return str(final)
        tmp = self._tmp(final)
        try:
            _run(self.qemu_img, "convert", "-q", "-U", "-f", source_format, "-O", "qcow2", str(source), str(tmp))
            return self._publish(tmp, final, size_gb)
        finally:
            tmp.unlink(missing_ok=True)

    def create_from_image(self, volume_id: str, size_gb: int, image_path: str | os.PathLike[str],
                          disk_format: str | None) -> str:
        if disk_format and (disk_format or "").lower() not in QEMU_FORMATS:
            raise StorageError(f"disk format {disk_format!r} cannot be written to a volume")
        final = self.volume_path(volume_id)
        if self._done(final, size_gb):
            return str(final)
        try:
            # before qemu-img reads it: the format it claims, no backing file, data-file or outside extent
            found = imageformat.inspect(image_path, disk_format)
        except imageformat.ImageFormatError as exc:
            raise StorageError(f"Image refused: {exc}") from None
        if self.virtual_size(image_path, found.qemu_format) > size_gb * GiB:
            raise StorageError(f"the image's virtual size is larger than the volume ({size_gb} GB)")
        return self._convert_into(final, image_path, found.qemu_format, size_gb)

    def create_from_snapshot(self, volume_id: str, size_gb: int, snapshot_id: str) -> str:
        source = self.snapshot_path(snapshot_id)
        if not source.is_file():
            raise StorageError(f"snapshot {snapshot_id} has no file on this backend")
        return self._convert_into(self.volume_path(volume_id), source, "qcow2", size_gb)

    def create_from_volume(self, volume_id: str, size_gb: int, source_volume_id: str) -> str:
        source = self.volume_path(source_volume_id)
        if not source.is_file():
            raise StorageError(f"volume {source_volume_id} has no file on this backend")
        return self._convert_into(self.volume_path(volume_id), source, "qcow2", size_gb)

    def extend(self, volume_id: str, size_gb: int) -> str:
        path = self.volume_path(volume_id)
        if not path.is_file():
            raise StorageError(f"volume {volume_id} has no file on this backend")
        if self.virtual_size(path) < size_gb * GiB:
            _run(self.qemu_img, "resize", "-q", "-f", "qcow2", str(path), f"{size_gb}G")
        return str(path)

    def export(self, volume_id: str, disk_format: str) -> Path:
        """A standalone copy of the volume in ``disk_format`` (an image's data, e.g. for Glance), under
        ``.tmp``: the caller streams it and removes it (``discard``). An attached volume is read as it
        is (``-U``), which is what a forced upload asks for."""
        out = QEMU_FORMATS.get(disk_format)
        if out is None or disk_format in ("iso", "ami", "ari", "aki"):
            raise StorageError(f"disk format {disk_format!r} cannot be made from a volume")
        source = self.volume_path(volume_id)
        if not source.is_file():
            raise StorageError(f"volume {volume_id} has no file on this backend")
        tmp = self.root / ".tmp" / f"export-{volume_id}-{uuid.uuid4().hex[:8]}.{disk_format}"
        try:
            _run(self.qemu_img, "convert", "-q", "-U", "-f", "qcow2", "-O", out, str(source), str(tmp))
        except StorageError:
            tmp.unlink(missing_ok=True)
            raise
        return tmp

    def discard(self, path: str | os.PathLike[str]) -> None:
        """Remove a file ``export`` made."""
        Path(path).unlink(missing_ok=True)

    def delete_volume(self, volume_id: str) -> bool:
        """Remove the volume's file; False when there was none (already deleted)."""
        path = self.volume_path(volume_id)
        existed = path.exists()
        path.unlink(missing_ok=True)
        return existed

    # ---- snapshots -----------------------------------------------------------------------------

    def create_snapshot(self, snapshot_id: str, volume_id: str) -> str:
        source = self.volume_path(volume_id)
        if not source.is_file():
            raise StorageError(f"volume {volume_id} has no file on this backend")
        size_gb = -(-self.virtual_size(source) // GiB)
        return self._convert_into(self.snapshot_path(snapshot_id), source, "qcow2", size_gb)

    def delete_snapshot(self, snapshot_id: str) -> bool:
        path = self.snapshot_path(snapshot_id)
        existed = path.exists()
        path.unlink(missing_ok=True)
        return existed

    def clean_tmp(self) -> int:
        """Remove what a killed run left under ``.tmp`` (the agent calls it at start-up)."""
        removed = 0
        for leftover in (self.root / ".tmp").iterdir():
            leftover.unlink(missing_ok=True)
            removed += 1
        return removed
