"""OS::Cinder::Volume and OS::Cinder::VolumeAttachment over apps/volumes' and apps/compute's services
(never their tables), as the stack's owner: a volume is made by ``volume_create`` and the resource waits
until the storage agent made it (available; error fails it); its name, description and metadata change
in place and a larger size extends it (``volume_extend``); an attachment is Nova's
``server_volume_attach`` (waits for in-use) and its delete Nova's detach (waits until the volume is
free). A delete of what is already gone succeeds. The custom constraint ``cinder.volume`` is here."""
from __future__ import annotations

from typing import Any

from apps.orchestration.engine.parameters import custom_constraints
from apps.orchestration.plugins.base import (
    BOOLEAN,
    INTEGER,
    LIST,
    MAP,
    STRING,
    Attr,
    Outcome,
    Plugin,
    Prop,
    ResourceFailed,
    register,
)
from apps.orchestration.plugins.nova_common import _failed, _lookup, _string_map, image_id

# statuses a volume passes through while an agent works on it: its delete waits for them to end
BUSY = frozenset({"creating", "reserved", "attaching", "detaching", "extending", "uploading", "deleting",
                  "downloading", "backing-up", "restoring-backup"})


def _volume(actor: Any, volume_id: str) -> Any:
    from apps.volumes import selectors

    return selectors.volume_get(actor=actor, volume_id=volume_id)


def volume_attributes(actor: Any, volume: Any) -> dict[str, Any]:
    from apps.volumes import selectors

    attachments = [{"id": a.id, "server_id": a.server_id, "device": a.device, "attachment_id": a.id,
                    "volume_id": volume.id, "host_name": a.host_name} for a in volume.attachments.all()]
    metadata = selectors.volume_metadata(actor=actor, volume_id=volume.id)
    return {"size": volume.size, "status": volume.status, "display_name": volume.name,
            "display_description": volume.description, "volume_type": volume.volume_type.name,
            "availability_zone": volume.availability_zone, "bootable": volume.bootable,
            "snapshot_id": volume.snapshot_id, "source_volid": volume.source_volid,
            "created_at": volume.created_at.isoformat() if getattr(volume, "created_at", None) else None,
            "metadata": metadata, "metadata_values": metadata, "encrypted": False,
            "attachments": attachments, "attachments_list": attachments,
            "show": {"id": volume.id, "name": volume.name, "status": volume.status, "size": volume.size,
                     "volume_type": volume.volume_type.name, "metadata": metadata, "attachments": attachments,
                     "availability_zone": volume.availability_zone, "bootable": str(volume.bootable).lower()}}


@register
class Volume(Plugin):
    type_name = "OS::Cinder::Volume"
    description = "A resource that implements Cinder volumes."
    needs_actor = True
    properties_schema = {
        "size": Prop(INTEGER, "The size of the volume in GB (a larger size extends it in place).", min=1,
                     update_allowed=True),
        "name": Prop(STRING, "A name used to distinguish the volume.", update_allowed=True),
        "description": Prop(STRING, "A description of the volume.", update_allowed=True),
        "image": Prop(STRING, "If specified, the name or ID of the image to create the volume from."),
        "snapshot_id": Prop(STRING, "If specified, the snapshot to create the volume from."),
        "source_volid": Prop(STRING, "If specified, the volume to use as source."),
        "volume_type": Prop(STRING, "If specified, the type of volume to use, mapping to a specific backend."),
        "availability_zone": Prop(STRING, "The availability zone in which the volume will be created."),
        "metadata": Prop(MAP, "Key/value pairs to associate with the volume.", default={}, update_allowed=True),
        "bootable": Prop(BOOLEAN, "Bootable flag for the volume."),
        "backup_id": Prop(STRING, "If specified, the backup to create the volume from (not offered)."),
        "read_only": Prop(BOOLEAN, "Enables or disables read-only access mode of volume (not offered)."),
        "multiattach": Prop(BOOLEAN, "Whether allow the volume to be attached more than once (not offered)."),
    }
    attributes_schema = {
        "size": Attr("The size of the volume in GB.", INTEGER),
        "status": Attr("The current status of the volume."),
        "display_name": Attr("Name of the volume."),
        "display_description": Attr("Description of the volume."),
        "volume_type": Attr("The type of the volume mapping to a backend, if any."),
        "availability_zone": Attr("The availability zone in which the volume is located."),
        "bootable": Attr("Boolean indicating if the volume can be booted or not.", BOOLEAN),
        "snapshot_id": Attr("The snapshot the volume was created from, if any."),
        "source_volid": Attr("The volume used as source, if any."),
        "created_at": Attr("The timestamp indicating volume creation."),
        "metadata": Attr("Key/value pairs associated with the volume.", MAP),
        "metadata_values": Attr("Key/value pairs associated with the volume in raw dict form.", MAP),
        "encrypted": Attr("Boolean indicating if the volume is encrypted or not.", BOOLEAN),
        "attachments": Attr("The list of attachments of the volume.", LIST),
        "attachments_list": Attr("The list of attachments of the volume.", LIST),
    }

    def create(self, props: dict[str, Any]) -> Outcome:
        from apps.core.errors import StratusError
        from apps.volumes import services

        if props.get("backup_id"):
            raise ResourceFailed("NotSupported: volumes from backups are not offered by this cloud.")
        actor = self.context.actor
        try:
            volume = services.volume_create(
                actor=actor, size=props.get("size"), name=props.get("name") or self.context.physical_name(),
                description=props.get("description"), volume_type=props.get("volume_type") or None,
                snapshot_id=props.get("snapshot_id") or None, source_volid=props.get("source_volid") or None,
                image_id=image_id(actor, props["image"]) if props.get("image") else None,
                metadata=_string_map(props.get("metadata")) or None,
                availability_zone=props.get("availability_zone") or None, bootable=props.get("bootable"))
        except StratusError as exc:
            raise _failed(exc) from None
        return Outcome(physical_id=volume.id, data={"volume_id": volume.id}, done=False, retry_after=1.0)

    def _wait(self, volume_id: str, data: dict[str, Any], *, doing: str) -> Outcome:
        from apps.core.errors import NotFound

        try:
            volume = _volume(self.context.actor, volume_id)
        except NotFound:
            raise ResourceFailed(f"NotFound: Volume {volume_id} could not be found.") from None
        if volume.status in ("available", "in-use"):
            return Outcome(physical_id=volume_id, data=data,
                           attributes=volume_attributes(self.context.actor, volume))
        if volume.status.startswith("error"):
            raise ResourceFailed(f"ResourceInError: resources.{self.context.resource_name}: Went to status "
                                 f"{volume.status} due to \"{doing} failed\"")
        return Outcome(physical_id=volume_id, data=data, done=False, retry_after=1.0)

    def check_create_complete(self, props: dict[str, Any], data: dict[str, Any]) -> Outcome:  # noqa: ARG002
        return self._wait(data["volume_id"], data, doing="create")

    def update(self, physical_id: str, data: dict[str, Any], old: dict[str, Any], new: dict[str, Any]) -> Outcome:
        """Name, description and metadata through ``volume_update``; a larger size through
        ``volume_extend`` (a smaller one is refused, as Heat refuses it)."""
        from apps.core.errors import StratusError
        from apps.core.validators import UNSET
        from apps.volumes import services

        actor = self.context.actor
        changes: dict[str, Any] = {}
        if old.get("name") != new.get("name"):
            changes["name"] = new.get("name") or self.context.physical_name()
        if old.get("description") != new.get("description"):
            changes["description"] = new.get("description")
        if old.get("metadata") != new.get("metadata"):
            changes["metadata"] = _string_map(new.get("metadata"))
        try:
            if changes:
                services.volume_update(actor=actor, volume_id=physical_id,
                                       **{k: changes.get(k, UNSET) for k in ("name", "description", "metadata")})
            new_size, old_size = new.get("size"), old.get("size")
            if new_size is not None and new_size != old_size:
                current = _volume(actor, physical_id).size
                if new_size < current:
                    raise ResourceFailed(f"NotSupported: Shrinking volume is not supported ({current} GB to "
                                         f"{new_size} GB).")
                if new_size > current:
                    services.volume_extend(actor=actor, volume_id=physical_id, new_size=new_size)
        except StratusError as exc:
            raise _failed(exc) from None
        return Outcome(physical_id=physical_id, data=data, done=False)

    def check_update_complete(self, physical_id: str, data: dict[str, Any], new: dict[str, Any]) -> Outcome:  # noqa: ARG002
        return self._wait(physical_id, data, doing="update")

    def delete(self, physical_id: str, data: dict[str, Any]) -> bool:  # noqa: ARG002
        """Delete the volume once it is settled: one still being made, attached, detached or extended
        (a rollback while the storage agent works) is waited for, not refused."""
        if not physical_id:
            return True
        return self._delete(physical_id, retry=True)

    def check_delete_complete(self, physical_id: str, data: dict[str, Any]) -> bool:  # noqa: ARG002
        return self._delete(physical_id, retry=False)

    def _delete(self, physical_id: str, *, retry: bool) -> bool:
        """One step of the delete: gone → True; settled → ``volume_delete`` asked; busy → wait. A volume
        in error_deleting is asked again at the start of a delete (``retry``), else it fails the delete."""
        from apps.core.errors import NotFound, StratusError
        from apps.volumes import services

        try:
            volume = _volume(self.context.actor, physical_id)
            if volume.status == "error_deleting" and not retry:
                raise ResourceFailed(f"ResourceInError: Volume {physical_id} went to status error_deleting.")
            if volume.status in BUSY:
                return False
            services.volume_delete(actor=self.context.actor, volume_id=physical_id)
        except NotFound:
            return True  # gone (or never was)
        except StratusError as exc:
            raise _failed(exc) from None
        return False

    def check_resource(self, physical_id: str, data: dict[str, Any]) -> None:  # noqa: ARG002
        from apps.core.errors import NotFound

        try:
            volume = _volume(self.context.actor, physical_id)
        except NotFound:
            raise ResourceFailed(f"NotFound: Volume {physical_id} could not be found.") from None
        if volume.status.startswith("error"):
            raise ResourceFailed(f"Error: Volume {physical_id} is in status {volume.status}.")

    def refreshed_attributes(self, physical_id: str, data: dict[str, Any]) -> dict[str, Any] | None:  # noqa: ARG002
        from apps.core.errors import NotFound

        try:
            return volume_attributes(self.context.actor, _volume(self.context.actor, physical_id))
        except NotFound:
            return None


@register
class VolumeAttachment(Plugin):
    type_name = "OS::Cinder::VolumeAttachment"
    description = "Attaches a volume to a server (Nova's os-volume_attachments)."
    needs_actor = True
    properties_schema = {
        "instance_uuid": Prop(STRING, "The ID of the server to which the volume attaches.", required=True,
                              update_allowed=True),
        "volume_id": Prop(STRING, "The ID of the volume to be attached.", required=True, update_allowed=True),
        "mountpoint": Prop(STRING, "The location where the volume is exposed on the instance (chosen by the "
                                   "compute service when not given).", update_allowed=True),
    }

    def create(self, props: dict[str, Any]) -> Outcome:
        from apps.compute.services import volumes
        from apps.core.errors import StratusError

        server_id, volume_id = props["instance_uuid"], props["volume_id"]
        try:
            bdm = volumes.server_volume_attach(actor=self.context.actor, server_id=server_id, volume_id=volume_id,
                                               device=props.get("mountpoint") or None)
        except StratusError as exc:
            raise _failed(exc) from None
        return Outcome(physical_id=bdm.attachment_id or f"{server_id}:{volume_id}", done=False,
                       data={"server_id": server_id, "volume_id": volume_id})

    def check_create_complete(self, props: dict[str, Any], data: dict[str, Any]) -> Outcome:  # noqa: ARG002
        from apps.compute.selectors import volumes as bdms
        from apps.core.errors import NotFound

        try:
            bdm = bdms.server_volume_get(actor=self.context.actor, server_id=data["server_id"],
                                         volume_id=data["volume_id"])
            volume = _volume(self.context.actor, data["volume_id"])
        except NotFound:
            raise ResourceFailed(f"Error: Attaching volume {data['volume_id']} to server {data['server_id']} "
                                 f"failed.") from None
        if bdm.status == "attached" and volume.status == "in-use":
            return Outcome(physical_id=bdm.attachment_id or "", data=data,
                           attributes={"device": bdm.device_name, "volume_id": volume.id,
                                       "server_id": data["server_id"]})
        return Outcome(data=data, done=False, retry_after=1.0)

    def delete(self, physical_id: str, data: dict[str, Any]) -> bool:
        from apps.compute.services import volumes
        from apps.core.errors import BadRequest, NotFound, StratusError

        if not data.get("server_id"):
            return True
        try:
            volumes.server_volume_detach(actor=self.context.actor, server_id=data["server_id"],
                                         volume_id=data["volume_id"])
        except NotFound:
            return True  # the server, the volume or the attachment is gone already
        except BadRequest:
            return False  # still attaching, or detaching already: wait, then try again
        except StratusError as exc:
            raise _failed(exc) from None
        return self.check_delete_complete(physical_id, data)

    def check_delete_complete(self, physical_id: str, data: dict[str, Any]) -> bool:
        from apps.compute.selectors import volumes as bdms
        from apps.core.errors import NotFound

        try:
            bdm = bdms.server_volume_get(actor=self.context.actor, server_id=data["server_id"],
                                         volume_id=data["volume_id"])
        except NotFound:
            return True
        if bdm.status == "attached":  # a detach refused earlier (still attaching): ask again
            return self.delete(physical_id, data)
        return False

    # an update moves the attachment in place, as Heat's does: detach from the old server (or volume),
    # wait until it is detached, attach as the new properties say, wait until it is in use. (A replacement
    # would attach the new one first, while the volume is still in use by the old server: refused.)
    def update(self, physical_id: str, data: dict[str, Any], old: dict[str, Any], new: dict[str, Any]) -> Outcome:
        if (old.get("instance_uuid"), old.get("volume_id"), old.get("mountpoint")) == (
                new.get("instance_uuid"), new.get("volume_id"), new.get("mountpoint")):
            return Outcome(physical_id=physical_id, data=data)
        detached = self.delete(physical_id, data)
        return Outcome(physical_id=physical_id, data={**data, "moving": "detached" if detached else "detaching"},
                       done=False, retry_after=1.0)

    def check_update_complete(self, physical_id: str, data: dict[str, Any], new: dict[str, Any]) -> Outcome:
        moving = data.get("moving")
        if moving == "detaching":
            if not self.check_delete_complete(physical_id, data):
                return Outcome(physical_id=physical_id, data=data, done=False, retry_after=1.0)
            moving = "detached"
        if moving == "detached":
            made = self.create(new)
            return Outcome(physical_id=made.physical_id, data={**made.data, "moving": "attaching"}, done=False,
                           retry_after=1.0)
        outcome = self.check_create_complete(new, data)
        if outcome.done:
            outcome.data = {k: v for k, v in outcome.data.items() if k != "moving"}
        return outcome

    def check_resource(self, physical_id: str, data: dict[str, Any]) -> None:  # noqa: ARG002
        from apps.compute.selectors import volumes as bdms
        from apps.core.errors import NotFound

        try:
            bdms.server_volume_get(actor=self.context.actor, server_id=data["server_id"],
                                   volume_id=data["volume_id"])
        except NotFound:
            raise ResourceFailed(f"NotFound: Volume {data.get('volume_id')} is not attached to server "
                                 f"{data.get('server_id')}.") from None


custom_constraints.register("cinder.volume", _lookup(lambda actor, ref: _volume(actor, ref)))
