"""Instance disks through ``qemu-img``: overlays on cached bases, info, resize, convert, delete.

Plain paths in, plain values out. Every call runs ``qemu-img`` as a subprocess with an argument list
(never a shell), so paths with odd characters are passed as they are. Errors raise ``DiskError`` with
qemu-img's own message.
"""
from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lib import imageformat

QEMU_IMG = "qemu-img"
GiB = 1024**3


class DiskError(RuntimeError):
    """qemu-img failed, or a request cannot be done (e.g. shrinking a disk)."""


@dataclass(frozen=True)
class ImageInfo:
    """What ``qemu-img info --output=json`` says about one image file (the top of the chain)."""

    path: str
    format: str
    virtual_size: int
    actual_size: int | None
    backing_file: str | None
    backing_format: str | None
    # The whole backing chain from this image down to its base (paths as qemu-img reports them),
    # this image first; a lone image has a chain of one.
    chain: tuple[str, ...]


def _run(args: list[str], timeout: float = 600) -> str:
    try:
        proc = subprocess.run([QEMU_IMG, *args], capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise DiskError("qemu-img is not installed (Debian package qemu-utils)") from exc
    except subprocess.TimeoutExpired as exc:
        raise DiskError(f"qemu-img {args[0]} timed out after {timeout} s") from exc
    if proc.returncode != 0:
        raise DiskError(f"qemu-img {args[0]} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def _parse_one(doc: dict) -> ImageInfo:
    return ImageInfo(
        path=str(doc["filename"]),
        format=str(doc["format"]),
        virtual_size=int(doc["virtual-size"]),
        actual_size=int(doc["actual-size"]) if "actual-size" in doc else None,
        backing_file=doc.get("full-backing-filename") or doc.get("backing-filename"),
        backing_format=doc.get("backing-filename-format"),
        chain=(str(doc["filename"]),),
    )


def parse_info(output: str) -> ImageInfo:
    """Parse ``qemu-img info --output=json`` (with or without ``--backing-chain``)."""
    doc = json.loads(output)
    if isinstance(doc, list):
        if not doc:
            raise DiskError("qemu-img info returned an empty chain")
        top = _parse_one(doc[0])
        return ImageInfo(path=top.path, format=top.format, virtual_size=top.virtual_size,
                         actual_size=top.actual_size, backing_file=top.backing_file,
                         backing_format=top.backing_format, chain=tuple(str(d["filename"]) for d in doc))
    return _parse_one(doc)


def _format_of(path: str | os.PathLike[str]) -> str:
    try:
        return imageformat.content_format(path)
    except imageformat.ImageFormatError as exc:
        raise DiskError(f"{path}: {exc}") from None


def info(path: str | os.PathLike[str], *, fmt: str | None = None) -> ImageInfo:
    """Describe an image and its backing chain. ``fmt`` pins the format (pass the format you already
    know); without it the format inspector reads it, so qemu-img is always given ``-f`` and never
    probes a tenant's data as something else."""
    fmt = fmt or _format_of(path)
    return parse_info(_run(["info", "--output=json", "--backing-chain", "-f", fmt, str(path)]))


def overlay_create(base: str | os.PathLike[str], path: str | os.PathLike[str], size_gb: int | None = None,
                   *, base_format: str | None = None) -> ImageInfo:
    """A qcow2 overlay at ``path`` backed by ``base`` (``qemu-img create -f qcow2 -F <fmt> -b base path
    size``). ``base_format`` should be the image's disk_format from Glance (probing a user's raw image
    could take it for something else); without it the format inspector's reading is used. The base must
    pass ``imageformat.inspect`` (the claimed format, no backing file, data-file or outside extent),
    else it is refused. ``size_gb`` None keeps the
    base's size, and a size smaller than the base is refused. The base path is made absolute so the
    overlay works from any directory."""
    base_abs = str(Path(base).resolve())
    if not os.path.exists(base_abs):
        raise DiskError(f"backing image {base_abs} does not exist")
    try:
        # A user's image that points at another file (backing file, data-file, VMDK extent) would let
        # the guest read that host file; one that is not the format it claims is refused as well.
        found = imageformat.inspect(base_abs, base_format or _format_of(base_abs))
    except imageformat.ImageFormatError as exc:
        raise DiskError(f"image {base_abs} is refused: {exc}") from None
    base_info = info(base_abs, fmt=found.qemu_format)
    size = base_info.virtual_size
    if size_gb is not None:
        wanted = int(size_gb) * GiB
        if wanted < base_info.virtual_size:
            raise DiskError(f"disk of {size_gb} GiB is smaller than the image ({base_info.virtual_size} bytes)")
        size = wanted
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    _run(["create", "-q", "-f", "qcow2", "-F", found.qemu_format, "-b", base_abs, str(path), str(size)])
    return info(path, fmt="qcow2")


def blank_create(path: str | os.PathLike[str], size_gb: int, *, fmt: str = "qcow2") -> ImageInfo:
    """An empty disk (ephemeral/swap, or a volume)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    _run(["create", "-q", "-f", fmt, str(path), f"{int(size_gb)}G"])
    return info(path, fmt=fmt)


def resize(path: str | os.PathLike[str], size_gb: int, *, fmt: str = "qcow2") -> ImageInfo:
    """Grow a disk to ``size_gb`` GiB. Shrinking is refused (it would cut the guest's filesystem)."""
    current = info(path, fmt=fmt)
    wanted = int(size_gb) * GiB
    if wanted < current.virtual_size:
        raise DiskError(f"refusing to shrink {path} from {current.virtual_size} to {wanted} bytes")
    if wanted != current.virtual_size:
        _run(["resize", "-q", "-f", fmt, str(path), str(wanted)])
    return info(path, fmt=fmt)


def iter_file(path: str | os.PathLike[str], chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
    """Stream a file in chunks (e.g. a snapshot on its way to the image store)."""
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            yield chunk


def convert(src: str | os.PathLike[str], dst: str | os.PathLike[str], *, out_format: str,
            in_format: str | None = None) -> ImageInfo:
    """Convert between formats (raw ↔ qcow2) into a new file, written beside ``dst`` and renamed into
    place, so a half-written ``dst`` never exists. The result is standalone: converting an overlay
    reads through its backing chain, which is how an instance snapshot (createImage) becomes an image
    (on a live QEMU guest, pause it or snapshot first so the disk is consistent)."""
    src_fmt = in_format or _format_of(src)
    tmp = f"{dst}.part-{os.getpid()}"
    try:
        _run(["convert", "-q", "-f", src_fmt, "-O", out_format, str(src), tmp])
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return info(dst, fmt=out_format)


def delete(path: str | os.PathLike[str]) -> bool:
    """Remove a disk file; True when something was removed, False when it was already gone."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True
