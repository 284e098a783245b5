"""Upload a volume to an image (Cinder's ``os-volume_upload_image``): a new Glance image, made through
the images services, filled by the volume's storage node with a copy of the volume's data in the disk
format asked for. The volume is ``uploading`` meanwhile and goes back to what it was (``available``,
or ``in-use`` for a forced upload of an attached volume) whatever the outcome; a failed upload deletes
the image (as Cinder does), with the failure as the volume's ``status_reason``.

The node's task (``workers.storage.upload_volume``, no database and no image store credentials on the
node) converts the volume's qcow2 file and streams it to the image API with the write URL the control tier
signed for this image and this node (given in its message; the image upload path: size cap, the owner's
quota, format inspector, checksums), then reports the size and md5 it sent to the control tier
(``workers.storage_control.volume_upload_stored``): ``volume_upload_finish`` checks the image holds
exactly that and ends in ``volume_uploaded``, or ``volume_upload_failed`` on any failure (the node's own
failure is reported to ``volume_upload_failed`` directly)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from apps.core.errors import BadRequest, NotFound, StratusError, named
from apps.identity.models import Project, User
from apps.identity.policy import Actor
from apps.volumes import states
from apps.volumes.models import Volume
from apps.volumes.services.common import _enqueue, _lock_volume, _move, _publish, _writable_volume

log = logging.getLogger(__name__)

# what the storage node can write (qemu-img) and the image services inspect (Cinder's list, but ploop)
UPLOAD_DISK_FORMATS = ("raw", "qcow2", "vmdk", "vdi", "vhd", "vhdx")
UPLOAD_CONTAINER_FORMATS = ("bare",)
UPLOAD_VISIBILITIES = ("private", "shared", "community", "public")
# the volume's image metadata that are the image's own attributes, not properties to carry over
_NOT_CARRIED = {"image_id", "image_name", "checksum", "container_format", "disk_format", "min_disk", "min_ram",
                "size"}


@dataclass(frozen=True)
class VolumeUpload:
    """What ``volume_upload_to_image`` started: the volume (now uploading) and the new image."""

    volume: Volume
    image: Any
    image_name: str
    disk_format: str
    container_format: str
    visibility: str
    protected: bool


def _carried_properties(volume: Volume) -> dict[str, str]:
    """The volume's image metadata (from the image it was made of) that the new image keeps, as
    Cinder copies volume_glance_metadata: free-form string properties only."""
    from apps.images.services import is_property_key

    return {key: value for key, value in (volume.image_metadata or {}).items()
            if key not in _NOT_CARRIED and isinstance(value, str) and is_property_key(key)}


@transaction.atomic
def volume_upload_to_image(*, actor: Actor, volume_id: str, image_name: str, force: bool = False,
                           disk_format: str = "raw", container_format: str = "bare", visibility: str = "private",
                           protected: bool = False) -> VolumeUpload:
    """A new image (queued, the caller's project's) that the volume's storage node fills with a copy
    of the volume. Only an available volume, or an in-use one when ``force``d (its data is read as it
    is). ``protected`` is set once the data is in, so a failed upload's image can go."""
    from apps.images import services as image_services

    volume = _writable_volume(actor, volume_id)
    if not image_name or not image_name.strip():
        raise BadRequest("Invalid input: image_name must not be empty.")
    if disk_format not in UPLOAD_DISK_FORMATS:
        raise BadRequest(f"Invalid disk-format '{disk_format}' specified: it must be one of "
                         f"{', '.join(UPLOAD_DISK_FORMATS)}.")
    if container_format not in UPLOAD_CONTAINER_FORMATS:
        raise BadRequest(f"Invalid container-format '{container_format}': only 'bare' holds a volume's disk.")
    if visibility not in UPLOAD_VISIBILITIES:
        raise BadRequest(f"Invalid visibility '{visibility}': it must be one of {', '.join(UPLOAD_VISIBILITIES)}.")
    if volume.status == states.IN_USE and not force:
        raise BadRequest(f"Invalid volume: Volume {volume.id} status must be available to upload it to an image "
                         f"(or in-use with force), but current status is: in-use.", names=named(volume))
    if volume.status not in (states.AVAILABLE, states.IN_USE):
        raise BadRequest(f"Invalid volume: Volume {volume.id} status must be available or in-use to upload it "
                         f"to an image, but current status is: {volume.status}.", names=named(volume))
    if volume.backend_id is None:
        raise BadRequest(f"Invalid volume: Volume {volume.id} has no data on any storage backend.", names=named(volume))
    min_ram = (volume.image_metadata or {}).get("min_ram", "0")
    image = image_services.image_create(
        actor=actor, name=image_name, disk_format=disk_format, container_format=container_format,
        visibility=visibility, min_disk=volume.size, min_ram=int(min_ram) if str(min_ram).isdigit() else 0,
        properties=_carried_properties(volume))
    from apps.images.selectors import image_node_url

    was = volume.status
    _move(volume, states.UPLOADING, action="upload to image")
    _enqueue("upload_volume", volume.backend.host, actor=actor, target=volume, volume_id=volume.id,
             image_id=image.id, disk_format=disk_format, restore=was, protected=protected,
             upload_url=image_node_url(image_id=image.id, purpose="write", node=volume.backend.host))
    _publish(volume, "state", "volume")
    return VolumeUpload(volume=volume, image=image, image_name=image_name, disk_format=disk_format,
                        container_format=container_format, visibility=visibility, protected=protected)


def _image_owner(image: Any, volume_user_id: str) -> Actor:
    """The image's owner as a member of its project: the node's data is stored as them."""
    return Actor(user=User(id=volume_user_id or "cinder"), project=Project(id=image.owner),
                 roles=frozenset({"member"}))


def _uploading(volume_id: str, image_id: str, host: str | None = None) -> tuple[Volume, Any]:
    """The volume uploading to the image (``host``: the reporting node, which must hold the volume)."""
    from apps.images.models import Image

    volume = Volume.objects.select_related("backend").filter(pk=volume_id, status=states.UPLOADING).first()
    image = Image.objects.filter(pk=image_id).first()
    if volume is None or image is None:
        raise NotFound(f"Volume {volume_id} is not uploading to image {image_id}.")
    if host is not None and (volume.backend is None or volume.backend.host != host):
        log.warning("storage node %s reported on the upload of volume %s, which is not on it: ignored", host,
                    volume_id)
        raise NotFound(f"Volume {volume_id} is not on storage node {host}.")
    return volume, image


def _restore(volume_id: str, restore: str, *, reason: str = "") -> bool:
    """The volume back from ``uploading`` to ``restore`` (in-use only while it is still attached)."""
    volume = _lock_volume(volume_id)
    if volume.status != states.UPLOADING:
        return False
    target = states.IN_USE if restore == states.IN_USE and volume.attachments.exists() else states.AVAILABLE
    _move(volume, target, action="finish uploading", reason=reason)
    _publish(volume, "state", "volume")
    return True


@transaction.atomic
def volume_uploaded(*, volume_id: str, image_id: str, restore: str, protected: bool,
                    host: str | None = None) -> bool:
    """The node stored the image's data: the image gets ``protected`` as asked, the volume is back."""
    from apps.images import services as image_services
    from apps.images.services import PatchOperation

    try:
        volume, image = _uploading(volume_id, image_id, host)
    except NotFound:
        return False
    if protected:
        image_services.image_update(actor=_image_owner(image, volume.user_id), image_id=image.id,
                                    operations=[PatchOperation(op="replace", key="protected", value=True)])
    return _restore(volume_id, restore)


@transaction.atomic
def volume_upload_failed(*, volume_id: str, image_id: str, restore: str, reason: str,
                         host: str | None = None) -> bool:
    """The upload failed: the image goes (nothing half made stays), the volume is back with the reason."""
    from apps.images import services as image_services

    try:
        volume, image = _uploading(volume_id, image_id, host)
    except NotFound:
        return False
    try:
        image_services.image_delete(actor=_image_owner(image, volume.user_id), image_id=image.id)
    except StratusError as exc:  # already gone, or changed meanwhile: the volume is restored all the same
        log.warning("the image %s of a failed upload of volume %s was not deleted: %s", image.id, volume.id, exc)
    return _restore(volume_id, restore, reason=f"Upload to image {image.id} failed: {reason}")


def volume_upload_finish(*, volume_id: str, image_id: str, host: str, size: int, checksum: str, restore: str,
                         protected: bool) -> bool:
    """The node ``host`` streamed the volume's copy into image ``image_id`` through the image API
    (``size`` bytes, md5 ``checksum``, as it counted them): the image must hold exactly that, then
    ``volume_uploaded``; otherwise ``volume_upload_failed``. False when the report changes nothing
    (applied already, the volume no longer uploading, or not on ``host``)."""
    from apps.images.models import Image

    try:
        _uploading(volume_id, image_id, host)
    except NotFound:
        return False
    stored = Image.objects.filter(pk=image_id, status=Image.ACTIVE).values_list("size", "checksum").first()
    if stored != (size, checksum):
        log.warning("the upload of volume %s to image %s: the image holds %s, the node sent %s", volume_id, image_id,
                    stored, (size, checksum))
        return volume_upload_failed(volume_id=volume_id, image_id=image_id, restore=restore, host=host,
                                    reason=f"the image holds {stored[0] if stored else 0} bytes (md5 "
                                           f"{stored[1] if stored else ''}), not the {size} bytes (md5 {checksum}) "
                                           f"the storage node sent")
    return volume_uploaded(volume_id=volume_id, image_id=image_id, restore=restore, protected=protected, host=host)
