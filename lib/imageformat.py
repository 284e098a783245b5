"""What a disk image really is, and whether it is safe to hand to qemu-img or QEMU (no Django here).

qemu-img and QEMU follow what an image file says: a qcow2 may name a backing file or an external
``data-file``, a VMDK descriptor may name FLAT extents, anywhere on the host. A tenant's image that
does so reads host files into a volume, an overlay or a snapshot (OpenStack's CVE-2024-32498 and its
kin). Glance, Nova and Cinder answered by inspecting every image with oslo.utils' format inspector,
the maintained reference, before anything else touches it; this module does the same:

1. ``oslo_utils.imageutils.format_inspector`` detects the content's real format (several formats at
   once, e.g. a qcow2 header hiding an ISO or a partition table, is refused) and runs that format's
   safety checks (backing file, qcow2 data-file and unknown features, VMDK subformats other than
   monolithicSparse/streamOptimized and their descriptors, VHDX regions, MBR/GPT tables...);
2. the detected format must be the one the image claims (``disk_format``);
3. then, as a second opinion, ``qemu-img info --output=json -f <format>`` (never a probe) must report
   no backing file, no data-file and, for a VMDK, no extent other than the file itself.

``inspect(path, claimed_format)`` does all three on a file; ``StreamInspector`` does 1 and 2 on a
stream of chunks (an upload), as Glance does with ``InspectWrapper``. Both raise ``ImageFormatError``
with a message meant for the image's owner.
"""
from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from oslo_utils.imageutils import format_inspector as fi

QEMU_IMG = "qemu-img"
# Glance disk formats → the inspector's (and qemu-img's) name of the content; ``vpc`` is qemu's
# name for VHD, accepted so node code may pass either.
INSPECTED_AS = {"raw": "raw", "ami": "raw", "aki": "raw", "ari": "raw", "qcow2": "qcow2", "vmdk": "vmdk",
                "vdi": "vdi", "vhd": "vhd", "vpc": "vhd", "vhdx": "vhdx", "iso": "iso"}
QEMU_NAME = {"raw": "raw", "qcow2": "qcow2", "vmdk": "vmdk", "vdi": "vdi", "vhd": "vpc", "vhdx": "vhdx",
             "iso": "raw", "gpt": "raw"}
# A raw disk may carry a partition table (detected as "gpt", which also covers MBR); an ISO may be a
# hybrid one with a partition table (as bootable distribution ISOs are).
ALSO_ACCEPTED = {"raw": {"gpt"}, "iso": {"gpt"}}
VMDK_SUBFORMATS = ("monolithicSparse", "streamOptimized")
# A kernel or ramdisk is loaded whole by QEMU (-kernel/-initrd), never opened as a disk, so what looks
# like a partition table in it means nothing (an x86 bzImage starts with a legacy boot sector ending
# in 0x55AA, which the inspector reads as an MBR with nonsense entries). Any other format found in
# one is still refused.
NOT_A_DISK = {"aki", "ari"}


class ImageFormatError(ValueError):
    """The image is not what it claims to be, or is not safe to use; nothing may read it."""


@dataclass(frozen=True)
class Inspected:
    format: str  # the content's format, as the inspector names it (raw, qcow2, vmdk, iso, gpt, ...)
    qemu_format: str  # the -f to give qemu-img for it
    virtual_size: int | None


def _claimed(claimed_format: str | None) -> str:
    """The content format a claim stands for. An image without a disk_format is taken as raw (qemu
    must never guess), and a format no inspector knows cannot be checked, so it is refused."""
    name = (claimed_format or "raw").lower()
    expected = INSPECTED_AS.get(name)
    if expected is None:
        raise ImageFormatError(f"Disk format {claimed_format!r} cannot be inspected, so it is not accepted.")
    return expected


def _describe_failure(exc: fi.SafetyCheckFailed) -> str:
    return "; ".join(f"{name}: {failure}" for name, failure in sorted(exc.failures.items()))


def _judge(formats: list[fi.FileInspector] | None, claimed_format: str | None) -> fi.FileInspector:
    """The one inspector the content matched, checked against the claim and for safety."""
    expected = _claimed(claimed_format)
    if not formats:
        raise ImageFormatError("The image's format could not be determined.")
    names = sorted(str(f) for f in formats)
    if len(formats) > 1:
        # two headers in one file: only a hybrid ISO (ISO 9660 + partition table) is legitimate
        if expected == "iso" and set(names) == {"iso", "gpt"}:
            chosen = next(f for f in formats if str(f) == "iso")
            for inspector in formats:
                _safe(inspector)
            return chosen
        raise ImageFormatError(f"The image's content matches several formats ({', '.join(names)}): refused.")
    inspector = formats[0]
    found = str(inspector)
    if found != expected and found not in ALSO_ACCEPTED.get(expected, set()):
        raise ImageFormatError(f"Image format detected as {found}, but its disk_format says "
                               f"{claimed_format or 'nothing'}: refused.")
    if found == "gpt" and (claimed_format or "").lower() in NOT_A_DISK:
        return inspector
    _safe(inspector)
    return inspector


def _safe(inspector: fi.FileInspector) -> None:
    try:
        inspector.safety_check()
    except fi.SafetyCheckFailed as exc:
        raise ImageFormatError(f"The {inspector} image fails its safety checks ({_describe_failure(exc)}).") from None
    except fi.ImageFormatError as exc:
        raise ImageFormatError(f"The image cannot be inspected as {inspector}: {exc}") from None


def _virtual_size(inspector: fi.FileInspector) -> int | None:
    try:
        size = int(inspector.virtual_size)
    except Exception:  # noqa: BLE001 - an inspector that cannot tell leaves the size unknown
        return None
    return size if size >= 0 else None


def _read(path: str | os.PathLike[str], answer: str) -> Any:
    """oslo.utils' inspectors fed from the file's head until they have decided (or the file ends);
    ``answer`` is the wrapper's attribute wanted (``formats`` or ``format``, which may raise too)."""
    try:
        with open(path, "rb") as fh:
            wrapper = fi.InspectWrapper(fh)
            try:
                while wrapper.formats is None:
                    if not wrapper.read(65536):
                        break
            finally:
                wrapper.close()
            return getattr(wrapper, answer)
    except OSError as exc:
        raise ImageFormatError(f"The image cannot be read: {exc.strerror or exc}") from None
    except fi.ImageFormatError as exc:
        raise ImageFormatError(f"The image cannot be inspected: {exc}") from None


def detect(path: str | os.PathLike[str], claimed_format: str | None) -> Inspected:
    """Steps 1 and 2 on a file (oslo.utils' inspector only)."""
    formats = _read(path, "formats")
    inspector = _judge(formats, claimed_format)
    size = os.path.getsize(path) if str(inspector) in ("raw", "gpt") else _virtual_size(inspector)
    return Inspected(format=str(inspector), qemu_format=QEMU_NAME[str(inspector)], virtual_size=size)


def content_format(path: str | os.PathLike[str]) -> str:
    """The qemu-img format name of a file's content as the inspector reads it, with no safety check
    (for the node's own disks, e.g. an overlay, which has a backing file by design): so qemu-img is
    always told ``-f`` and never probes. Several formats at once is refused."""
    found = _read(path, "format")
    if found is None or str(found) not in QEMU_NAME:
        raise ImageFormatError(f"The image's format ({found}) is not one qemu-img is given here.")
    return QEMU_NAME[str(found)]


def qemu_info(path: str | os.PathLike[str], qemu_format: str, *, timeout: float = 60) -> dict:
    """``qemu-img info --output=json -f <format>``: opens the file as that format only, and never its
    backing file (info without ``--backing-chain`` does not open it)."""
    try:
        proc = subprocess.run([QEMU_IMG, "info", "--output=json", "-f", qemu_format, str(path)],
                              capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise ImageFormatError("qemu-img is not installed (Debian package qemu-utils)") from exc
    except subprocess.TimeoutExpired as exc:
        raise ImageFormatError(f"qemu-img info timed out after {timeout} s") from exc
    if proc.returncode != 0:
        raise ImageFormatError(f"qemu-img cannot read the image as {qemu_format}: "
                               f"{(proc.stderr or proc.stdout).strip()[-500:]}")
    return json.loads(proc.stdout)


def check_qemu_info(doc: dict, path: str | os.PathLike[str]) -> None:
    """Refuse what qemu-img itself says would make it read another file."""
    if doc.get("backing-filename") or doc.get("full-backing-filename"):
        raise ImageFormatError(f"The image has a backing file ({doc.get('backing-filename')}): refused.")
    specific = (doc.get("format-specific") or {}).get("data") or {}
    if specific.get("data-file"):
        raise ImageFormatError(f"The image has an external data file ({specific['data-file']}): refused.")
    if doc.get("format") == "vmdk":
        create_type = specific.get("create-type")
        if create_type not in VMDK_SUBFORMATS:
            raise ImageFormatError(f"VMDK subformat {create_type!r} is not allowed (only "
                                   f"{' and '.join(VMDK_SUBFORMATS)}).")
        own = os.path.realpath(path)
        for extent in specific.get("extents") or []:
            name = extent.get("filename")
            if name and os.path.realpath(name) != own:
                raise ImageFormatError(f"The VMDK image names an extent outside itself ({name}): refused.")


def inspect(path: str | os.PathLike[str], claimed_format: str | None) -> Inspected:
    """Is the file at ``path`` the ``claimed_format`` (a Glance disk_format) it says, and safe for
    qemu-img and QEMU? Returns what it is; raises ``ImageFormatError`` otherwise. Run it before
    qemu-img or QEMU touches a tenant's image."""
    found = detect(path, claimed_format)
    check_qemu_info(qemu_info(path, found.qemu_format), path)
    return found


class StreamInspector:
    """Inspects an upload while it streams (only the regions each format needs are kept, at most about
    1 MiB for a VMDK descriptor). ``feed(chunks)`` passes the chunks through; ``verdict()`` once the
    stream ended raises ``ImageFormatError`` or returns what the content is."""

    def __init__(self, claimed_format: str | None) -> None:
        self.claimed_format = claimed_format
        _claimed(claimed_format)  # a format nobody can inspect is refused before any byte is stored
        self._wrapper: fi.InspectWrapper | None = None

    def feed(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        self._wrapper = fi.InspectWrapper(iter(chunks))
        try:
            yield from self._wrapper
        except fi.ImageFormatError as exc:
            raise ImageFormatError(f"The image cannot be inspected: {exc}") from None

    def verdict(self) -> Inspected:
        if self._wrapper is None:
            raise ImageFormatError("No data was inspected.")
        try:
            formats = self._wrapper.formats
        except fi.ImageFormatError as exc:
            raise ImageFormatError(f"The image cannot be inspected: {exc}") from None
        inspector = _judge(formats, self.claimed_format)
        return Inspected(format=str(inspector), qemu_format=QEMU_NAME[str(inspector)],
                         virtual_size=_virtual_size(inspector))
