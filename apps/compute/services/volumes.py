"""Attaching Cinder volumes to servers and detaching them (Nova's ``os-volume_attachments``), and the
reports the compute node sends back (``workers.compute_volumes``).

Attach: the API call checks the server (its state, its lock, its node up) and the volume (the
caller's, available), reserves the volume (``apps.volumes.services.volume_reserve``: one attachment
row), records a ``BlockDeviceMapping`` (status ``attaching``, its device name chosen here) and the
instance action ``attach_volume``, and sends ``attach_volume`` to the node's queue on commit. The
node asks for the connection (``server_volume_connecting``: the volume goes attaching), plugs the
volume's file into the domain and reports ``server_volume_attached`` (the volume in-use, the row
attached) or ``server_volume_attach_failed`` (the volume available again, the row gone, a fault and
the action's event in error).

Detach mirrors it: ``server_volume_detach`` (volume detaching, row detaching, action
``detach_volume``) → the node's ``detach_volume`` → ``server_volume_detached`` (volume available,
row gone) or ``server_volume_detach_failed`` (volume in-use, row attached again, a fault).

Every report locks the mapping's row and acts only on the status it expects, so a redelivered task
or a late report changes nothing twice.
"""
from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

from django.db import transaction

from apps.compute import states
from apps.compute.models import BlockDeviceMapping, Instance
from apps.compute.services import instance_actions, instances
from apps.core.errors import BadRequest, Conflict, Forbidden, NotFound, named
from apps.identity.policy import Actor
from apps.volumes import selectors as volume_selectors
from apps.volumes import services as volume_services

# Nova (os-volume_attachments): attach and detach need a settled server in one of these vm_states
ATTACH_VM_STATES = frozenset({states.ACTIVE, states.STOPPED, states.PAUSED, states.SUSPENDED})
# the device names Nova's API schema accepts (``/dev/vdb``, ``/dev/sdc``, ``/dev/xvdd``, ``vdb``...)
DEVICE_PATTERN = re.compile(r"(^/dev/x{0,1}[a-z]{0,1}d{0,1})([a-z]+)[0-9]*$")
VIRTIO_DEVICE = re.compile(r"^/dev/vd([a-z])$")
LETTERS = "abcdefghijklmnopqrstuvwxyz"
ATTACHING, ATTACHED, DETACHING = states.BDM_ATTACHING, states.BDM_ATTACHED, states.BDM_DETACHING


class TooManyDiskDevices(Forbidden):
    pass


# ---- device names ------------------------------------------------------------------------------

def _short(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def next_device_name(instance: Instance, taken: Iterable[str]) -> str:
    """The first free ``/dev/vdX`` after the instance's local disks (root vda, then its ephemeral
    disk and swap, as the node builds them); ``taken`` holds the names its volumes already use."""
    used = {_short(t) for t in taken if t} | _local_names(instance)
    for letter in LETTERS:
        if f"vd{letter}" not in used:
            return f"/dev/vd{letter}"
    raise TooManyDiskDevices(f"The maximum allowed number of disk devices ({len(LETTERS)}) to attach to a "
                             f"single instance has been exceeded.")


def _local_names(instance: Instance) -> set[str]:
    count = 1 + (1 if instance.ephemeral_gb else 0) + (1 if instance.swap else 0)
    return {f"vd{letter}" for letter in LETTERS[:count]}


def _device(instance: Instance, requested: Any, taken: list[str]) -> str:
    """The requested name when it is a free virtio name, else the next free one (Nova's libvirt
    driver also names the disk itself); a requested name already in use is a 400."""
    if requested is None:
        return next_device_name(instance, taken)
    if not isinstance(requested, str) or not DEVICE_PATTERN.match(requested):
        raise BadRequest(f"Invalid input for field/attribute device. Value: {requested}. "
                         f"Does not match the device name pattern.")
    full = requested if requested.startswith("/dev/") else f"/dev/{requested}"
    if _short(full) in {_short(t) for t in taken} | _local_names(instance):
        raise BadRequest(f"The supplied device path ({full}) is in use.")
    if VIRTIO_DEVICE.match(full):
        return full
    return next_device_name(instance, taken)


# ---- checks ------------------------------------------------------------------------------------

def _server_for_change(actor: Actor, server_id: str, what: str) -> Instance:
    """The caller's server, locked, in a state that takes volume changes (409 otherwise), not locked
    by someone else, on a node that is up."""
    instance = instances.for_update(actor, server_id)
    if instance.vm_state not in ATTACH_VM_STATES:
        raise states.InstanceInvalidState(f"Cannot '{what}' instance {instance.id} while it is in vm_state "
                                          f"{instance.vm_state}", names=named(instance))
    if instance.task_state is not None:
        raise states.InstanceInvalidState(f"Cannot '{what}' instance {instance.id} while it is in task_state "
                                          f"{instance.task_state}", names=named(instance))
    instances.check_lock(actor, instance)
    return instance


def _node_queue(instance: Instance, what: str) -> tuple[str, str]:
    node = instances.node_up(instance.node_id)
    if node is None:
        raise Conflict(f"Cannot '{what}' instance {instance.id}: its compute host {instance.host or '(none)'} "
                       f"is not available.", names=named(instance))
    return node.host, node.queue


def _send(task: str, *, queue: str, **kwargs: Any) -> None:
    """On commit: ``workers.compute_volumes.<task>(**kwargs)`` on the node's queue (``send_to_node``)."""
    instances.send_to_node(f"workers.compute_volumes.{task}", queue=queue, kwargs=kwargs)


def _start_action(actor: Actor, instance: Instance, record: str, event: str, host: str, request_id: str) -> None:
    action = instance_actions.action_start(instance, record=record, request_id=request_id, user_id=actor.user_id,
                                           project_id=actor.project_id)
    instance_actions.event_start(action, event, host)


# ---- the API -----------------------------------------------------------------------------------

def _new_request_id() -> str:
    return f"req-{uuid.uuid4()}"


def server_volume_attach(*, actor: Actor, server_id: str, volume_id: str, device: str | None = None,
                         request_id: str = "") -> BlockDeviceMapping:
    """Attach the caller's available volume to the caller's server: the volume reserved, the
    mapping ``attaching`` at its device name, the node's ``attach_volume`` sent on commit. Without a
    ``request_id`` the action log gets one of its own."""
    request_id = request_id or _new_request_id()
    with transaction.atomic():
        instance = _server_for_change(actor, server_id, "attach_volume")
        volume = volume_selectors.volume_get(actor=actor, volume_id=volume_id)  # 404 when not the caller's
        existing = list(BlockDeviceMapping.objects.filter(instance=instance).values_list("volume_id", "device_name"))
        if any(v == volume.id for v, _ in existing):
            raise BadRequest(f"Invalid volume: volume {volume.id} is already attached to instance {instance.id}.")
        if volume.status != "available":
            raise BadRequest(f"Invalid volume: volume {volume.id} status must be 'available', but current status "
                             f"is: {volume.status}.")
        name = _device(instance, device, [d for _, d in existing if d])
        host, queue = _node_queue(instance, "attach_volume")
        attachment = volume_services.volume_reserve(actor=actor, volume_id=volume.id, server_id=instance.id)
        bdm = BlockDeviceMapping.objects.create(
            instance=instance, volume_id=volume.id, attachment_id=attachment.id, device_name=name, boot_index=None,
            source_type="volume", volume_size=volume.size, disk_bus="virtio", device_type="disk",
            status=ATTACHING)
        _start_action(actor, instance, "attach_volume", "compute_attach_volume", host, request_id)
        _send("attach_volume", queue=queue, instance_id=instance.id, volume_id=volume.id, request_id=request_id)
        instances.publish(instance, "updated")
    return bdm


def server_volume_swap(*, actor: Actor, server_id: str, volume_id: str) -> NoReturn:
    """Swapping a server's volume for another (an admin's call in Nova) is not offered: what the
    caller cannot see is a 404, anyone but an admin gets Nova's 403, an admin a 400."""
    from apps.compute.selectors import volumes as bdm_selectors

    bdm_selectors.server_volume_get(actor=actor, server_id=server_id, volume_id=volume_id)
    if not actor.is_admin:
        raise Forbidden("Policy doesn't allow os_compute_api:os-volumes-attachments:swap to be performed.")
    raise BadRequest("Swapping the volume of a server is not supported by this cloud: detach it and attach "
                     "the other one.")


def server_volume_detach(*, actor: Actor, server_id: str, volume_id: str, request_id: str = "") -> None:
    """Detach a volume from the caller's server: the volume detaching, the mapping detaching, the
    node's ``detach_volume`` sent on commit. The boot volume stays (400)."""
    request_id = request_id or _new_request_id()
    with transaction.atomic():
        instance = _server_for_change(actor, server_id, "detach_volume")
        volume_selectors.volume_get(actor=actor, volume_id=volume_id)  # 404 when not the caller's
        bdm = BlockDeviceMapping.objects.select_for_update().filter(instance=instance, volume_id=volume_id).first()
        if bdm is None:
            raise NotFound(f"Volume {volume_id} is not attached to instance {instance.id}.")
        if bdm.boot_index == 0:
            raise BadRequest("Cannot detach a root device volume")
        if bdm.status != ATTACHED:
            raise BadRequest(f"Invalid volume: volume {volume_id} is {bdm.status} on instance {instance.id}: "
                             f"it must be attached to be detached.")
        host, queue = _node_queue(instance, "detach_volume")
        volume_services.volume_begin_detaching(volume_id=volume_id)
        bdm.status = DETACHING
        bdm.save(update_fields=["status", "updated_at"])
        _start_action(actor, instance, "detach_volume", "compute_detach_volume", host, request_id)
        _send("detach_volume", queue=queue, instance_id=instance.id, volume_id=volume_id, request_id=request_id)
        instances.publish(instance, "updated")


# ---- the node's reports ------------------------------------------------------------------------

def _locked_bdm(instance_id: str, volume_id: str, host: str) -> tuple[Instance | None, BlockDeviceMapping | None]:
    """The instance's row, then the mapping's, locked (the API's order: no deadlock between them);
    (None, None) unless the instance is on ``host``, the node that reports (a node can speak only of
    its own instances)."""
    instance = Instance.objects.select_for_update().filter(pk=instance_id).first()
    if instance is None or instance.host != host:
        return None, None
    return instance, BlockDeviceMapping.objects.select_for_update().filter(instance_id=instance_id,
                                                                           volume_id=volume_id).first()


def _reported(instance: Instance, *, record: str, host: str, request_id: str, failure: str | None = None,
              details: str = "") -> None:
    """The node's report ends the action's event (``compute_<record>``; in error with a fault when it is a
    ``failure``) and the change is published."""
    if failure is not None:
        instance_actions.fault_record(instance, message=failure, details=details, host=host)
    instance_actions.event_finish(instance, request_id=request_id, record=record, event=f"compute_{record}",
                                  ok=failure is None, host=host, traceback=details or failure)
    instances.publish(instance, "updated")


def server_volume_connecting(*, instance_id: str, volume_id: str, host: str) -> dict[str, Any] | None:
    """The node is about to plug the volume in: the volume goes attaching and the node gets its
    connection (``{"driver_volume_type": "file", "data": {"path", "format", ...}}``). None when the
    mapping is no longer attaching (a stale or redelivered task: nothing to do)."""
    with transaction.atomic():
        instance, bdm = _locked_bdm(instance_id, volume_id, host)
        if instance is None or bdm is None or bdm.status != ATTACHING or not bdm.attachment_id:
            return None
        volume_services.volume_attaching(volume_id=volume_id, attachment_id=bdm.attachment_id, host_name=host)
        return volume_selectors.volume_connection_for_node(volume_id=volume_id)


def server_volume_attached(*, instance_id: str, volume_id: str, host: str, request_id: str = "") -> bool:
    """The volume is in the domain: in-use with its attachment (server, host, device, time), the
    mapping attached, the action's event done. False for a stale report."""
    with transaction.atomic():
        instance, bdm = _locked_bdm(instance_id, volume_id, host)
        if instance is None or bdm is None or bdm.status != ATTACHING or not bdm.attachment_id:
            return False
        volume_services.volume_attach(volume_id=volume_id, attachment_id=bdm.attachment_id, server_id=instance_id,
                                      host_name=host, device=bdm.device_name)
        bdm.status = ATTACHED
        bdm.save(update_fields=["status", "updated_at"])
        _reported(instance, record="attach_volume", host=host, request_id=request_id)
        return True


def _mapping_ended(*, instance_id: str, volume_id: str, status: str, release: Callable[..., object], record: str,
                   host: str, request_id: str, failure: Callable[[str], str] | None = None,
                   details: str = "") -> bool:
    """The node is done with a mapping in ``status`` and the disk is not in the domain: the volume's
    attachment released (``release``: unreserved or detached, the volume available again), the
    mapping gone, the action's event finished (in error with a fault when ``failure`` makes its
    message from the device name). False for a stale report."""
    with transaction.atomic():
        instance, bdm = _locked_bdm(instance_id, volume_id, host)
        if instance is None or bdm is None or bdm.status != status:
            return False
        if bdm.attachment_id:
            release(volume_id=volume_id, attachment_id=bdm.attachment_id)
        bdm.delete()
        _reported(instance, record=record, host=host, request_id=request_id, details=details,
                  failure=failure(bdm.device_name) if failure is not None else None)
        return True


def server_volume_attach_failed(*, instance_id: str, volume_id: str, host: str, message: str, details: str = "",
                                request_id: str = "") -> bool:
    """The node could not attach it: the volume available again, the mapping gone, a fault and the
    action's event in error (the instance keeps its state)."""
    return _mapping_ended(instance_id=instance_id, volume_id=volume_id, status=ATTACHING,
                          release=volume_services.volume_unreserve, record="attach_volume", host=host,
                          request_id=request_id, details=details,
                          failure=lambda device: f"Failed to attach volume {volume_id} at {device}: {message}")


def server_volume_detached(*, instance_id: str, volume_id: str, host: str, request_id: str = "") -> bool:
    """The disk left the domain: the volume's attachment goes (available again), the mapping too."""
    return _mapping_ended(instance_id=instance_id, volume_id=volume_id, status=DETACHING,
                          release=volume_services.volume_detach, record="detach_volume", host=host,
                          request_id=request_id)


def server_volume_detach_failed(*, instance_id: str, volume_id: str, host: str, message: str, details: str = "",
                                request_id: str = "") -> bool:
    """The node could not detach it: the volume in-use again, the mapping attached, a fault and the
    action's event in error."""
    with transaction.atomic():
        instance, bdm = _locked_bdm(instance_id, volume_id, host)
        if instance is None or bdm is None or bdm.status != DETACHING:
            return False
        volume_services.volume_roll_detaching(volume_id=volume_id)
        bdm.status = ATTACHED
        bdm.save(update_fields=["status", "updated_at"])
        _reported(instance, record="detach_volume", host=host, request_id=request_id, details=details,
                  failure=f"Failed to detach volume {volume_id} from {bdm.device_name}: {message}")
        return True
