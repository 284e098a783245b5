"""What every server service shares: the instance row locked for a change (``for_update``), the
lock and node checks, the start of a node task (``start_task``), saving and publishing the change,
sending work to the node, and the claims, ports and quota an instance holds until ``mark_deleted``.

Nova talks to Neutron with its own admin credentials; the ports of an instance are made and bound
the same way, with a service actor (``service_actor``) after the caller's own rights on the
networks, ports and security groups were checked with the caller's actor."""
from __future__ import annotations

import secrets
import string
from collections.abc import Mapping
from typing import Any, TypedDict

from django.utils import timezone

from apps.compute import states
from apps.compute.models import ComputeNode, Flavor, Instance, InstanceAction, InstanceTag
from apps.compute.selectors import node_specs
from apps.compute.selectors import servers as server_selectors
from apps.compute.services import NovaQuotaExceeded, boot_volumes
from apps.compute.services.instance_actions import action_start, event_finish, event_start
from apps.core import events, tasks
from apps.core.errors import Conflict, named
from apps.identity import selectors as identity_selectors
from apps.identity import services as identity_services
from apps.identity.models import Project, User
from apps.identity.policy import Actor, require_write
from apps.telemetry import services as telemetry_services

MAX_TAGS = 50


class InstanceLocked(Conflict):
    pass


class NetworkRequest(TypedDict, total=False):
    """One of the networks a server asks for: a network (``uuid``, with a ``fixed_ip`` maybe) or a port."""

    uuid: str
    port: str
    fixed_ip: str


def metadata_quota_check(*, project_id: str, metadata: Mapping[str, str]) -> dict[str, str]:
    """A server's (or its snapshot's) metadata within the project's metadata_items quota (403)."""
    limit = identity_selectors.quota_limits(project=Project(id=project_id)).get("metadata_items", 128)
    if limit >= 0 and len(metadata) > limit:
        raise NovaQuotaExceeded(f"Quota exceeded for metadata_items: Requested {len(metadata)}, but the "
                                f"limit is {limit}.", resource="metadata_items", limit=limit, in_use=0,
                                requested=len(metadata))
    return dict(metadata)


def service_actor(project_id: str, user_id: str | None) -> Actor:
    """Nova's own admin identity towards Neutron/Glance for one instance's owner (never given to a caller)."""
    return Actor(user=User(id=user_id or "nova"), project=Project(id=project_id),
                 roles=frozenset({"admin", "member"}), system=True)


def owner_actor(instance: Instance) -> Actor:
    """The instance's owner as a member of its project (snapshots are stored as the owner)."""
    return Actor(user=User(id=instance.user_id or "nova"), project=Project(id=instance.project_id),
                 roles=frozenset({"member"}))


def admin_password(length: int = 12) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def flavor_json(flavor: Flavor) -> dict[str, Any]:
    return {"original_name": flavor.name, "flavorid": flavor.flavorid, "vcpus": flavor.vcpus,
            "ram": flavor.memory_mb, "disk": flavor.root_gb, "ephemeral": flavor.ephemeral_gb, "swap": flavor.swap,
            "extra_specs": {s.key: s.value for s in flavor.extra_specs.all()}}


def flavor_disk(flavor: Mapping[str, Any]) -> int:
    return int(flavor["disk"]) + int(flavor["ephemeral"]) + (int(flavor["swap"]) + 1023) // 1024


def publish(instance: Instance, kind: str = "state") -> None:
    events.publish(project_id=instance.project_id, kind=kind, resource="instance", resource_id=instance.id,
                   data={"name": instance.name, "status": states.status(instance.vm_state, instance.task_state),
                         "vm_state": instance.vm_state, "task_state": instance.task_state,
                         "power_state": instance.power_state, "host": instance.host or ""})


def telemetry_record(instance: Instance, event: telemetry_services.lifecycle.Event) -> None:
    """The instance's life for telemetry (on commit): created when launched, its flavor when a resize
    is confirmed, ended when deleted; the times are the row's own (launched_at, terminated_at), which
    os-simple-tenant-usage counts from, so usage from telemetry equals Nova's."""
    at = instance.launched_at if event == "create" else instance.terminated_at if event == "delete" else None
    if instance.launched_at is None:  # never launched: only a pollster's resource, if any, to close
        telemetry_services.lifecycle_record(kind="instance", resource_id=instance.id, project_id=instance.project_id,
                                            user_id=instance.user_id, event=event, at=at, attributes={})
        return
    telemetry_services.lifecycle_record(
        kind="instance", resource_id=instance.id, project_id=instance.project_id, user_id=instance.user_id,
        event=event, at=at, attributes={
            "flavor_id": instance.flavor_ref, "flavor_name": flavor_name(instance), "host": instance.host or "",
            "display_name": instance.name, "image_ref": instance.image_id or "",
            "vcpus": instance.vcpus, "memory_mb": instance.memory_mb, "root_gb": instance.root_gb,
            "ephemeral_gb": instance.ephemeral_gb, "status": "deleted" if event == "delete" else
            states.status(instance.vm_state, instance.task_state).lower()})


def flavor_name(instance: Instance) -> str:
    flavor = instance.flavor or {}
    return str(flavor.get("original_name") or flavor.get("name") or instance.flavor_ref or "")


def _send(task: str, *, queue: str, **kwargs: Any) -> None:
    """On commit: ``workers.compute.<task>(**kwargs, spec=...)`` on the node's queue (``send_to_node``).

    The node reads no database: ``spec`` holds the plain values its task works from
    (``apps.compute.selectors.node_specs.server_node_spec``), read here, in the caller's transaction
    with the instance row locked, so it is what this change decided; it is stored with the task record
    and sent on commit. A spec acted on late (resent by beat, redelivered) is safe: the node asks the
    control tier again what must be current (a spawn: is the instance still building on this host),
    and the report services check the host and state of what a node reports."""
    spec = node_specs.server_node_spec(instance_id=kwargs["instance_id"], task=task,
                                       image_id=kwargs.get("image_id") if task in ("rebuild", "snapshot") else None)
    send_to_node(f"workers.compute.{task}", queue=queue, kwargs={**kwargs, "spec": spec})


def send_spawn(instance: Instance, *, queue: str, request_id: str, action: InstanceAction | None) -> None:
    """``_send("spawn", ...)`` from the row the caller locked and holds (``instance``, current: the spec
    is read from it, not again) and its create's ``action``; sent by the process's sender thread after
    the commit (``tasks.enqueue(background=True)``): a create does not wait for the broker."""
    spec = node_specs.server_node_spec(instance_id=instance.id, task="spawn", instance=instance)
    send_to_node("workers.compute.spawn", queue=queue,
                 kwargs={"instance_id": instance.id, "request_id": request_id, "spec": spec},
                 instance=instance, action=action, background=True)


def send_to_node(task_name: str, *, queue: str, kwargs: dict[str, Any], instance: Instance | None = None,
                 action: InstanceAction | None = None, background: bool = False) -> None:
    """Enqueue a node task on ``kwargs["instance_id"]``: its task record says who asked for what from the
    request's action log entry (``request_id``) and goes to the instance's project. A broker failure
    leaves the instance in its task state while the beat task sends it again (the build timeout or the
    user's delete gets it out). ``instance``/``action``: the caller's rows when it has them (not read
    again); ``background``: ``tasks.enqueue``'s."""
    if instance is None:
        instance = Instance.objects.only("id", "project_id", "user_id").get(pk=kwargs["instance_id"])
    if action is None and kwargs.get("request_id"):
        action = InstanceAction.objects.filter(instance=instance, request_id=kwargs["request_id"]).first()
    tasks.enqueue(task_name, queue=queue, kwargs=kwargs, resource_type="instance", resource_id=instance.id,
                  action=action.action if action else task_name.rsplit(".", 1)[1],
                  project_id=instance.project_id, user_id=action.user_id if action else "",
                  background=background)


def save(instance: Instance, *fields: str) -> None:
    instance.save(update_fields=[*dict.fromkeys(fields), "updated_at"])


def for_update(actor: Actor, server_id: str) -> Instance:
    instance = server_selectors.server_get(actor=actor, server_id=server_id)
    require_write(actor, instance.project_id, what=f"instance {server_id}")
    return Instance.objects.select_for_update().get(pk=instance.pk)


def check_lock(actor: Actor, instance: Instance) -> None:
    if instance.locked and not actor.is_admin:
        raise InstanceLocked(f"Instance {instance.id} is locked")


def node_up(node_id: int | None) -> ComputeNode | None:
    from apps.compute import scheduler

    if node_id is None:
        return None
    return ComputeNode.objects.filter(scheduler.up_filter(), pk=node_id).first()


def start_task(actor: Actor, instance: Instance, action_name: str, *, request_id: str,
               api_name: str | None = None) -> tuple[states.Action, ComputeNode]:
    """Check the state, the lock and the node; set the task_state and record the action."""
    action = states.check(action_name, instance_id=instance.id, vm_state=instance.vm_state,
                          task_state=instance.task_state, api_name=api_name, name=instance.name)
    check_lock(actor, instance)
    node = node_up(instance.node_id)
    if node is None:
        raise Conflict(f"Cannot '{api_name or action.record}' instance {instance.id}: its compute host "
                       f"{instance.host or '(none)'} is not available.", names=named(instance))
    instance.task_state = action.task
    save(instance, "task_state")
    row = action_start(instance, record=action.record, request_id=request_id, user_id=actor.user_id,
                       project_id=actor.project_id)
    event_start(row, action.event, node.host)
    return action, node


def release_claim(instance: Instance) -> None:
    """Give the node back what the instance holds there (once: ``node`` is cleared on the locked row).
    A pending resize holds the new flavor too."""
    from apps.compute import scheduler

    if instance.node_id is None:
        return
    vcpus, memory_mb, disk_gb = instance.vcpus, instance.memory_mb, instance.disk_gb
    if instance.new_flavor:
        vcpus += int(instance.new_flavor["vcpus"])
        memory_mb += int(instance.new_flavor["ram"])
        disk_gb += flavor_disk(instance.new_flavor)
    scheduler.claim_release(node_id=instance.node_id, vcpus=vcpus, memory_mb=memory_mb, disk_gb=disk_gb)
    instance.node = None


def _quota_deltas(instance: Instance) -> dict[str, int]:
    deltas = {"instances": 1, "cores": instance.vcpus, "ram": instance.memory_mb}
    if instance.new_flavor:  # the growth reserved for a pending resize
        deltas["cores"] += max(0, int(instance.new_flavor["vcpus"]) - instance.vcpus)
        deltas["ram"] += max(0, int(instance.new_flavor["ram"]) - instance.memory_mb)
    return deltas


def ports_bind(instance: Instance, host: str, zone: str) -> None:
    from apps.networks import services as network_services
    from apps.networks.models import Port

    actor = service_actor(instance.project_id, instance.user_id)
    for port_id in Port.objects.filter(device_id=instance.id, project_id=instance.project_id).values_list(
            "id", flat=True):
        network_services.port_update(actor=actor, port_id=port_id, changes={
            "binding_host_id": host, "device_owner": f"compute:{zone}"})


def ports_unbind(instance: Instance) -> None:
    from apps.networks import services as network_services
    from apps.networks.models import Port

    actor = service_actor(instance.project_id, instance.user_id)
    for port_id in Port.objects.filter(device_id=instance.id, project_id=instance.project_id).exclude(
            binding_host_id="").values_list("id", flat=True):
        network_services.port_update(actor=actor, port_id=port_id, changes={"binding_host_id": ""})


def _delete_ports(instance: Instance) -> None:
    """Ports made for the instance are deleted; ports the user gave are detached and kept (Nova)."""
    from apps.networks import services as network_services
    from apps.networks.models import Port

    actor = service_actor(instance.project_id, instance.user_id)
    given = {str(r.get("port")) for r in (instance.requested_networks or []) if isinstance(r, dict) and r.get("port")}
    for port_id in Port.objects.filter(device_id=instance.id, project_id=instance.project_id).values_list(
            "id", flat=True):
        if port_id in given:
            network_services.port_update(actor=actor, port_id=port_id, changes={
                "device_id": "", "device_owner": "", "binding_host_id": ""})
        else:
            network_services.port_delete(actor=actor, port_id=port_id)


def mark_deleted(instance: Instance, *, request_id: str, host: str = "") -> None:
    """The end of an instance: claim, ports and quota given back, the row kept as deleted."""
    # lock order everywhere: instance row → quota usage → node → network/ports (as server_create takes them)
    identity_services.quota_release(project_id=instance.project_id, deltas=_quota_deltas(instance))
    release_claim(instance)
    _delete_ports(instance)
    boot_volumes.server_volumes_release(instance=instance)
    InstanceTag.objects.filter(instance=instance).delete()
    now = timezone.now()
    instance.vm_state = states.DELETED
    instance.task_state = None
    instance.power_state = states.NOSTATE
    instance.new_flavor = None
    instance.deleted = True
    instance.deleted_at = now
    instance.terminated_at = now
    save(instance, "vm_state", "task_state", "power_state", "new_flavor", "deleted", "deleted_at",
         "terminated_at", "node")
    event_finish(instance, request_id=request_id, record="delete", event="compute_terminate_instance", ok=True,
                 host=host)
    publish(instance, "deleted")
    telemetry_record(instance, "delete")  # (never launched: nothing recorded, or the pollster's resource closed)
