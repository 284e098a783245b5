"""Server delete, update and the actions of the state machine (apps/compute/states.py): power and
reboot, lock and unlock, security groups; rebuild, resize, snapshots and the console live in their own
modules. Each action is a typed service the API and the dashboard call with the same arguments."""
from __future__ import annotations

from typing import Literal

from django.db import transaction

from apps.compute import states
from apps.compute.models import Instance
from apps.compute.selectors import servers as server_selectors
from apps.compute.services.instance_actions import action_find, action_start, event_start
from apps.compute.services.instances import (
    _send,
    check_lock,
    for_update,
    mark_deleted,
    node_up,
    publish,
    save,
    service_actor,
    start_task,
)
from apps.core.errors import BadRequest, Forbidden
from apps.core.validators import UNSET, Unset
from apps.identity.policy import Actor

PowerAction = Literal["start", "stop", "pause", "unpause", "suspend", "resume"]


def server_delete(*, actor: Actor, server_id: str, request_id: str) -> None:
    """Delete in any state unless locked (admins may). An instance on no node, or on a node that is
    down, is deleted at once; otherwise the node destroys it and reports ``server_destroyed``."""
    with transaction.atomic():
        instance = for_update(actor, server_id)
        check_lock(actor, instance)
        if instance.task_state == states.DELETING and node_up(instance.node_id) is not None:
            return
        action_start(instance, record="delete", request_id=request_id, user_id=actor.user_id,
                     project_id=actor.project_id)
        node = node_up(instance.node_id)
        if node is None:
            mark_deleted(instance, request_id=request_id, host=instance.host or "")
            return
        instance.task_state = states.DELETING
        save(instance, "task_state")
        action = action_find(instance, request_id, "delete")
        if action is not None:
            event_start(action, "compute_terminate_instance", node.host)
        _send("destroy", queue=node.queue, instance_id=instance.id, request_id=request_id)
        publish(instance)


def server_update(*, actor: Actor, server_id: str, name: str | Unset = UNSET,
                  description: str | Unset | None = UNSET, access_ip_v4: str | Unset = UNSET,
                  access_ip_v6: str | Unset = UNSET, disk_config: str | Unset = UNSET) -> Instance:
    """Change what is given (``UNSET``: left as it is)."""
    changes = {"name": name, "description": description, "access_ip_v4": access_ip_v4,
               "access_ip_v6": access_ip_v6, "disk_config": disk_config}
    with transaction.atomic():
        instance = for_update(actor, server_id)
        fields = [attr for attr, value in changes.items() if value is not UNSET]
        for attr in fields:
            setattr(instance, attr, changes[attr])
        if fields:
            save(instance, *fields)
            publish(instance, "updated")
    return server_selectors.server_get(actor=actor, server_id=server_id)


def _power(actor: Actor, server_id: str, name: str, *, request_id: str, api_name: str) -> None:
    with transaction.atomic():
        instance = for_update(actor, server_id)
        _, node = start_task(actor, instance, name, request_id=request_id, api_name=api_name)
        _send("power", queue=node.queue, instance_id=instance.id, action=states.POWER_ACTIONS[name],
              request_id=request_id)
        publish(instance)


def server_crash_dump(*, actor: Actor, server_id: str, request_id: str) -> None:
    """Nova's trigger_crash_dump (microversion 2.17): the node sends the guest a non-maskable interrupt
    (a kernel set up for it writes a crash dump). 409 when the server is not running on an available
    node, is locked or busy; the instance action records the node's result."""
    with transaction.atomic():
        instance = for_update(actor, server_id)
        _, node = start_task(actor, instance, "trigger_crash_dump", request_id=request_id)
        _send("trigger_crash_dump", queue=node.queue, instance_id=instance.id, request_id=request_id)


def server_power(*, actor: Actor, server_id: str, action: PowerAction, request_id: str) -> None:
    """os-start, os-stop, pause, unpause, suspend, resume: the node's power task."""
    _power(actor, server_id, action, request_id=request_id, api_name=action)


def server_reboot(*, actor: Actor, server_id: str, type: Literal["SOFT", "HARD"], request_id: str) -> None:
    _power(actor, server_id, "reboot_hard" if type == "HARD" else "reboot_soft", request_id=request_id,
           api_name="reboot")


def server_lock(*, actor: Actor, server_id: str, reason: str | None = None, request_id: str) -> None:
    """Lock the server (by its owner, or by an admin: then only an admin unlocks it)."""
    with transaction.atomic():
        instance = for_update(actor, server_id)
        if not instance.locked:
            instance.locked = True
            instance.locked_by = "owner" if actor.project_id == instance.project_id else "admin"
            instance.locked_reason = reason
            save(instance, "locked", "locked_by", "locked_reason")
        action_start(instance, record="lock", request_id=request_id, user_id=actor.user_id,
                     project_id=actor.project_id)
        publish(instance, "updated")


def server_unlock(*, actor: Actor, server_id: str, request_id: str) -> None:
    with transaction.atomic():
        instance = for_update(actor, server_id)
        if instance.locked and instance.locked_by == "admin" and not actor.is_admin:
            raise Forbidden("Policy doesn't allow os_compute_api:os-lock-server:unlock:unlock_override to be "
                            "performed: the server was locked by an administrator.")
        if instance.locked:
            instance.locked = False
            instance.locked_by = None
            instance.locked_reason = None
            save(instance, "locked", "locked_by", "locked_reason")
        action_start(instance, record="unlock", request_id=request_id, user_id=actor.user_id,
                     project_id=actor.project_id)
        publish(instance, "updated")


def server_security_group_add(*, actor: Actor, server_id: str, name: str, request_id: str) -> None:
    """addSecurityGroup: on every port of the server (the group by name or id)."""
    _security_group(actor, server_id, name, add=True, request_id=request_id)


def server_security_group_remove(*, actor: Actor, server_id: str, name: str, request_id: str) -> None:
    _security_group(actor, server_id, name, add=False, request_id=request_id)


def _security_group(actor: Actor, server_id: str, name: str, *, add: bool, request_id: str) -> None:
    from apps.networks import selectors as network_selectors
    from apps.networks import services as network_services
    from apps.networks.models import Port

    with transaction.atomic():
        instance = for_update(actor, server_id)
        if name == "default":
            network_services.security_group_ensure_default(project_id=instance.project_id)
        group = network_selectors.security_group_by_name_or_id(actor=actor, ref=name)
        ports = list(Port.objects.filter(device_id=instance.id, project_id=instance.project_id)
                     .prefetch_related("security_groups"))
        current = set(instance.security_groups or [])
        if add and group.name in current:
            raise BadRequest(f"Security group {group.name} is already associated with the instance {instance.id}")
        if not add and group.name not in current and not any(group in p.security_groups.all() for p in ports):
            raise BadRequest(f"Security group {group.name} not associated with the instance {instance.id}")
        service = service_actor(instance.project_id, instance.user_id)
        for port in ports:
            ids = [g.id for g in port.security_groups.all()]
            wanted = [*ids, group.id] if add and group.id not in ids else [i for i in ids if add or i != group.id]
            if wanted != ids and port.port_security_enabled:
                network_services.port_update(actor=service, port_id=port.id, changes={"security_groups": wanted})
        names = [n for n in instance.security_groups or [] if n != group.name]
        instance.security_groups = [*names, group.name] if add else names
        save(instance, "security_groups")
        action_start(instance, record="addSecurityGroup" if add else "removeSecurityGroup", request_id=request_id,
                     user_id=actor.user_id, project_id=actor.project_id)
        publish(instance, "updated")
