"""Boot from volume: a server's block devices at create (``BlockDevice`` values: the API reads them
from ``block_device_mapping_v2``), its Cinder volumes through the volume services, and their release
when the server goes.

Create (``boot_plan`` then ``boot_volumes_create`` inside ``server_create``'s transaction): every
mapping with destination ``volume`` becomes a ``BlockDeviceMapping`` row. Source ``volume`` reserves
the user's available volume at once (``volume_reserve``); sources ``image``, ``snapshot`` and
``blank`` make a new volume (``volume_create``, counted against the project's volume quotas) that the
storage agent builds while the server is scheduled. The node's spawn waits for the new volumes
(``servers.server_boot_volumes_ready`` reserves each once it is available and fails the build when
one goes to error); ``boot_volumes_attached`` marks them in-use on the server when it is ACTIVE. An
image made by ``createImage`` of a volume-backed server carries its mappings (``block_device_mapping``
property, snapshots as sources); booting from it merges them in as Nova does.

Delete: ``server_volumes_release`` detaches every volume of the server (available again) and deletes
those marked ``delete_on_termination``.
"""
from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from apps.compute import states
from apps.compute.block_devices import BlockDevice, block_device, invalid
from apps.compute.models import BlockDeviceMapping, Instance
from apps.core.errors import BadRequest, NotFound, QuotaExceeded, StratusError
from apps.identity.models import Project, User
from apps.identity.policy import Actor

log = logging.getLogger(__name__)

GiB = 1 << 30
LETTERS = "abcdefghijklmnopqrstuvwxyz"
ROOT_DEVICE = "/dev/vda"
ATTACHING, ATTACHED, DETACHING = states.BDM_ATTACHING, states.BDM_ATTACHED, states.BDM_DETACHING


def _service_actor(project_id: str, user_id: str | None) -> Actor:
    """Nova's own identity towards Cinder for one server's owner (never given to a caller)."""
    return Actor(user=User(id=user_id or "nova"), project=Project(id=project_id),
                 roles=frozenset({"admin", "member"}), system=True)


# ---- the request -------------------------------------------------------------------------------

@dataclass
class BootDevice:
    """One validated mapping with destination ``volume``."""

    source_type: str
    uuid: str | None
    boot_index: int | None
    volume_size: int | None
    delete_on_termination: bool
    device_name: str | None
    disk_bus: str | None = None
    device_type: str | None = None
    tag: str | None = None
    volume_type: str | None = None
    image: Any = None
    snapshot: Any = None
    volume: Any = None


@dataclass
class BootPlan:
    """What ``server_create`` boots: the image (None for a server booted from a volume), the image
    id the server records, and its volume devices (empty for a server on a local disk)."""

    image: Any
    image_id: str
    devices: list[BootDevice] = field(default_factory=list)

    @property
    def volume_backed(self) -> bool:
        return any(d.boot_index == 0 for d in self.devices)


def _short(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def _image_bdms(image: Any) -> list[dict[str, Any]]:
    """The mappings an image made by ``createImage`` of a volume-backed server carries."""
    props = image.properties or {} if image is not None else {}
    raw = props.get("block_device_mapping")
    if not raw or str(props.get("bdm_v2", "")).lower() != "true":
        return []
    try:
        items = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        raise invalid(f"image {image.id} has a block_device_mapping property that is not JSON.") from None
    return [dict(i) for i in items if isinstance(i, Mapping)] if isinstance(items, list) else []


def _image_devices(image: Any) -> list[BlockDevice]:
    """The image's mappings, read as a request's are (an image's rows are data: checked the same)."""
    return [block_device(item) for item in _image_bdms(image)]


def boot_plan(*, actor: Actor, image_ref: str, block_devices: Sequence[BlockDevice], flavor: Any, count: int,
              check_image: Any) -> BootPlan:
    """Validate the image and the mappings (every check before anything is written). ``check_image``
    is the server create's image check (flavor fit), skipped for the root of a volume-backed server."""
    from apps.images import selectors as image_selectors

    requested = list(block_devices)
    if not image_ref and not requested:
        raise BadRequest("Missing imageRef attribute")
    image = None
    if image_ref:
        image_id = image_ref.rstrip("/").rsplit("/", 1)[-1]
        try:
            image = image_selectors.image_get(actor=actor, image_id=image_id)
        except StratusError:
            raise BadRequest(f"Image {image_id} could not be found.") from None
    image_defined = _image_devices(image)
    if any(d.boot_index == 0 for d in image_defined):
        # the client adds an image → local root mapping; the image's own root volume replaces it
        requested = [d for d in requested if not (d.source_type == "image" and d.boot_index == 0)]
    overridden = {d.device_name for d in requested if d.device_name is not None}
    merged = [d for d in image_defined if d.device_name not in overridden] + requested

    devices: list[BootDevice] = []
    boot_indexes: list[int] = []
    local_root = False
    for item in merged:
        if item.boot_index is not None:
            boot_indexes.append(item.boot_index)
        if item.destination_type == "local":
            if item.source_type == "image" and item.boot_index == 0:
                local_root = True
                if not image_ref or item.uuid != image.id:
                    raise invalid("Mapping image to local is not supported.")
            continue  # ephemeral and swap disks come from the flavor
        device = BootDevice(source_type=item.source_type, uuid=item.uuid, boot_index=item.boot_index,
                            volume_size=item.volume_size, delete_on_termination=item.delete_on_termination,
                            device_name=item.device_name, disk_bus=item.disk_bus, device_type=item.device_type,
                            tag=item.tag, volume_type=item.volume_type)
        _resolve(actor, device, count=count)
        devices.append(device)
    if sorted(boot_indexes) != list(range(len(boot_indexes))) or (boot_indexes and 0 not in boot_indexes):
        raise invalid("Boot sequence for the instance and image/block device mapping combination is not valid.")
    roots = [d for d in devices if d.boot_index == 0]
    if not roots and not local_root and not image_ref:
        raise BadRequest("Missing imageRef attribute")
    if roots:
        roots[0].device_name = ROOT_DEVICE
        if image is not None and image.status != "active":
            raise BadRequest(f"Image {image.id} is not active.")
    elif image is not None:
        image = check_image(actor, image_ref, flavor, image=image)  # the row read above, as the caller sees it
    elif not image_ref:
        raise invalid("Boot sequence for the instance and image/block device mapping combination is not valid.")
    _name_devices(devices, local=(1 if flavor.ephemeral_gb else 0) + (1 if flavor.swap else 0))
    return BootPlan(image=image, image_id=image.id if image is not None else "", devices=devices)


def _resolve(actor: Actor, device: BootDevice, *, count: int) -> None:
    """The device's source, as the caller may use it (Nova's InvalidBDM* messages)."""
    from apps.images import selectors as image_selectors
    from apps.volumes import selectors as volume_selectors
    from apps.volumes import states as volume_states

    if device.source_type == "volume":
        try:
            device.volume = volume_selectors.volume_get(actor=actor, volume_id=device.uuid)
        except StratusError:
            raise invalid(f"failed to get volume {device.uuid}.") from None
        if device.volume.status != volume_states.AVAILABLE:
            raise BadRequest(f"Invalid volume: volume '{device.volume.id}' status must be 'available'. Currently in "
                             f"'{device.volume.status}'")
        if device.boot_index == 0 and not device.volume.bootable:
            raise invalid(f"Block Device {device.volume.id} is not bootable.")
        if count > 1:
            raise BadRequest("Cannot attach one or more volumes to multiple instances")
        device.volume_size = device.volume.size
    elif device.source_type == "snapshot":
        try:
            device.snapshot = volume_selectors.snapshot_get(actor=actor, snapshot_id=device.uuid)
        except StratusError:
            raise invalid(f"failed to get snapshot {device.uuid}.") from None
        device.volume_size = device.volume_size or device.snapshot.size
        if device.volume_size < device.snapshot.size:
            raise invalid(f"Volume size {device.volume_size} is smaller than the snapshot size "
                           f"{device.snapshot.size}.")
    elif device.source_type == "image":
        try:
            device.image = image_selectors.image_get(actor=actor, image_id=device.uuid)
        except StratusError:
            raise BadRequest(f"Image {device.uuid} could not be found.") from None
        if device.image.status != "active":
            raise BadRequest(f"Image {device.image.id} is not active.")
        if not device.volume_size:
            raise invalid("Images with destination_type 'volume' need to have a non-zero size specified")
        needed = max(device.image.min_disk or 0, math.ceil((device.image.virtual_size or device.image.size or 0) / GiB))
        if device.volume_size * GiB < needed * GiB:
            raise BadRequest(f"Volume is smaller than the minimum size specified in image metadata. Volume size is "
                             f"{device.volume_size * GiB} bytes, minimum size is {needed * GiB} bytes.")
    elif not device.volume_size:
        raise invalid("Blank volumes (source: 'blank', dest: 'volume') need to have non-zero size")


def _name_devices(devices: list[BootDevice], *, local: int) -> None:
    """Device names: the root is /dev/vda; a name asked for twice, or one of the flavor's local disks
    (named in order behind the root by the node), is a 400; the others get the next free /dev/vdX."""
    reserved = {f"vd{letter}" for letter in LETTERS[:1 + local]}
    taken: set[str] = set()
    for device in devices:
        if device.boot_index == 0:
            taken.add(_short(ROOT_DEVICE))
            continue
        if device.device_name:
            if _short(device.device_name) in taken or _short(device.device_name) in reserved:
                raise BadRequest(f"The supplied device path ({device.device_name}) is in use.")
            taken.add(_short(device.device_name))
    for device in devices:
        if not device.device_name:
            device.device_name = next_free_device(taken, local=local)
            taken.add(_short(device.device_name))


def next_free_device(taken: Iterable[str], *, local: int) -> str:
    """The first /dev/vdX not in ``taken`` and not one of the ``local`` disks after the root."""
    used = {_short(t) for t in taken} | {f"vd{letter}" for letter in LETTERS[:1 + local]}
    for letter in LETTERS:
        if f"vd{letter}" not in used:
            return f"/dev/vd{letter}"
    raise invalid("The maximum allowed number of disk devices to attach to a single instance has been exceeded.")


# ---- create --------------------------------------------------------------------------------------

def _logged(call: Callable[[], object], message: str, *args: object) -> None:
    """``call`` in a savepoint; a refusal is logged, not raised (what releases a server goes on)."""
    try:
        with transaction.atomic():
            call()
    except StratusError:
        log.exception(message, *args)


def _nova_quota(exc: QuotaExceeded) -> StratusError:
    from apps.compute.services import NovaQuotaExceeded

    return NovaQuotaExceeded(f"Quota exceeded for {exc.resource}: {exc.message}", resource=exc.resource,
                             limit=exc.limit, in_use=exc.in_use, requested=exc.requested)


def boot_volumes_create(*, actor: Actor, instance: Instance, plan: BootPlan) -> list[BlockDeviceMapping]:
    """The server's volumes (inside server_create's transaction): new ones made through the volume
    services (the storage agent builds them on commit), given ones reserved; one mapping each. Over a
    volume quota is Nova's 403."""
    from apps.volumes import services as volume_services

    rows = []
    for device in plan.devices:
        attachment_id = None
        try:
            if device.source_type == "volume":
                volume = device.volume
                attachment_id = volume_services.volume_reserve(actor=actor, volume_id=volume.id,
                                                               server_id=instance.id).id
            else:
                volume = volume_services.volume_create(
                    actor=actor, size=device.volume_size, name="", description="",
                    snapshot_id=device.snapshot.id if device.snapshot is not None else None,
                    image_id=device.image.id if device.image is not None else None, volume_type=device.volume_type)
        except QuotaExceeded as exc:
            raise _nova_quota(exc) from None
        except NotFound as exc:
            raise BadRequest(exc.message) from None
        name = device.device_name or ROOT_DEVICE
        rows.append(BlockDeviceMapping.objects.create(
            instance=instance, volume_id=volume.id, attachment_id=attachment_id, device_name=name,
            boot_index=device.boot_index, source_type=device.source_type,
            image_id=device.image.id if device.image is not None else None,
            snapshot_id=device.snapshot.id if device.snapshot is not None else None,
            volume_size=device.volume_size or volume.size, disk_bus=device.disk_bus, device_type=device.device_type,
            delete_on_termination=device.delete_on_termination, tag=device.tag, status=ATTACHING))
    return rows


def boot_volumes_check(*, instance: Instance) -> tuple[str, str]:
    """Where the server's new volumes are (on the instance's locked row): ("ready", "") when every
    one is reserved for it (each reserved here once available), ("waiting", "") while one is being
    made, ("failed", why) when one went to error or vanished."""
    from apps.volumes import services as volume_services
    from apps.volumes import states as volume_states
    from apps.volumes.models import Volume

    actor = _service_actor(instance.project_id, instance.user_id)
    waiting = False
    for bdm in BlockDeviceMapping.objects.filter(instance=instance, status=ATTACHING, attachment_id__isnull=True):
        volume = Volume.objects.filter(pk=bdm.volume_id).first()
        if volume is None:
            return "failed", f"Volume {bdm.volume_id} of the server was deleted before the server was built."
        if volume.status == volume_states.CREATING:
            waiting = True
            continue
        if volume.status != volume_states.AVAILABLE:
            reason = f" ({volume.status_reason})" if volume.status_reason else ""
            return "failed", (f"Volume {volume.id} did not finish being created. And its status is "
                              f"{volume.status}{reason}.")
        bdm.attachment_id = volume_services.volume_reserve(actor=actor, volume_id=volume.id,
                                                           server_id=instance.id).id
        bdm.save(update_fields=["attachment_id", "updated_at"])
    return ("waiting", "") if waiting else ("ready", "")


def boot_volumes_attached(*, instance: Instance, host: str) -> None:
    """The server is ACTIVE: its boot-time volumes are in-use, attached to it on ``host``."""
    from apps.volumes import services as volume_services

    for bdm in BlockDeviceMapping.objects.filter(instance=instance, status=ATTACHING, attachment_id__isnull=False):
        try:
            volume_services.volume_attach(volume_id=bdm.volume_id, attachment_id=bdm.attachment_id,
                                          server_id=instance.id, host_name=host, device=bdm.device_name)
        except StratusError:
            log.exception("could not mark volume %s attached to %s", bdm.volume_id, instance.id)
            continue
        bdm.status = ATTACHED
        bdm.save(update_fields=["status", "updated_at"])


# ---- delete ----------------------------------------------------------------------------------------

def server_volumes_release(*, instance: Instance) -> None:
    """At the server's end: every volume it holds is detached (available again, its attachment
    gone) and those marked ``delete_on_termination`` are deleted through the volume services (the
    storage agent removes their files); the mappings go. A volume the services refuse (busy) is
    logged and left to its owner."""
    from apps.volumes import services as volume_services
    from apps.volumes import states as volume_states
    from apps.volumes.models import Volume, VolumeAttachment

    actor = _service_actor(instance.project_id, instance.user_id)
    for bdm in list(BlockDeviceMapping.objects.filter(instance=instance).order_by("id")):
        try:
            with transaction.atomic():
                volume = Volume.objects.select_for_update().filter(pk=bdm.volume_id).first()
                attachments = VolumeAttachment.objects.filter(volume_id=bdm.volume_id, server_id=instance.id)
                if bdm.attachment_id:
                    attachments = attachments | VolumeAttachment.objects.filter(pk=bdm.attachment_id)
                for attachment in (attachments.distinct() if volume is not None else []):
                    if volume.status == volume_states.IN_USE:
                        volume_services.volume_begin_detaching(volume_id=volume.id)
                        volume_services.volume_detach(volume_id=volume.id, attachment_id=attachment.id)
                    elif volume.status == volume_states.DETACHING:
                        volume_services.volume_detach(volume_id=volume.id, attachment_id=attachment.id)
                    else:
                        volume_services.volume_unreserve(volume_id=volume.id, attachment_id=attachment.id)
                    volume.refresh_from_db()
        except StratusError:
            log.exception("could not detach volume %s from server %s", bdm.volume_id, instance.id)
            volume = None
        if volume is not None and bdm.delete_on_termination:
            if volume.status == volume_states.CREATING:
                # not deletable yet: the row stays, and the periodic sweep (deleted_servers_volumes_release)
                # deletes the volume once its agent has made it
                log.info("volume %s of deleted server %s is still being made", volume.id, instance.id)
                continue
            _logged(lambda volume_id=volume.id: volume_services.volume_delete(actor=actor, volume_id=volume_id),
                    "could not delete volume %s of server %s", volume.id, instance.id)
        bdm.delete()


def deleted_servers_volumes_release() -> int:
    """The volumes deleted servers still hold (one that was being made when its server went):
    released now if they are made (periodic, with the build timeouts). Returns how many servers."""
    instance_ids = list(BlockDeviceMapping.objects.filter(instance__deleted=True)
                        .values_list("instance_id", flat=True).distinct())
    for instance in Instance.objects.filter(pk__in=instance_ids):
        with transaction.atomic():
            server_volumes_release(instance=instance)
    return len(instance_ids)


# ---- createImage of a volume-backed server -----------------------------------------------------------

def volume_snapshots_create(*, actor: Actor, instance: Instance, name: str) -> list[dict[str, Any]]:
    """A snapshot (forced: the volumes are in use) of every volume of the server, and the mappings an
    image carries to boot new volumes from them (Nova's ``block_device_mapping`` image property)."""
    from apps.volumes import services as volume_services

    service = _service_actor(instance.project_id, actor.user_id)
    mappings = []
    for bdm in BlockDeviceMapping.objects.filter(instance=instance).exclude(status=DETACHING).order_by(
            "boot_index", "id"):
        try:
            snapshot = volume_services.snapshot_create(actor=service, volume_id=bdm.volume_id, force=True,
                                                       name=f"snapshot for {name}")
        except QuotaExceeded as exc:
            raise _nova_quota(exc) from None
        mappings.append({
            "source_type": "snapshot", "destination_type": "volume", "snapshot_id": snapshot.id,
            "volume_id": None, "image_id": None, "boot_index": bdm.boot_index, "volume_size": snapshot.size,
            "delete_on_termination": bdm.delete_on_termination, "device_name": bdm.device_name,
            "disk_bus": bdm.disk_bus, "device_type": bdm.device_type or "disk", "tag": bdm.tag,
            "guest_format": None, "no_device": None, "volume_type": None})
    return mappings


def volume_snapshots_check(*, image: Any) -> tuple[str, str]:
    """("ready", "") when every snapshot an image points at is available, ("waiting", "") while one
    is being made, ("failed", why) when one is in error or gone."""
    from apps.volumes import states as volume_states
    from apps.volumes.models import Snapshot

    waiting = False
    for mapping in _image_bdms(image):
        snapshot_id = mapping.get("snapshot_id")
        if not snapshot_id:
            continue
        snapshot = Snapshot.objects.filter(pk=snapshot_id).first()
        if snapshot is None:
            return "failed", f"Snapshot {snapshot_id} was deleted while it was made."
        if snapshot.status == volume_states.CREATING:
            waiting = True
        elif snapshot.status != volume_states.AVAILABLE:
            return "failed", f"Snapshot {snapshot.id} of volume {snapshot.volume_id} is {snapshot.status}."
    return ("waiting", "") if waiting else ("ready", "")


def volume_snapshots_drop(*, image: Any, instance: Instance) -> None:
    """A failed createImage of a volume-backed server: the volume snapshots its image points at are
    deleted (those still being made or already gone are left to their owner). Only snapshots of the
    server's own volumes, in its project, and as a member of that project (never an admin): an image's
    mappings are data, and must not make Nova delete what is not the server's."""
    from apps.volumes import services as volume_services
    from apps.volumes import states as volume_states
    from apps.volumes.models import Snapshot

    own_volumes = set(BlockDeviceMapping.objects.filter(instance=instance).values_list("volume_id", flat=True))
    member = Actor(user=User(id=instance.user_id or "nova"), project=Project(id=instance.project_id),
                   roles=frozenset({"member"}))
    for mapping in _image_bdms(image):
        snapshot = Snapshot.objects.filter(pk=str(mapping.get("snapshot_id") or ""), project_id=instance.project_id,
                                           volume_id__in=own_volumes).first()
        if snapshot is None or snapshot.status not in (volume_states.AVAILABLE, volume_states.ERROR):
            continue
        _logged(lambda snapshot_id=snapshot.id: volume_services.snapshot_delete(actor=member, snapshot_id=snapshot_id),
                "could not delete snapshot %s of the failed image %s", snapshot.id, image.id)
