"""Rebuild (a new image on the same server), resize and its confirm or revert: the new flavor's
quota growth and claim are held until the resize is confirmed or reverted (``server_reports``)."""
from __future__ import annotations

from functools import partial
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
    for_update,
    metadata_quota_check,
    publish,
    save,
    start_task,
)
from apps.compute.services.servers import check_flavor, check_image, image_ref_id, referenced
from apps.core.errors import BadRequest, Conflict, QuotaExceeded
from apps.core.validators import UNSET, Unset
from apps.identity import services as identity_services
from apps.identity.policy import Actor


def server_rebuild(*, actor: Actor, server_id: str, image_ref: str, name: str | None = None,
                   metadata: dict[str, str] | None = None, access_ip_v4: str | None = None,
                   access_ip_v6: str | None = None, disk_config: str | None = None, admin_pass: str | None = None,
                   description: str | Unset | None = UNSET, request_id: str) -> Instance:
    """Rebuild the server from ``image_ref`` (a volume-backed one only from the image of its root
    volume), changing what is given (None: kept; ``description``: UNSET kept, None cleared). The
    instance returned carries ``admin_pass``."""
    with transaction.atomic():
        instance = for_update(actor, server_id)
        if description is not UNSET:
            instance.description = description
            save(instance, "description")
        return _rebuild(actor, instance, image_ref=image_ref, request_id=request_id, admin_pass=admin_pass,
                        changes={"name": name, "metadata": metadata, "access_ip_v4": access_ip_v4,
                                 "access_ip_v6": access_ip_v6, "disk_config": disk_config})


def _rebuild(actor: Actor, instance: Instance, *, image_ref: str, changes: dict[str, Any], admin_pass: str | None,
             request_id: str) -> Instance:
    flavor = Flavor(name=instance.flavor.get("original_name", ""), vcpus=instance.vcpus,
                    memory_mb=instance.memory_mb, root_gb=instance.root_gb)
    volume_backed = boot_volume_selectors.is_volume_backed(instance=instance)
    if volume_backed:
        from apps.images import selectors as image_selectors

        image_id = image_ref_id(image_ref)
        image = referenced(partial(image_selectors.image_get, actor=actor, image_id=image_id),
                           f"Image {image_id} could not be found.")
        if image.id != _root_volume_image(instance):
            raise BadRequest("Unable to rebuild with a different image for a volume-backed server.")
    else:
        image = check_image(actor, image_ref, flavor, project_id=instance.project_id)
    if changes["metadata"] is not None:
        metadata_quota_check(project_id=instance.project_id, metadata=changes["metadata"])
    _, node = start_task(actor, instance, "rebuild", request_id=request_id)
    if not volume_backed:  # a volume-backed server keeps its root volume (and the image it was asked with)
        instance.image_id = image.id
    fields = ["image_id"]
    for attr, value in changes.items():
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


def server_resize(*, actor: Actor, server_id: str, flavor_ref: str, disk_config: str | None = None,
                  request_id: str) -> None:
    """Resize to ``flavor_ref``: its growth reserved against the quota and claimed on the node until the
    resize is confirmed or reverted."""
    with transaction.atomic():
        _resize(actor, for_update(actor, server_id), flavor_ref=flavor_ref, disk=disk_config, request_id=request_id)


def _resize(actor: Actor, instance: Instance, *, flavor_ref: str, disk: str | None, request_id: str) -> None:
    from apps.compute import scheduler

    flavor = check_flavor(actor, flavor_ref)
    if flavor.flavorid == instance.flavor_ref and (flavor.vcpus, flavor.memory_mb, flavor.root_gb) == \
            (instance.vcpus, instance.memory_mb, instance.root_gb):
        raise BadRequest("When resizing, instances must change flavor!")
    volume_backed = boot_volume_selectors.is_volume_backed(instance=instance)  # its root disk is no flavor's
    if flavor.root_gb == 0 and instance.root_gb > 0 and not volume_backed:
        raise BadRequest("Resize to zero disk flavor is not allowed.")
    if flavor.root_gb < instance.root_gb and not volume_backed:
        raise BadRequest("Resize error: Unable to resize disk down.")
    states.check("resize", instance_id=instance.id, vm_state=instance.vm_state, task_state=instance.task_state,
                 name=instance.name)
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


def server_resize_confirm(*, actor: Actor, server_id: str, request_id: str) -> None:
    _resize_end(actor, server_id, "confirmResize", request_id=request_id)


def server_resize_revert(*, actor: Actor, server_id: str, request_id: str) -> None:
    _resize_end(actor, server_id, "revertResize", request_id=request_id)


def _resize_end(actor: Actor, server_id: str, name: str, *, request_id: str) -> None:
    with transaction.atomic():
        instance = for_update(actor, server_id)
        _, node = start_task(actor, instance, name, request_id=request_id)
        _send("confirm_resize" if name == "confirmResize" else "revert_resize", queue=node.queue,
              instance_id=instance.id, request_id=request_id)
        publish(instance)
