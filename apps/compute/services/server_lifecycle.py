"""Server delete, update and the actions of the state machine (apps/compute/states.py): power,
lock and unlock, security groups; rebuild, resize and snapshots live in their own modules."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
from apps.compute.services.server_checks import check_access_ip, check_disk_config, check_text
from apps.compute.services.server_console import console_output
from apps.compute.services.server_rebuild_resize import rebuild, resize, resize_end
from apps.compute.services.server_snapshots import create_image
from apps.core.errors import BadRequest, Forbidden
from apps.identity.policy import Actor, require_write

NOT_GIVEN: Any = ...


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


def server_update(*, actor: Actor, server_id: str, name: Any = NOT_GIVEN, description: Any = NOT_GIVEN,
                  access_ip_v4: Any = NOT_GIVEN, access_ip_v6: Any = NOT_GIVEN, disk_config: Any = NOT_GIVEN
                  ) -> Instance:
    with transaction.atomic():
        instance = for_update(actor, server_id)
        fields = []
        if name is not NOT_GIVEN:
            instance.name = check_text(name, field="name", blank=False)
            fields.append("name")
        if description is not NOT_GIVEN:
            instance.description = None if description is None else check_text(description, field="description")
            fields.append("description")
        if access_ip_v4 is not NOT_GIVEN:
            instance.access_ip_v4 = check_access_ip(access_ip_v4, 4)
            fields.append("access_ip_v4")
        if access_ip_v6 is not NOT_GIVEN:
            instance.access_ip_v6 = check_access_ip(access_ip_v6, 6)
            fields.append("access_ip_v6")
        if disk_config is not NOT_GIVEN:
            instance.disk_config = check_disk_config(disk_config)
            fields.append("disk_config")
        if fields:
            save(instance, *fields)
            publish(instance, "updated")
    return server_selectors.server_get(actor=actor, server_id=server_id)


def _power(actor: Actor, instance: Instance, name: str, *, request_id: str, api_name: str) -> None:
    _, node = start_task(actor, instance, name, request_id=request_id, api_name=api_name)
    _send("power", queue=node.queue, instance_id=instance.id, action=states.POWER_ACTIONS[name],
          request_id=request_id)
    publish(instance)


def _lock(actor: Actor, instance: Instance, body: Any, *, request_id: str) -> None:
    reason = body.get("locked_reason") if isinstance(body, Mapping) else None
    if reason is not None:
        check_text(reason, field="locked_reason")
    if not instance.locked:
        instance.locked = True
        instance.locked_by = "owner" if actor.project_id == instance.project_id else "admin"
        instance.locked_reason = reason
        save(instance, "locked", "locked_by", "locked_reason")
    action_start(instance, record="lock", request_id=request_id, user_id=actor.user_id, project_id=actor.project_id)
    publish(instance, "updated")


def _unlock(actor: Actor, instance: Instance, *, request_id: str) -> None:
    if instance.locked and instance.locked_by == "admin" and not actor.is_admin:
        raise Forbidden("Policy doesn't allow os_compute_api:os-lock-server:unlock:unlock_override to be performed: "
                        "the server was locked by an administrator.")
    if instance.locked:
        instance.locked = False
        instance.locked_by = None
        instance.locked_reason = None
        save(instance, "locked", "locked_by", "locked_reason")
    action_start(instance, record="unlock", request_id=request_id, user_id=actor.user_id,
                 project_id=actor.project_id)
    publish(instance, "updated")


def _security_group(actor: Actor, instance: Instance, body: Any, *, add: bool, request_id: str) -> None:
    """addSecurityGroup / removeSecurityGroup: on every port of the server (by name or id)."""
    from apps.networks import selectors as network_selectors
    from apps.networks import services as network_services
    from apps.networks.models import Port

    name = body.get("name") if isinstance(body, Mapping) else None
    if not isinstance(name, str) or not name:
        raise BadRequest("Invalid input for field/attribute name: a security group name is required.")
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


POWER_API = {"os-stop": "stop", "os-start": "start", "pause": "pause", "unpause": "unpause",
             "suspend": "suspend", "resume": "resume"}


def server_action(*, actor: Actor, server_id: str, action: str, body: Any, request_id: str) -> Any:
    """One ``POST /servers/{id}/action``. Returns: rebuild → the instance (with ``admin_pass``);
    createImage → the image id; os-getConsoleOutput → the text; others → None."""
    if action == "os-getConsoleOutput":
        instance = server_selectors.server_get(actor=actor, server_id=server_id)
        require_write(actor, instance.project_id, what=f"instance {server_id}")
        return console_output(actor, instance, body)
    with transaction.atomic():
        instance = for_update(actor, server_id)
        if action == "reboot":
            kind = body.get("type") if isinstance(body, Mapping) else None
            if not isinstance(kind, str) or kind.upper() not in ("SOFT", "HARD"):
                raise BadRequest("Invalid input for field/attribute type. Value: "
                                 f"{kind}. It must be one of SOFT, HARD.")
            _power(actor, instance, "reboot_hard" if kind.upper() == "HARD" else "reboot_soft",
                   request_id=request_id, api_name="reboot")
            return None
        if action in POWER_API:
            name = POWER_API[action]
            _power(actor, instance, name, request_id=request_id, api_name=name)
            return None
        if action == "lock":
            _lock(actor, instance, body, request_id=request_id)
            return None
        if action == "unlock":
            _unlock(actor, instance, request_id=request_id)
            return None
        if action == "rebuild":
            return rebuild(actor, instance, body, request_id=request_id)
        if action == "resize":
            resize(actor, instance, body, request_id=request_id)
            return None
        if action in ("confirmResize", "revertResize"):
            resize_end(actor, instance, action, request_id=request_id)
            return None
        if action == "createImage":
            return create_image(actor, instance, body, request_id=request_id)
        if action in ("addSecurityGroup", "removeSecurityGroup"):
            _security_group(actor, instance, body, add=action == "addSecurityGroup", request_id=request_id)
            return None
    raise BadRequest(f"There is no such action: {action}")
