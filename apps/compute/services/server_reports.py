"""The reports compute nodes send back (workers/compute.py, workers/compute_control.py). Each report
records the instance action's event, a fault on failure, releases claims exactly once (the instance
row is locked and ``node`` cleared in the same transaction) and publishes the change on commit so the
dashboard updates live."""
from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.compute import states
from apps.compute import states as _sm
from apps.compute.models import Instance, InstanceAction
from apps.compute.services import boot_volumes
from apps.compute.services.instance_actions import action_find, event_finish, fault_record
from apps.compute.services.instances import (
    flavor_disk,
    mark_deleted,
    owner_actor,
    ports_bind,
    ports_unbind,
    publish,
    release_claim,
    save,
    telemetry_record,
)
from apps.compute.services.servers import dispatch_spawn, fail_build, placement, schedule
from apps.core.errors import Conflict, NotFound, StratusError
from apps.identity import services as identity_services

log = logging.getLogger(__name__)


def _locked(instance_id: str) -> Instance | None:
    return Instance.objects.select_for_update().filter(pk=instance_id).first()


def server_spawned(*, instance_id: str, host: str, power_state: int, request_id: str = "",
                   graphics: str | None = None) -> None:
    """The node booted the instance: ACTIVE, launched now; ``graphics``: its domain's screens (see
    ``Instance.graphics``; None: not read)."""
    with transaction.atomic():
        instance = _locked(instance_id)
        if instance is None or instance.deleted or instance.vm_state != states.BUILDING or instance.host != host:
            log.info("stale spawn report for %s from %s", instance_id, host)
            return
        if instance.task_state == states.DELETING:  # deleted while building: the node's destroy follows
            instance.power_state = int(power_state)
            save(instance, "power_state")
            return
        instance.vm_state = states.ACTIVE
        instance.task_state = None
        instance.power_state = int(power_state)
        instance.launched_at = timezone.now()
        if graphics is not None:
            instance.graphics = graphics
        save(instance, "vm_state", "task_state", "power_state", "launched_at", "graphics")
        boot_volumes.boot_volumes_attached(instance=instance, host=host)
        event_finish(instance, request_id=request_id, record="create", event="compute__do_build_and_run_instance",
                     ok=True, host=host)
        publish(instance)
        telemetry_record(instance, "create")


def server_boot_volumes_ready(*, instance_id: str, host: str, request_id: str = "") -> str:
    """The node asks, before it builds the domain, whether the server's new volumes are made:
    "ready" (each reserved for it), "waiting" (ask again), "gone" (deleted or being deleted, or no
    longer building: build nothing), "moved" (placed on another host since: build nothing, and remove
    whatever an earlier run left on ``host``) or "failed": a volume went to error, so the server is in
    ERROR with the fault, its claim and port bindings released (no other node would do better)."""
    with transaction.atomic():
        instance = _locked(instance_id)
        if instance is None or instance.deleted or instance.task_state == states.DELETING:
            return "gone"
        if instance.host != host:
            return "moved"
        if instance.vm_state != states.BUILDING:
            return "gone"
        outcome, reason = boot_volumes.boot_volumes_check(instance=instance)
        if outcome == "failed":
            _boot_volume_failed(instance, host=host, message=f"Build of instance {instance.id} aborted: {reason}",
                                request_id=request_id)
        return outcome


def server_boot_volumes_timed_out(*, instance_id: str, host: str, seconds: float, request_id: str = "") -> None:
    """The node waited ``seconds`` for the server's volumes: ERROR with the fault, claims released."""
    with transaction.atomic():
        instance = _locked(instance_id)
        if instance is None or instance.deleted or instance.vm_state != states.BUILDING or instance.host != host:
            return
        _boot_volume_failed(instance, host=host, request_id=request_id,
                            message=f"Build of instance {instance.id} aborted: its volumes did not finish being "
                                    f"created even after we waited {int(seconds)} seconds.")


def _boot_volume_failed(instance: Instance, *, host: str, message: str, request_id: str) -> None:
    release_claim(instance)
    ports_unbind(instance)
    fail_build(instance, message=message, request_id=request_id, host=host)


def server_spawn_failed(*, instance_id: str, host: str, message: str, details: str = "",
                        request_id: str = "", reschedule: bool = True) -> None:
    """The node could not boot the instance: its claim and port bindings there are released; another
    node is tried while attempts < STRATUS_SCHEDULER_MAX_ATTEMPTS, else ERROR with the fault. A failure
    no other node would avoid (``reschedule=False``: the image was refused, Nova's ImageUnacceptable
    aborting the build) goes to ERROR with its own message at once."""
    from apps.images.models import Image

    with transaction.atomic():
        instance = _locked(instance_id)
        if instance is None or instance.deleted or instance.vm_state != states.BUILDING or instance.host != host:
            log.info("stale spawn failure for %s from %s", instance_id, host)
            return
        event_finish(instance, request_id=request_id, record="create", event="compute__do_build_and_run_instance",
                     ok=False, host=host, traceback=details or message, finish_action=False)
        release_claim(instance)
        ports_unbind(instance)
        if instance.task_state == states.DELETING:
            save(instance, "node")
            return
        if not reschedule:
            fail_build(instance, message=message, details=details, request_id=request_id, host=host, event=None)
            return
        max_attempts = settings.STRATUS_SCHEDULER_MAX_ATTEMPTS
        if instance.attempts >= max_attempts:
            fail_build(instance, message=f"Exceeded maximum number of retries. Exceeded max scheduling attempts "
                                          f"{max_attempts} for instance {instance.id}. Last exception: {message}",
                       details=details, request_id=request_id, host=host, event=None)
            return
        image = Image.objects.filter(pk=instance.image_id).first()
        node = schedule(placement(
            instance, force_host=None, group=instance.server_group,
            image_properties=(image.properties if image is not None else {}) or {},
            exclude=tuple(instance.tried_hosts)))
        if isinstance(node, str):
            fail_build(instance, message=node, details=f"Last failure on {host}: {message}\n{details}".strip(),
                       request_id=request_id, host=host, event=None)
            return
        instance.task_state = states.SCHEDULING
        ports_bind(instance, node.host, node.availability_zone)
        dispatch_spawn(instance, node, request_id=request_id, action=action_find(instance, request_id, "create"))
        publish(instance)


def _quota_give_back(project_id: str, deltas: dict[str, int]) -> None:
    if any(deltas.values()):
        identity_services.quota_release(project_id=project_id, deltas={k: v for k, v in deltas.items() if v})


def _finish_resize_done(instance: Instance, action: states.Action) -> None:
    """Confirm: the new flavor becomes the instance's, the old claim and quota are given back.
    Revert: the new flavor's claim and the growth reserved are given back."""
    from apps.compute import scheduler

    new = instance.new_flavor
    if not new:
        return
    if action.name == "confirmResize":
        old_claim = {"vcpus": instance.vcpus, "ram": instance.memory_mb, "disk": instance.disk_gb}
        release = {"cores": max(0, instance.vcpus - int(new["vcpus"])),
                   "ram": max(0, instance.memory_mb - int(new["ram"]))}
        _quota_give_back(instance.project_id, release)
        instance.vcpus, instance.memory_mb = int(new["vcpus"]), int(new["ram"])
        instance.root_gb, instance.ephemeral_gb, instance.swap = int(new["disk"]), int(new["ephemeral"]), \
            int(new["swap"])
        instance.flavor_ref = str(new.get("flavorid", instance.flavor_ref))
        instance.flavor = dict(new)
        if instance.node_id is not None:
            scheduler.claim_release(node_id=instance.node_id, vcpus=old_claim["vcpus"],
                                    memory_mb=old_claim["ram"], disk_gb=old_claim["disk"])
    else:
        _quota_give_back(instance.project_id, {"cores": max(0, int(new["vcpus"]) - instance.vcpus),
                                               "ram": max(0, int(new["ram"]) - instance.memory_mb)})
        if instance.node_id is not None:
            scheduler.claim_release(node_id=instance.node_id, vcpus=int(new["vcpus"]), memory_mb=int(new["ram"]),
                                    disk_gb=flavor_disk(new))
    instance.new_flavor = None


def server_task_done(*, instance_id: str, host: str, task: str, power_state: int, request_id: str = "",
                     graphics: str | None = None) -> None:
    """The node finished ``task`` (the task_state being finished): the instance goes to the action's
    ``done`` vm_state, its task cleared; ``graphics`` as ``server_spawned``'s (a rebuild defines the
    domain again)."""
    with transaction.atomic():
        instance = _locked(instance_id)
        if instance is None or instance.deleted or instance.task_state is None or instance.host != host:
            log.info("stale task report %s for %s from %s", task, instance_id, host)
            return
        action = states.action_for_task(instance.task_state)
        if action is None or action.name in ("create", "delete") or not (action.accepts(task)
                                                                         or task == instance.task_state):
            log.info("task report %s for %s does not match its task_state %s", task, instance_id,
                     instance.task_state)
            return
        previous = instance.vm_state
        if action.name in ("confirmResize", "revertResize"):
            _finish_resize_done(instance, action)
        instance.power_state = int(power_state)
        if action.name in ("rebuild", "confirmResize", "revertResize"):
            instance.vm_state = states.STOPPED if instance.power_state == states.SHUTDOWN else states.ACTIVE
        else:
            instance.vm_state = action.done or previous
        instance.task_state = None
        if graphics is not None:
            instance.graphics = graphics
        save(instance, "vm_state", "task_state", "power_state", "new_flavor", "vcpus", "memory_mb", "root_gb",
             "ephemeral_gb", "swap", "flavor", "flavor_ref", "graphics")
        event_finish(instance, request_id=request_id, record=action.record, event=action.event, ok=True, host=host)
        publish(instance)
        if action.name == "confirmResize":
            telemetry_record(instance, "update")


def server_task_failed(*, instance_id: str, host: str, message: str, details: str = "",
                       request_id: str = "") -> None:
    """The node could not finish ``task``: a fault, the event in error, and the action's ``failed``
    vm_state (or back to where it was); a failed snapshot's image is deleted."""
    from apps.compute import scheduler

    with transaction.atomic():
        instance = _locked(instance_id)
        if instance is None or instance.deleted or instance.task_state is None or instance.host != host:
            log.info("stale task failure for %s from %s", instance_id, host)
            return
        action = states.action_for_task(instance.task_state)
        if action is None or action.name == "create":
            return
        if action.name == "delete":  # the node could not destroy it: ERROR, the user may delete again
            instance.vm_state = states.ERROR
        if action.name == "resize" and instance.new_flavor and instance.node_id is not None:
            new = instance.new_flavor
            _quota_give_back(instance.project_id, {"cores": max(0, int(new["vcpus"]) - instance.vcpus),
                                                   "ram": max(0, int(new["ram"]) - instance.memory_mb)})
            scheduler.claim_release(node_id=instance.node_id, vcpus=int(new["vcpus"]), memory_mb=int(new["ram"]),
                                    disk_gb=flavor_disk(new))
            instance.new_flavor = None
        if action.name == "createImage":
            _drop_snapshots(instance)
        instance.vm_state = action.failed or instance.vm_state
        instance.task_state = None
        save(instance, "vm_state", "task_state", "new_flavor")
        fault_record(instance, message=message, details=details, host=host)
        event_finish(instance, request_id=request_id, record=action.record, event=action.event, ok=False,
                     host=host, traceback=details or message)
        publish(instance)


def _drop_snapshots(instance: Instance) -> None:
    from apps.images import services as image_services
    from apps.images.models import Image

    actor = owner_actor(instance)
    for image in Image.objects.filter(owner=instance.project_id, properties__instance_uuid=instance.id,
                                      status__in=[Image.QUEUED, Image.SAVING]):
        boot_volumes.volume_snapshots_drop(image=image, instance=instance)
        try:
            image_services.image_delete(actor=actor, image_id=image.id)
        except StratusError:
            log.exception("could not delete the failed snapshot %s", image.id)


def server_destroyed(*, instance_id: str, host: str, request_id: str = "") -> None:
    """The node removed the domain and its files: the instance is deleted (claim, ports, quota back)."""
    with transaction.atomic():
        instance = _locked(instance_id)
        if instance is None or instance.deleted or instance.host != host:  # a node speaks of its own only
            log.info("stale destroy report for %s from %s", instance_id, host)
            return
        mark_deleted(instance, request_id=request_id, host=host)


def server_crash_dump_report(*, instance_id: str, host: str, request_id: str, ok: bool,
                             message: str = "") -> None:
    """The node's answer to ``server_crash_dump``: the instance action's event finishes (no state
    changes: the guest decides what an NMI does)."""
    instance = Instance.objects.filter(pk=instance_id).first()
    if instance is None or instance.host != host:  # deleted meanwhile, or not this node's to report on
        return
    event_finish(instance, request_id=request_id, record="trigger_crash_dump", event="compute_trigger_crash_dump",
                 ok=ok, host=host, traceback=message or None)


def server_power_states_report(*, host: str, states: Mapping[str, int],
                               graphics: Mapping[str, str] | None = None) -> None:
    """A node's periodic power-state sync (``states``: instance id → power state; instances of the
    host it does not list have no domain). Only settled instances (no task) change: the power state is
    recorded, and an ACTIVE instance found shut down becomes SHUTOFF (Nova's sync stops it).
    ``graphics`` (instance id → its domain's screens) is recorded for each of the host's instances
    whose record differs, whatever its state (instances defined before their node gave domains VNC
    learn here that they have none): one query a distinct value."""
    reported = states
    sm = _sm
    by_value: dict[str, list[str]] = {}
    for instance_id, kinds in (graphics or {}).items():
        by_value.setdefault(kinds, []).append(instance_id)
    for kinds, ids in by_value.items():
        Instance.objects.filter(host=host, deleted=False, pk__in=ids).exclude(graphics=kinds).update(graphics=kinds)
    with transaction.atomic():
        rows = list(Instance.objects.select_for_update().filter(
            host=host, node__isnull=False, deleted=False, task_state__isnull=True)
            .exclude(vm_state__in=[sm.BUILDING, sm.ERROR]))
        for instance in rows:
            power = int(reported.get(instance.id, sm.NOSTATE))
            fields = []
            if power != instance.power_state:
                instance.power_state = power
                fields.append("power_state")
            if instance.vm_state == sm.ACTIVE and power in (sm.SHUTDOWN, sm.CRASHED):
                instance.vm_state = sm.STOPPED
                fields.append("vm_state")
            if fields:
                save(instance, *fields)
                publish(instance)


def server_volume_snapshots_ready(*, instance_id: str, image_id: str, host: str) -> str:
    """createImage of a volume-backed server: "ready" once every volume snapshot the image points at
    is available (the image is then made active, with no data, as Nova's is), else "waiting"; a
    snapshot in error is a Conflict (the node reports the task failed). Only for an instance on
    ``host`` (the asking node) whose snapshot ``image_id`` is (its ``instance_uuid``)."""
    from apps.images import services as image_services
    from apps.images.models import Image

    instance = Instance.objects.filter(pk=instance_id, host=host).first()
    image = Image.objects.filter(pk=image_id, properties__instance_uuid=instance_id).first()
    if instance is None or image is None:
        raise NotFound(f"Image {image_id} of instance {instance_id} on {host} could not be found.")
    outcome, reason = boot_volumes.volume_snapshots_check(image=image)
    if outcome == "failed":
        raise Conflict(reason)
    if outcome == "ready" and image.status == Image.QUEUED:
        image_services.image_upload(actor=owner_actor(instance), image_id=image.id, chunks=[])
    return outcome


def server_build_timeouts() -> int:
    """BUILD for longer than STRATUS_BUILD_TIMEOUT_SECONDS → ERROR with its claim released (periodic).
    The same sweep releases the volumes of deleted servers that were still being made at the delete."""
    boot_volumes.deleted_servers_volumes_release()
    timeout = settings.STRATUS_BUILD_TIMEOUT_SECONDS
    cutoff = timezone.now() - timedelta(seconds=timeout)
    done = 0
    for instance_id in Instance.objects.filter(vm_state=states.BUILDING, deleted=False, created_at__lt=cutoff) \
            .values_list("id", flat=True):
        with transaction.atomic():
            instance = _locked(instance_id)
            if instance is None or instance.deleted or instance.vm_state != states.BUILDING:
                continue
            host = instance.host or ""
            release_claim(instance)
            fail_build(instance, message=f"Build of instance {instance.id} aborted: timed out after "
                                          f"{int(timeout)} seconds in BUILD.", host=host,
                       request_id=(action_find(instance, "", "create") or InstanceAction(request_id="")).request_id)
            done += 1
    return done
