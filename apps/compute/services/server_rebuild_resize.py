"""Rebuild (a new image on the same server), resize and its confirm or revert: the new flavor's
quota growth and claim are held until the resize is confirmed or reverted (``server_reports``)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction

from apps.compute import states
from apps.compute.models import Flavor, Instance
from apps.compute.selectors import boot_volumes as boot_volume_selectors
from apps.compute.services import NovaQuotaExceeded
from apps.compute.services.instances import (
    _send,
    admin_password,
    check_lock,
    flavor_disk,
    flavor_json,
    publish,
    save,
    start_task,
)
from apps.compute.services.server_checks import check_access_ip, check_disk_config, check_metadata, check_text
from apps.compute.services.servers import check_flavor, check_image, image_ref_id
from apps.core.errors import BadRequest, Conflict, NotFound, QuotaExceeded
from apps.identity import services as identity_services
from apps.identity.policy import Actor


def rebuild(actor: Actor, instance: Instance, body: Any, *, request_id: str) -> Instance:
    if not isinstance(body, Mapping):
        raise BadRequest("Invalid input for field/attribute rebuild: an object is expected.")
    allowed = {"imageRef", "name", "metadata", "adminPass", "accessIPv4", "accessIPv6", "OS-DCF:diskConfig",
               "preserve_ephemeral", "description", "key_name", "user_data"}
    unknown = set(body) - allowed
    if unknown:
        raise BadRequest(f"Invalid input for field/attribute rebuild. Additional properties are not allowed "
                         f"({', '.join(sorted(unknown))} were unexpected)")
    if "imageRef" not in body:
        raise BadRequest("Invalid input for field/attribute rebuild: 'imageRef' is a required property")
    flavor = Flavor(name=instance.flavor.get("original_name", ""), vcpus=instance.vcpus,
                    memory_mb=instance.memory_mb, root_gb=instance.root_gb)
    volume_backed = boot_volume_selectors.is_volume_backed(instance=instance)
    if volume_backed:
        from apps.images import selectors as image_selectors

        try:
            image = image_selectors.image_get(actor=actor, image_id=image_ref_id(body["imageRef"]))
        except NotFound:
            raise BadRequest(f"Image {image_ref_id(body['imageRef'])} could not be found.") from None
        if image.id != _root_volume_image(instance):
            raise BadRequest("Unable to rebuild with a different image for a volume-backed server.")
    else:
        image = check_image(actor, body["imageRef"], flavor, project_id=instance.project_id)
    name = check_text(body["name"], field="name", blank=False) if "name" in body else None
    meta = check_metadata(body["metadata"], project_id=instance.project_id) if "metadata" in body else None
    v4 = check_access_ip(body["accessIPv4"], 4) if "accessIPv4" in body else None
    v6 = check_access_ip(body["accessIPv6"], 6) if "accessIPv6" in body else None
    disk = check_disk_config(body["OS-DCF:diskConfig"]) if "OS-DCF:diskConfig" in body else None
    admin_pass = body.get("adminPass")
    if admin_pass is not None and not isinstance(admin_pass, str):
        raise BadRequest("Invalid input for field/attribute adminPass: a string is expected.")
    _, node = start_task(actor, instance, "rebuild", request_id=request_id)
    if not volume_backed:  # a volume-backed server keeps its root volume (and the image it was asked with)
        instance.image_id = image.id
    fields = ["image_id"]
    for attr, value in (("name", name), ("metadata", meta), ("access_ip_v4", v4), ("access_ip_v6", v6),
                        ("disk_config", disk)):
        if value is not None:
            setattr(instance, attr, value)
            fields.append(attr)
    save(instance, *fields)
    _send("rebuild", queue=node.queue, instance_id=instance.id, image_id=image.id, request_id=request_id)
    publish(instance)
    instance.admin_pass = admin_pass or admin_password()  # type: ignore[attr-defined]
    return instance


def _root_volume_image(instance: Instance) -> str:
    """The image a volume-backed server's root volume was made from (its ``image_id``, else the
    volume's image metadata), "" when none."""
    from apps.compute.models import BlockDeviceMapping
    from apps.volumes.models import Volume

    if instance.image_id:
        return instance.image_id
    root = BlockDeviceMapping.objects.filter(instance=instance, boot_index=0).first()
    volume = Volume.objects.filter(pk=root.volume_id).first() if root is not None else None
    return str(((volume.image_metadata or {}) if volume is not None else {}).get("image_id", ""))


def resize(actor: Actor, instance: Instance, body: Any, *, request_id: str) -> None:
    from apps.compute import scheduler

    if not isinstance(body, Mapping) or "flavorRef" not in body:
        raise BadRequest("Invalid input for field/attribute resize: 'flavorRef' is a required property")
    flavor = check_flavor(actor, body["flavorRef"])
    disk = check_disk_config(body["OS-DCF:diskConfig"]) if "OS-DCF:diskConfig" in body else None
    if flavor.flavorid == instance.flavor_ref and (flavor.vcpus, flavor.memory_mb, flavor.root_gb) == \
            (instance.vcpus, instance.memory_mb, instance.root_gb):
        raise BadRequest("When resizing, instances must change flavor!")
    volume_backed = boot_volume_selectors.is_volume_backed(instance=instance)  # its root disk is no flavor's
    if flavor.root_gb == 0 and instance.root_gb > 0 and not volume_backed:
        raise BadRequest("Resize to zero disk flavor is not allowed.")
    if flavor.root_gb < instance.root_gb and not volume_backed:
        raise BadRequest("Resize error: Unable to resize disk down.")
    states.check("resize", instance_id=instance.id, vm_state=instance.vm_state, task_state=instance.task_state)
    check_lock(actor, instance)
    new = flavor_json(flavor)
    growth = {"cores": max(0, flavor.vcpus - instance.vcpus), "ram": max(0, flavor.memory_mb - instance.memory_mb)}
    if any(growth.values()):
        try:
            with transaction.atomic():
                identity_services.quota_reserve(project_id=instance.project_id, deltas=growth)
        except QuotaExceeded as exc:
            raise NovaQuotaExceeded(f"Quota exceeded for {exc.resource}: Requested {exc.requested}, but already "
                                    f"used {exc.in_use} of {exc.limit} {exc.resource}", resource=exc.resource,
                                    limit=exc.limit, in_use=exc.in_use, requested=exc.requested) from None
    if instance.node_id is None:
        raise Conflict(f"Cannot 'resize' instance {instance.id}: it is on no compute host.")
    try:
        with transaction.atomic():
            scheduler.claim_adjust(node_id=instance.node_id, vcpus=flavor.vcpus, memory_mb=flavor.memory_mb,
                                   disk_gb=flavor_disk(new))
    except scheduler.NoValidHost as exc:
        raise BadRequest(str(exc)) from None
    instance.new_flavor = new
    instance.disk_config = disk or instance.disk_config
    save(instance, "new_flavor", "disk_config")
    _, node = start_task(actor, instance, "resize", request_id=request_id)
    _send("resize", queue=node.queue, instance_id=instance.id, request_id=request_id)
    publish(instance)


def resize_end(actor: Actor, instance: Instance, name: str, *, request_id: str) -> None:
    _, node = start_task(actor, instance, name, request_id=request_id)
    _send("confirm_resize" if name == "confirmResize" else "revert_resize", queue=node.queue,
          instance_id=instance.id, request_id=request_id)
    publish(instance)
