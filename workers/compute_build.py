"""What a compute node builds for an instance's domain from the spec it was sent (plain values,
``apps.compute.selectors.node_specs.server_node_spec``; no database): the image in the node's cache,
the qcow2 overlay, ephemeral and swap disks, the config drive, NICs, the server's volumes, direct
kernel boot; then the ``DomainSpec`` (``build_domain``). The tasks that use it are in
``workers/compute.py``, which re-exports these names.

Django settings are read inside the functions (this module loads before Django is set up).
"""
from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lib import configdrive, imageformat
from workers.drivers.hypervisor import disk
from workers.drivers.hypervisor.imagecache import ImageCache
from workers.drivers.hypervisor.layout import InstanceLayout
from workers.drivers.hypervisor.libvirt import DiskSpec, DomainSpec, NicSpec
from workers.images import ImageAPIError, Renew, cached_image, renewer

# Direct kernel boot when the image names no os_command_line.
DEFAULT_KERNEL_CMDLINE = "console=ttyS0 root=/dev/vda"
# Glance disk formats → qemu-img formats of the cached base (aki/ari/ami are raw files).
QEMU_FORMATS = {"qcow2": "qcow2", "raw": "raw", "ami": "raw", "aki": "raw", "ari": "raw", "vmdk": "vmdk",
                "vdi": "vdi", "vhd": "vpc", "vhdx": "vhdx"}


def image_cache() -> ImageCache:
    from django.conf import settings

    return ImageCache(settings.STRATUS_IMAGE_CACHE_PATH)


def _vnc_listen() -> str | None:
    from django.conf import settings

    return str(settings.STRATUS_VNC_LISTEN or "") or None


def _force_config_drive() -> bool:
    from django.conf import settings

    return bool(settings.STRATUS_FORCE_CONFIG_DRIVE)


@dataclass(frozen=True)
class ServerSpec:
    """What a node task knows of its instance: the plain values the control tier sent with it
    (``apps.compute.selectors.node_specs.server_node_spec``, read in the service's transaction). The
    build values (``image``, ``kernel``, ``ramdisk``, ``nics``, ``config_drive_document``, ``volumes``)
    are in ``values``."""

    id: str
    host: str
    name: str
    project_id: str
    image_id: str
    vcpus: int
    memory_mb: int
    root_gb: int
    ephemeral_gb: int
    swap: int
    config_drive: bool
    vm_state: str
    flavor: Mapping[str, Any]
    new_flavor: Mapping[str, Any] | None
    values: Mapping[str, Any]

    @classmethod
    def of(cls, instance_id: str, values: Mapping[str, Any]) -> ServerSpec:
        if str(values.get("id")) != str(instance_id):
            raise ValueError(f"a spec of instance {values.get('id')!r} sent for instance {instance_id!r}")
        return cls(id=str(instance_id), host=str(values.get("host") or ""), name=str(values.get("name") or ""),
                   project_id=str(values.get("project_id") or ""), image_id=str(values.get("image_id") or ""),
                   vcpus=int(values["vcpus"]), memory_mb=int(values["memory_mb"]), root_gb=int(values["root_gb"]),
                   ephemeral_gb=int(values.get("ephemeral_gb") or 0), swap=int(values.get("swap") or 0),
                   config_drive=bool(values.get("config_drive")), vm_state=str(values.get("vm_state") or ""),
                   flavor=dict(values.get("flavor") or {}), new_flavor=values.get("new_flavor") or None,
                   values=values)


class SpawnError(RuntimeError):
    """A spawn that cannot go on; the message is the fault the user sees."""


class ImageRefused(SpawnError):
    """An image failed the format checks (``imageformat.inspect``): no node would boot it, so the
    build is not rescheduled (Nova's ImageUnacceptable)."""


# ---- node-side steps (plain values) ------------------------------------------------------------------

@dataclass(frozen=True)
class CachedBase:
    path: str
    format: str


def cache_image(image: Mapping[str, Any] | None, image_id: str = "", *, renew: Renew | None = None) -> CachedBase:
    """The image's bytes in the node's cache (downloaded once, verified against Glance's md5 and
    multihash) and its qemu-img format. ``image``: its spec (``node_specs.image_spec``; ``missing``
    when it did not exist, or the project may not read it, when the spec was made). ``renew``: where a
    fresh read URL comes from when the spec's expired (``workers.images.renewer``)."""
    if image is None or image.get("missing"):
        raise SpawnError(f"Image {(image or {}).get('id') or image_id} could not be found.")
    if image.get("status") not in ("active", "deactivated") or not image.get("has_data"):
        raise SpawnError(f"Image {image['id']} is not active (status {image.get('status')}).")
    fmt = QEMU_FORMATS.get(str(image.get("disk_format") or "").lower())
    if fmt is None:
        raise SpawnError(f"Image {image['id']} has disk_format {image.get('disk_format')!r}, which this node "
                         f"cannot boot.")
    try:
        path = cached_image(image_cache(), image, renew=renew)
    except imageformat.ImageFormatError as exc:
        raise ImageRefused(f"Image {image['id']} is refused: {exc}") from None
    except ImageAPIError as exc:
        raise SpawnError(f"Image {image['id']} could not be fetched: {exc}") from None
    return CachedBase(path=path, format=fmt)


def config_drive_spec(document: Mapping[str, Any]) -> configdrive.ConfigDriveSpec:
    """The config drive's documents (the metadata service's own, sent in the spec as JSON values), so a
    guest reads the same from its drive and over HTTP."""
    values = dict(document)
    if values.get("user_data") is not None:
        values["user_data"] = base64.b64decode(values["user_data"])
    values["fixed_ips"] = tuple(values.get("fixed_ips") or ())
    return configdrive.ConfigDriveSpec(**values)


def nic_specs(nics: Iterable[Mapping[str, Any]]) -> tuple[NicSpec, ...]:
    return tuple(NicSpec(port_id=str(n["port_id"]), mac=str(n["mac"]), mtu=n.get("mtu") or None) for n in nics)


def _blank(path: str, size_mb: int) -> None:
    """An empty qcow2 disk of ``size_mb`` MiB (swap is sized in MiB; ``disk.blank_create`` takes GiB)."""
    if size_mb % 1024 == 0:
        disk.blank_create(path, size_mb // 1024)
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        disk._run(["create", "-q", "-f", "qcow2", str(path), f"{int(size_mb)}M"])


@dataclass(frozen=True)
class VolumeDisk:
    """A server's Cinder volume as a disk: its file on its storage backend, reached directly (same
    machine or shared filesystem), at its device in the guest."""

    volume_id: str
    path: str
    format: str
    target: str
    boot_index: int | None


def volume_disks(values: Iterable[Mapping[str, Any]] | None) -> list[VolumeDisk]:
    return [VolumeDisk(volume_id=str(v["volume_id"]), path=str(v["path"]), format=str(v.get("format") or "qcow2"),
                       target=str(v.get("target") or ""), boot_index=v.get("boot_index")) for v in values or ()]


def build_domain(server: ServerSpec, layout: InstanceLayout, volumes: list[VolumeDisk]) -> DomainSpec:
    """Everything the domain needs on this node's disk: the root disk (the boot volume's file when the
    server boots from a volume, else a qcow2 overlay sized root_gb, 0 = the image's size, over the
    cached base of the spec's image), kernel/ramdisk for direct kernel boot, ephemeral and swap disks,
    the server's other volumes at their devices, the config drive when asked for (or forced); then its
    DomainSpec. A volume's file is never made or removed here (the storage agent owns it)."""
    values = server.values
    image_id = str(values.get("boot_image_id") or "")
    root = next((v for v in volumes if v.boot_index == 0), None)
    if root is None and not image_id:
        raise SpawnError(f"Instance {server.id} has no image and no boot volume.")
    layout.create()
    image = values.get("image")

    def renew(wanted: str) -> Renew:  # a fresh URL for an expired one, while the build still needs it
        return renewer("compute_control", host=server.host, image_id=wanted, purpose="read", instance_id=server.id)

    if root is None:
        base = cache_image(image, image_id, renew=renew(image_id))
        disk.overlay_create(base.path, layout.disk, server.root_gb or None, base_format=base.format)
        disks = [DiskSpec(path=layout.disk, target="vda")]
    else:
        # the image a volume was made from only lends its properties; it may be gone by now
        image = image if image and not image.get("missing") else None
        disks = [DiskSpec(path=root.path, target="vda", format=root.format, serial=root.volume_id[:20])]
    targets = iter("bcdefgh")
    if server.ephemeral_gb:
        disk.blank_create(layout.ephemeral, server.ephemeral_gb)
        disks.append(DiskSpec(path=layout.ephemeral, target=f"vd{next(targets)}"))
    if server.swap:
        _blank(layout.swap, server.swap)
        disks.append(DiskSpec(path=layout.swap, target=f"vd{next(targets)}"))
    for volume in volumes:
        if volume is root:
            continue
        if any(d.target == volume.target for d in disks) or not volume.target:
            raise SpawnError(f"Volume {volume.volume_id} of instance {server.id}: device {volume.target!r} "
                             f"is taken.")
        disks.append(DiskSpec(path=volume.path, target=volume.target, format=volume.format,
                              serial=volume.volume_id[:20]))
    config_drive = None
    if server.config_drive or _force_config_drive():
        document = values.get("config_drive_document")
        if document is None:
            raise SpawnError(f"Instance {server.id} could not be found.")
        config_drive = configdrive.build(config_drive_spec(document), layout.config_drive)
    props = (image.get("properties") if image is not None else None) or {}
    kernel = initrd = cmdline = None
    if props.get("kernel_id") and root is None:
        kernel = cache_image(values.get("kernel"), str(props["kernel_id"]), renew=renew(str(props["kernel_id"]))).path
        if props.get("ramdisk_id"):
            initrd = cache_image(values.get("ramdisk"), str(props["ramdisk_id"]),
                                 renew=renew(str(props["ramdisk_id"]))).path
        cmdline = props.get("os_command_line") or DEFAULT_KERNEL_CMDLINE
    return DomainSpec(uuid=server.id, vcpus=server.vcpus, memory_mb=server.memory_mb, disks=tuple(disks),
                      nics=nic_specs(values.get("nics") or ()), config_drive=config_drive,
                      console_log=layout.console_log, vnc_listen=_vnc_listen(), kernel=kernel, initrd=initrd,
                      cmdline=cmdline, arch=str(props.get("architecture") or props.get("hw_architecture") or "x86_64"),
                      metadata={"name": server.name, "project": server.project_id, "image": image_id})
