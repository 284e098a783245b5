"""Attachments, for the compute side and for Cinder's legacy os-attach/os-detach actions and its
attachments API (3.27; complete at 3.44)."""
from __future__ import annotations

from typing import TypedDict

from django.db import transaction
from django.utils import timezone

from apps.core.errors import BadRequest, NotFound, named
from apps.identity.policy import Actor
from apps.volumes import selectors, states
from apps.volumes.models import Volume, VolumeAttachment
from apps.volumes.services.common import _lock_volume, _move, _publish, _writable_volume


@transaction.atomic
def volume_reserve(*, actor: Actor, volume_id: str, server_id: str | None = None) -> VolumeAttachment:
    volume = _writable_volume(actor, volume_id)
    _move(volume, states.RESERVED, action="reserve")
    attachment = VolumeAttachment.objects.create(volume=volume, server_id=server_id, status=states.RESERVED)
    _publish(volume, "state", "volume")
    return attachment


@transaction.atomic
def volume_begin_attaching(*, actor: Actor, volume_id: str) -> Volume:
    """Cinder's legacy ``os-reserve``: available → attaching, with no attachment yet."""
    volume = _writable_volume(actor, volume_id)
    _move(volume, states.ATTACHING, action="reserve")
    _publish(volume, "state", "volume")
    return volume


@transaction.atomic
def volume_roll_attaching(*, actor: Actor, volume_id: str) -> Volume:
    """Cinder's legacy ``os-unreserve``: attaching (with no attachment) → available."""
    volume = _writable_volume(actor, volume_id)
    if volume.status == states.ATTACHING and not volume.attachments.exists():
        _move(volume, states.AVAILABLE, action="unreserve")
        _publish(volume, "state", "volume")
    return volume


@transaction.atomic
def volume_unreserve(*, volume_id: str, attachment_id: str) -> None:
    volume = _lock_volume(volume_id)
    VolumeAttachment.objects.filter(pk=attachment_id, volume=volume).delete()
    if volume.status in (states.RESERVED, states.ATTACHING) and not volume.attachments.exists():
        _move(volume, states.AVAILABLE, action="unreserve")
        _publish(volume, "state", "volume")


@transaction.atomic
def volume_attach(*, volume_id: str, attachment_id: str, server_id: str, host_name: str | None,
                  device: str | None, mode: str = "rw") -> VolumeAttachment:
    volume = _lock_volume(volume_id)
    attachment = VolumeAttachment.objects.filter(pk=attachment_id, volume=volume).first()
    if attachment is None:
        raise NotFound(f"Attachment {attachment_id} could not be found.")
    _move(volume, states.IN_USE, action="attach")
    VolumeAttachment.objects.filter(pk=attachment.pk).update(
        server_id=server_id, host_name=host_name, device=device, attach_mode=mode, status=states.ATTACHED,
        attached_at=timezone.now(), updated_at=timezone.now())
    attachment.refresh_from_db()
    _publish(volume, "state", "volume")
    return attachment


@transaction.atomic
def volume_attaching(*, volume_id: str, attachment_id: str, host_name: str | None) -> VolumeAttachment:
    """The compute node is connecting the volume (Cinder's attachment update with a connector):
    reserved → attaching. A redelivered call finds it attaching already."""
    volume = _lock_volume(volume_id)
    attachment = VolumeAttachment.objects.filter(pk=attachment_id, volume=volume).first()
    if attachment is None:
        raise NotFound(f"Attachment {attachment_id} could not be found.")
    if volume.status != states.ATTACHING:
        _move(volume, states.ATTACHING, action="attach")
        _publish(volume, "state", "volume")
    if attachment.status == states.RESERVED:
        VolumeAttachment.objects.filter(pk=attachment.pk).update(status=states.ATTACHING, host_name=host_name,
                                                                 updated_at=timezone.now())
        attachment.refresh_from_db()
    return attachment


@transaction.atomic
def volume_roll_detaching(*, volume_id: str) -> None:
    """A detach that failed on the compute node: detaching → in-use again (the attachment stays)."""
    volume = _lock_volume(volume_id)
    if volume.status == states.DETACHING:
        _move(volume, states.IN_USE, action="roll back detaching")
        _publish(volume, "state", "volume")


@transaction.atomic
def volume_attach_record(*, actor: Actor, volume_id: str, instance_uuid: str | None, host_name: str | None,
                         mountpoint: str, mode: str = "rw") -> VolumeAttachment:
    """Cinder's legacy ``os-attach``: record that the volume is attached to a server (or a host) at
    ``mountpoint`` (available or attaching → in-use). Bookkeeping only, as in Cinder: the compute
    side plugs disks in through Nova's os-volume_attachments, which keeps its own mapping."""
    volume = _writable_volume(actor, volume_id)
    if volume.status not in (states.AVAILABLE, states.ATTACHING):
        raise BadRequest(f"Invalid volume: Volume {volume.id} status must be available or attaching to attach, "
                         f"but current status is: {volume.status}.", names=named(volume))
    if volume.status == states.AVAILABLE:
        _move(volume, states.ATTACHING, action="attach")
    now = timezone.now()
    attachment = VolumeAttachment.objects.create(volume=volume, server_id=instance_uuid, host_name=host_name,
                                                 device=mountpoint, attach_mode=mode, status=states.ATTACHED,
                                                 attached_at=now)
    _move(volume, states.IN_USE, action="attach")
    _publish(volume, "state", "volume")
    return attachment


@transaction.atomic
def volume_detach_record(*, actor: Actor, volume_id: str, attachment_id: str | None = None) -> None:
    """Cinder's legacy ``os-detach``: the attachment (the only one when none is named) goes; the
    volume is available again once none remains. An attachment a server's block device mapping holds
    is detached through Nova (os-volume_attachments), not here: that is a 400."""
    volume = _writable_volume(actor, volume_id)
    if volume.status not in (states.IN_USE, states.DETACHING):
        raise BadRequest(f"Invalid volume: Volume {volume.id} status must be in-use or detaching to detach, but "
                         f"current status is: {volume.status}.", names=named(volume))
    attachments = list(volume.attachments.all())
    if attachment_id is not None:
        attachments = [a for a in attachments if a.id == attachment_id]
        if not attachments:
            raise NotFound(f"Volume attachment {attachment_id} could not be found.")
    elif len(attachments) != 1:
        raise BadRequest(f"Invalid volume: Volume {volume.id} has {len(attachments)} attachments: name the one "
                         f"to detach.", names=named(volume))
    attachment = attachments[0]
    if _nova_holds(attachment):
        raise BadRequest(f"Invalid volume: Volume {volume.id} is attached to server {attachment.server_id} through "
                         f"the compute API: detach it there.", names=named(volume))
    attachment.delete()
    if volume.status == states.IN_USE:
        _move(volume, states.DETACHING, action="detach")
    _move(volume, states.IN_USE if volume.attachments.exists() else states.AVAILABLE, action="finish detaching")
    _publish(volume, "state", "volume")


# ---- Cinder's attachments API (3.27; complete at 3.44) ---------------------------------------------

class Connector(TypedDict, total=False):
    """What is kept of the connector (os-brick's) of the host that connects a volume: that host."""

    host: str | None


def _writable_attachment(actor: Actor, attachment_id: str) -> tuple[Volume, VolumeAttachment]:
    """The attachment (404 when its volume is not the caller's), its volume locked first."""
    found = selectors.attachment_get(actor=actor, attachment_id=attachment_id)
    volume = _writable_volume(actor, found.volume_id)
    attachment = VolumeAttachment.objects.select_for_update().filter(pk=attachment_id, volume=volume).first()
    if attachment is None:
        raise NotFound(f"Volume attachment {attachment_id} could not be found.")
    return volume, attachment


def _nova_holds(attachment: VolumeAttachment) -> bool:
    from apps.compute.models import BlockDeviceMapping

    return BlockDeviceMapping.objects.filter(attachment_id=attachment.id).exists()


@transaction.atomic
def attachment_create(*, actor: Actor, volume_id: str, instance_uuid: str, connector: Connector | None = None,
                      mode: str = "rw") -> VolumeAttachment:
    """Reserve an available volume for a server (``reserved``); with a connector it is attaching at
    once (the caller then connects it and completes the attachment)."""
    volume = _writable_volume(actor, volume_id)
    _move(volume, states.RESERVED, action="reserve")
    attachment = VolumeAttachment.objects.create(volume=volume, server_id=instance_uuid, attach_mode=mode,
                                                 status=states.RESERVED)
    if connector is not None:
        _move(volume, states.ATTACHING, action="attach")
        VolumeAttachment.objects.filter(pk=attachment.pk).update(status=states.ATTACHING,
                                                                 host_name=connector.get("host"))
        attachment.refresh_from_db()
    _publish(volume, "state", "volume")
    return attachment


@transaction.atomic
def attachment_update(*, actor: Actor, attachment_id: str, connector: Connector) -> VolumeAttachment:
    """The connector of the host that connects the volume: a reserved attachment is attaching now
    (its host recorded); an attaching or attached one records the host again."""
    volume, attachment = _writable_attachment(actor, attachment_id)
    if attachment.status == states.RESERVED:
        if volume.status == states.RESERVED:
            _move(volume, states.ATTACHING, action="attach")
            _publish(volume, "state", "volume")
        attachment.status = states.ATTACHING
    elif attachment.status not in (states.ATTACHING, states.ATTACHED):
        raise BadRequest(f"Invalid volume attachment: attachment {attachment.id} is {attachment.status}.")
    attachment.host_name = connector.get("host") or attachment.host_name
    attachment.save(update_fields=["status", "host_name", "updated_at"])
    return attachment


@transaction.atomic
def attachment_complete(*, actor: Actor, attachment_id: str) -> VolumeAttachment:
    """The host connected the volume: the attachment is attached, the volume in-use."""
    volume, attachment = _writable_attachment(actor, attachment_id)
    if attachment.status == states.ATTACHED:
        return attachment
    if attachment.status != states.ATTACHING:
        raise BadRequest(f"Invalid volume attachment: attachment {attachment.id} is {attachment.status}: update "
                         f"it with a connector first.")
    _move(volume, states.IN_USE, action="attach")
    attachment.status = states.ATTACHED
    attachment.attached_at = timezone.now()
    attachment.save(update_fields=["status", "attached_at", "updated_at"])
    _publish(volume, "state", "volume")
    return attachment


@transaction.atomic
def attachment_delete(*, actor: Actor, attachment_id: str) -> list[VolumeAttachment]:
    """The attachment goes, whatever its status; the volume is available again once none remains.
    One a server's block device mapping holds is Nova's to detach (400). Returns those left."""
    volume, attachment = _writable_attachment(actor, attachment_id)
    if _nova_holds(attachment):
        raise BadRequest(f"Invalid volume: Volume {volume.id} is attached to server {attachment.server_id} through "
                         f"the compute API: detach it there.", names=named(volume))
    attachment.delete()
    left = list(volume.attachments.order_by("created_at", "id"))
    if not left:
        if volume.status == states.IN_USE:
            _move(volume, states.DETACHING, action="detach")
        if volume.status in (states.RESERVED, states.ATTACHING, states.DETACHING):
            _move(volume, states.AVAILABLE, action="detach")
    elif volume.status == states.DETACHING:
        _move(volume, states.IN_USE, action="detach")
    _publish(volume, "state", "volume")
    return left


@transaction.atomic
def volume_begin_detaching(*, volume_id: str) -> None:
    volume = _lock_volume(volume_id)
    _move(volume, states.DETACHING, action="detach")
    _publish(volume, "state", "volume")


@transaction.atomic
def volume_detach(*, volume_id: str, attachment_id: str) -> None:
    volume = _lock_volume(volume_id)
    VolumeAttachment.objects.filter(pk=attachment_id, volume=volume).delete()
    _move(volume, states.IN_USE if volume.attachments.exists() else states.AVAILABLE, action="finish detaching")
    _publish(volume, "state", "volume")
