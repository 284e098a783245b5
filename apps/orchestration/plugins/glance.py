"""OS::Glance::WebImage over apps/images' services, as the stack's owner: the image is registered by
``image_create`` and its data imported with the interoperable ``web-download`` method
(``image_import_web_download``: the image service's URI filtering applies, the data is fetched by its
control-queue task); the resource waits until the image is active, and a failed import (the image back
to queued with ``os_glance_failed_import``) fails it with the import task's reason. Name, visibility,
protection, tags, owner and the free-form properties change in place (``image_update``); a delete of
an image already gone succeeds."""
from __future__ import annotations

from typing import Any

from apps.orchestration.plugins.base import (
    BOOLEAN,
    INTEGER,
    LIST,
    MAP,
    STRING,
    Outcome,
    Plugin,
    Prop,
    ResourceFailed,
    register,
)
from apps.orchestration.plugins.nova_common import _failed, _remove_if_there

DISK_FORMATS = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop")
CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")
VISIBILITIES = ("public", "private", "community", "shared")
# properties that are the image's free-form properties (strings), by their Heat name
PROPERTY_KEYS = ("architecture", "kernel_id", "os_distro", "os_version", "ramdisk_id")


def _properties(props: dict[str, Any]) -> dict[str, str]:
    out = {str(k): "" if v is None else str(v) for k, v in (props.get("extra_properties") or {}).items()}
    out.update({key: str(props[key]) for key in PROPERTY_KEYS if props.get(key) is not None})
    return out


def image_show(image: Any) -> dict[str, Any]:
    """The image as Glance's GET /v2/images/{id} shows it (Heat's ``show`` attribute)."""
    return {"id": image.id, "name": image.name, "status": image.status, "visibility": image.visibility,
            "protected": image.protected, "os_hidden": image.os_hidden, "owner": image.owner,
            "disk_format": image.disk_format, "container_format": image.container_format,
            "min_disk": image.min_disk, "min_ram": image.min_ram, "size": image.size,
            "virtual_size": image.virtual_size, "checksum": image.checksum, "os_hash_algo": image.os_hash_algo,
            "os_hash_value": image.os_hash_value, "tags": list(image.tags or []),
            "created_at": image.created_at.isoformat() if image.created_at else None,
            "updated_at": image.updated_at.isoformat() if image.updated_at else None,
            "file": f"/v2/images/{image.id}/file", "self": f"/v2/images/{image.id}", "schema": "/v2/schemas/image",
            **dict(image.properties or {})}


@register
class WebImage(Plugin):
    type_name = "OS::Glance::WebImage"
    description = "A resource managing images in Glance using web-download import."
    needs_actor = True
    properties_schema = {
        "name": Prop(STRING, "Name for the image. The name of an image is not unique to a Image Service node.",
                     update_allowed=True),
        "id": Prop(STRING, "The image ID. Glance will generate a UUID if not specified."),
        "min_disk": Prop(INTEGER, "Amount of disk space (in GB) required to boot image. Default value is 0 if "
                                  "not specified and means no limit on the disk size.", default=0, min=0),
        "min_ram": Prop(INTEGER, "Amount of ram (in MB) required to boot image. Default value is 0 if not "
                                 "specified and means no limit on the ram size.", default=0, min=0),
        "container_format": Prop(STRING, "Container format of image.", required=True,
                                 allowed_values=CONTAINER_FORMATS),
        "disk_format": Prop(STRING, "Disk format of image.", required=True, allowed_values=DISK_FORMATS),
        "location": Prop(STRING, "URL where the data for this image already resides. For example, if the image "
                                 "data is stored in swift, you could specify \"swift://example.com/container/"
                                 "obj\".", required=True),
        "protected": Prop(BOOLEAN, "Whether the image can be deleted. If the value is True, the image is "
                                   "protected and cannot be deleted.", default=False, update_allowed=True),
        "visibility": Prop(STRING, "Scope of image accessibility.", default="private", update_allowed=True,
                           allowed_values=VISIBILITIES),
        "tags": Prop(LIST, "List of image tags.", default=[], update_allowed=True, schema={"*": Prop(STRING)}),
        "architecture": Prop(STRING, "Operating system architecture.", update_allowed=True),
        "kernel_id": Prop(STRING, "ID of image stored in Glance that should be used as the kernel when booting "
                                  "an AMI-style image.", update_allowed=True),
        "os_distro": Prop(STRING, "The common name of the operating system distribution in lowercase.",
                          update_allowed=True),
        "os_version": Prop(STRING, "Operating system version as specified by the distributor.",
                           update_allowed=True),
        "owner": Prop(STRING, "Owner of the image (an admin may give it to another project).", update_allowed=True),
        "extra_properties": Prop(MAP, "Arbitrary properties to associate with the image.", default={},
                                 update_allowed=True),
        "ramdisk_id": Prop(STRING, "ID of image stored in Glance that should be used as the ramdisk when "
                                   "booting an AMI-style image.", update_allowed=True),
    }
    attributes_schema: dict = {}  # Heat's only attribute for it is ``show`` (every resource's)

    def _image(self, image_id: str) -> Any:
        from apps.images import selectors

        return selectors.image_get(actor=self.context.actor, image_id=image_id)

    def create(self, props: dict[str, Any]) -> Outcome:
        from apps.core.errors import StratusError
        from apps.core.validators import UNSET
        from apps.images import services

        actor = self.context.actor
        try:
            image = services.image_create(
                actor=actor, name=props.get("name") or self.context.physical_name(),
                disk_format=props["disk_format"], container_format=props["container_format"],
                visibility=props.get("visibility") or "private", protected=bool(props.get("protected")),
                min_disk=props.get("min_disk") or 0, min_ram=props.get("min_ram") or 0,
                tags=[str(t) for t in props.get("tags") or []],
                owner=props["owner"] if props.get("owner") else UNSET, image_id=props.get("id") or None,
                properties=_properties(props) or None)
        except StratusError as exc:
            raise _failed(exc) from None
        try:
            services.image_import_web_download(actor=actor, image_id=image.id, uri=props["location"])
        except StratusError as exc:
            try:  # nothing of a refused import stays behind (the resource never had a physical id)
                services.image_delete(actor=actor, image_id=image.id)
            except StratusError:
                pass
            raise _failed(exc) from None
        return Outcome(physical_id=image.id, data={"image_id": image.id}, done=False, retry_after=1.0)

    def check_create_complete(self, props: dict[str, Any], data: dict[str, Any]) -> Outcome:  # noqa: ARG002
        from apps.core.errors import NotFound
        from apps.images import selectors

        image_id = data["image_id"]
        try:
            image = self._image(image_id)
        except NotFound:
            raise ResourceFailed(f"NotFound: Image {image_id} could not be found.") from None
        if image.status == "active":
            return Outcome(physical_id=image_id, data=data, attributes={"show": image_show(image)})
        if image.status == "queued" or image.status == "killed":
            task = selectors.task_list(actor=self.context.actor, image_id=image_id).last()
            reason = (task.message if task is not None and task.message else "the import failed")
            raise ResourceFailed(f"ResourceInError: resources.{self.context.resource_name}: Image import "
                                 f"failed: {reason}")
        return Outcome(physical_id=image_id, data=data, done=False, retry_after=1.0)

    def update(self, physical_id: str, data: dict[str, Any], old: dict[str, Any], new: dict[str, Any]) -> Outcome:
        from apps.core.errors import StratusError
        from apps.images import services
        from apps.images.services import PatchOperation

        ops: list[PatchOperation] = []
        for key in ("name", "visibility", "protected", "owner"):
            if old.get(key) != new.get(key) and new.get(key) is not None:
                ops.append(PatchOperation(op="replace", key=key, value=new[key]))
        if (old.get("tags") or []) != (new.get("tags") or []):
            ops.append(PatchOperation(op="replace", key="tags", value=[str(t) for t in new.get("tags") or []]))
        before, after = _properties(old), _properties(new)
        ops += [PatchOperation(op="remove", key=k) for k in before if k not in after]
        ops += [PatchOperation(op="add", key=k, value=v) for k, v in after.items() if before.get(k) != v]
        try:
            image = services.image_update(actor=self.context.actor, image_id=physical_id, operations=ops) \
                if ops else self._image(physical_id)
        except StratusError as exc:
            raise _failed(exc) from None
        return Outcome(physical_id=physical_id, data=data, attributes={"show": image_show(image)})

    def delete(self, physical_id: str, data: dict[str, Any]) -> bool:
        from apps.images import services

        image_id = physical_id or data.get("image_id") or ""
        if image_id:
            _remove_if_there(lambda: services.image_delete(actor=self.context.actor, image_id=image_id))
        return True

    def check_resource(self, physical_id: str, data: dict[str, Any]) -> None:  # noqa: ARG002
        from apps.core.errors import StratusError

        try:
            image = self._image(physical_id)
        except StratusError as exc:
            raise _failed(exc) from None
        if image.status != "active":
            raise ResourceFailed(f"Error: Image {physical_id} is {image.status}.")

    def refreshed_attributes(self, physical_id: str, data: dict[str, Any]) -> dict[str, Any] | None:  # noqa: ARG002
        from apps.core.errors import StratusError

        try:
            return {"show": image_show(self._image(physical_id))}
        except StratusError:
            return None
