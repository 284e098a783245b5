"""Nova's instance state machine: vm_state (what the instance is), task_state (what is being done to
it), power_state (what the hypervisor says), the API status they map to, and the one table of
actions: in which vm_states each is allowed, the task_state it sets and where success leads."""
from __future__ import annotations

from dataclasses import dataclass

from apps.core.errors import Conflict

# ---- vm_state ------------------------------------------------------------------------------------
ACTIVE = "active"
BUILDING = "building"
PAUSED = "paused"
SUSPENDED = "suspended"
STOPPED = "stopped"
RESCUED = "rescued"
RESIZED = "resized"
SOFT_DELETED = "soft-delete"
DELETED = "deleted"
ERROR = "error"
SHELVED = "shelved"
SHELVED_OFFLOADED = "shelved_offloaded"

VM_STATES = (ACTIVE, BUILDING, PAUSED, SUSPENDED, STOPPED, RESCUED, RESIZED, SOFT_DELETED, DELETED, ERROR,
             SHELVED, SHELVED_OFFLOADED)

# ---- task_state ----------------------------------------------------------------------------------
SCHEDULING = "scheduling"
BLOCK_DEVICE_MAPPING = "block_device_mapping"
NETWORKING = "networking"
SPAWNING = "spawning"
IMAGE_SNAPSHOT = "image_snapshot"
IMAGE_SNAPSHOT_PENDING = "image_snapshot_pending"
IMAGE_PENDING_UPLOAD = "image_pending_upload"
IMAGE_UPLOADING = "image_uploading"
UPDATING_PASSWORD = "updating_password"
RESIZE_PREP = "resize_prep"
RESIZE_MIGRATING = "resize_migrating"
RESIZE_MIGRATED = "resize_migrated"
RESIZE_FINISH = "resize_finish"
RESIZE_REVERTING = "resize_reverting"
RESIZE_CONFIRMING = "resize_confirming"
REBOOTING = "rebooting"
REBOOT_PENDING = "reboot_pending"
REBOOT_STARTED = "reboot_started"
REBOOTING_HARD = "rebooting_hard"
REBOOT_PENDING_HARD = "reboot_pending_hard"
REBOOT_STARTED_HARD = "reboot_started_hard"
PAUSING = "pausing"
UNPAUSING = "unpausing"
SUSPENDING = "suspending"
RESUMING = "resuming"
POWERING_OFF = "powering-off"
POWERING_ON = "powering-on"
REBUILDING = "rebuilding"
REBUILD_BLOCK_DEVICE_MAPPING = "rebuild_block_device_mapping"
REBUILD_SPAWNING = "rebuild_spawning"
MIGRATING = "migrating"
DELETING = "deleting"

TASK_STATES = (SCHEDULING, BLOCK_DEVICE_MAPPING, NETWORKING, SPAWNING, IMAGE_SNAPSHOT, IMAGE_SNAPSHOT_PENDING,
               IMAGE_PENDING_UPLOAD, IMAGE_UPLOADING, UPDATING_PASSWORD, RESIZE_PREP, RESIZE_MIGRATING,
               RESIZE_MIGRATED, RESIZE_FINISH, RESIZE_REVERTING, RESIZE_CONFIRMING, REBOOTING, REBOOT_PENDING,
               REBOOT_STARTED, REBOOTING_HARD, REBOOT_PENDING_HARD, REBOOT_STARTED_HARD, PAUSING, UNPAUSING,
               SUSPENDING, RESUMING, POWERING_OFF, POWERING_ON, REBUILDING, REBUILD_BLOCK_DEVICE_MAPPING,
               REBUILD_SPAWNING, MIGRATING, DELETING)

# ---- power_state (libvirt's numbers, as Nova shows them) ----------------------------------------
NOSTATE = 0
RUNNING = 1
PAUSED_POWER = 3
SHUTDOWN = 4
CRASHED = 6
SUSPENDED_POWER = 7
POWER_STATES = {NOSTATE: "NOSTATE", RUNNING: "Running", PAUSED_POWER: "Paused", SHUTDOWN: "Shutdown",
                CRASHED: "Crashed", SUSPENDED_POWER: "Suspended"}

# ---- block device mapping status (compute.BlockDeviceMapping): attaching until the node reports
# the device, attached, detaching until the node lets it go (then the row goes) -------------------
BDM_ATTACHING = "attaching"
BDM_ATTACHED = "attached"
BDM_DETACHING = "detaching"
BDM_STATUSES = (BDM_ATTACHING, BDM_ATTACHED, BDM_DETACHING)

# ---- (vm_state, task_state) → API status (Nova's nova/api/openstack/common.py _STATE_MAP) --------
_REBOOT = {REBOOTING: "REBOOT", REBOOT_PENDING: "REBOOT", REBOOT_STARTED: "REBOOT",
           REBOOTING_HARD: "HARD_REBOOT", REBOOT_PENDING_HARD: "HARD_REBOOT", REBOOT_STARTED_HARD: "HARD_REBOOT"}
_REBUILD = {REBUILDING: "REBUILD", REBUILD_BLOCK_DEVICE_MAPPING: "REBUILD", REBUILD_SPAWNING: "REBUILD"}
_RESIZE = {RESIZE_PREP: "RESIZE", RESIZE_MIGRATING: "RESIZE", RESIZE_MIGRATED: "RESIZE", RESIZE_FINISH: "RESIZE"}

STATUS_MAP: dict[str, dict[str | None, str]] = {
    ACTIVE: {None: "ACTIVE", **_REBOOT, UPDATING_PASSWORD: "PASSWORD", **_REBUILD, MIGRATING: "MIGRATING",
             **_RESIZE},
    BUILDING: {None: "BUILD"},
    STOPPED: {None: "SHUTOFF", **_RESIZE, **_REBUILD, REBOOTING_HARD: "HARD_REBOOT"},
    RESIZED: {None: "VERIFY_RESIZE", RESIZE_REVERTING: "REVERT_RESIZE"},
    PAUSED: {None: "PAUSED", MIGRATING: "MIGRATING", REBOOTING_HARD: "HARD_REBOOT"},
    SUSPENDED: {None: "SUSPENDED", REBOOTING_HARD: "HARD_REBOOT"},
    RESCUED: {None: "RESCUE"},
    ERROR: {None: "ERROR", **_REBUILD, REBOOTING_HARD: "HARD_REBOOT"},
    DELETED: {None: "DELETED"},
    SOFT_DELETED: {None: "SOFT_DELETED"},
    SHELVED: {None: "SHELVED"},
    SHELVED_OFFLOADED: {None: "SHELVED_OFFLOADED"},
}


def status(vm_state: str, task_state: str | None) -> str:
    """The API's ``status`` of an instance in (vm_state, task_state)."""
    by_task = STATUS_MAP.get(vm_state)
    if by_task is None:
        return "UNKNOWN"
    return by_task.get(task_state, by_task.get(None, "UNKNOWN"))


def vm_states_for_status(value: str) -> list[tuple[str, str | None, bool]]:
    """The (vm_state, task_state, any_task) combinations showing as ``value`` (the list filter
    ``status=``). ``any_task`` means: the task_state is not one mapped to another status."""
    value = value.upper()
    found: list[tuple[str, str | None, bool]] = []
    for vm_state, by_task in STATUS_MAP.items():
        for task_state, shown in by_task.items():
            if shown == value:
                found.append((vm_state, task_state, task_state is None))
    return found


# ---- the action table ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Action:
    """One action on an instance.

    ``allowed``: the vm_states it may start in (always with task_state None, unless ``any_task``);
    ``task``: the task_state set when accepted (None: nothing runs on the node);
    ``done``: the vm_state a success report leads to (None: the vm_state it started in);
    ``failed``: the vm_state a failure leads to (None: back to the vm_state it started in);
    ``tasks``: the task_states a node may report as finished for it (``task`` and its later steps);
    ``record``: the name in os-instance-actions; ``event``: the node-side event's name."""

    name: str
    allowed: frozenset[str]
    task: str | None
    done: str | None
    failed: str | None
    record: str
    event: str
    tasks: frozenset[str] = frozenset()
    any_task: bool = False

    def accepts(self, task: str) -> bool:
        return task == self.task or task in self.tasks


_ALL_LIVE = frozenset({ACTIVE, BUILDING, PAUSED, SUSPENDED, STOPPED, RESCUED, RESIZED, ERROR, SHELVED,
                       SHELVED_OFFLOADED, SOFT_DELETED})

ACTIONS: dict[str, Action] = {a.name: a for a in (
    Action("create", frozenset(), SCHEDULING, ACTIVE, ERROR, "create", "compute__do_build_and_run_instance",
           frozenset({SCHEDULING, NETWORKING, BLOCK_DEVICE_MAPPING, SPAWNING})),
    Action("delete", _ALL_LIVE, DELETING, DELETED, None, "delete", "compute_terminate_instance",
           any_task=True),
    Action("reboot_soft", frozenset({ACTIVE}), REBOOTING, ACTIVE, ERROR, "reboot", "compute_reboot_instance",
           frozenset({REBOOT_PENDING, REBOOT_STARTED})),
    Action("reboot_hard", frozenset({ACTIVE, STOPPED, PAUSED, SUSPENDED, ERROR}), REBOOTING_HARD, ACTIVE, ERROR,
           "reboot", "compute_reboot_instance", frozenset({REBOOT_PENDING_HARD, REBOOT_STARTED_HARD})),
    Action("stop", frozenset({ACTIVE, ERROR}), POWERING_OFF, STOPPED, None, "stop", "compute_stop_instance"),
    Action("start", frozenset({STOPPED}), POWERING_ON, ACTIVE, None, "start", "compute_start_instance"),
    Action("pause", frozenset({ACTIVE}), PAUSING, PAUSED, None, "pause", "compute_pause_instance"),
    Action("unpause", frozenset({PAUSED}), UNPAUSING, ACTIVE, None, "unpause", "compute_unpause_instance"),
    Action("suspend", frozenset({ACTIVE}), SUSPENDING, SUSPENDED, None, "suspend", "compute_suspend_instance"),
    Action("resume", frozenset({SUSPENDED}), RESUMING, ACTIVE, None, "resume", "compute_resume_instance"),
    Action("rebuild", frozenset({ACTIVE, STOPPED, ERROR}), REBUILDING, ACTIVE, ERROR, "rebuild",
           "compute_rebuild_instance", frozenset({REBUILD_BLOCK_DEVICE_MAPPING, REBUILD_SPAWNING})),
    Action("resize", frozenset({ACTIVE, STOPPED}), RESIZE_PREP, RESIZED, ERROR, "resize", "compute_resize_instance",
           frozenset({RESIZE_MIGRATING, RESIZE_MIGRATED, RESIZE_FINISH})),
    Action("confirmResize", frozenset({RESIZED}), RESIZE_CONFIRMING, ACTIVE, ERROR, "confirmResize",
           "compute_confirm_resize"),
    Action("revertResize", frozenset({RESIZED}), RESIZE_REVERTING, ACTIVE, ERROR, "revertResize",
           "compute_revert_resize"),
    Action("createImage", frozenset({ACTIVE, STOPPED, PAUSED, SUSPENDED}), IMAGE_SNAPSHOT, None, None,
           "createImage", "compute_snapshot_instance",
           frozenset({IMAGE_SNAPSHOT_PENDING, IMAGE_PENDING_UPLOAD, IMAGE_UPLOADING})),
    Action("lock", _ALL_LIVE, None, None, None, "lock", "", any_task=True),
    Action("unlock", _ALL_LIVE, None, None, None, "unlock", "", any_task=True),
    Action("getConsoleOutput", frozenset({ACTIVE, STOPPED, PAUSED, SUSPENDED, RESIZED, ERROR, RESCUED}), None, None,
           None, "getConsoleOutput", "", any_task=True),
    # the interactive serial console: a running guest's (nothing runs on the node for the instance)
    Action("getSerialConsole", frozenset({ACTIVE, PAUSED, RESCUED, RESIZED}), None, None, None, "getSerialConsole",
           "", any_task=True),
    Action("getVNCConsole", frozenset({ACTIVE, PAUSED, RESCUED, RESIZED}), None, None, None, "getVNCConsole",
           "", any_task=True),
    # microversion 2.17: an NMI to the guest (no task_state; the node records how it went)
    Action("trigger_crash_dump", frozenset({ACTIVE, PAUSED, RESCUED, RESIZED, ERROR}), None, None, None,
           "trigger_crash_dump", "compute_trigger_crash_dump"),
)}

# power actions sent to workers.compute.power
POWER_ACTIONS = {"reboot_soft": "reboot_soft", "reboot_hard": "reboot_hard", "stop": "stop", "start": "start",
                 "pause": "pause", "unpause": "unpause", "suspend": "suspend", "resume": "resume"}


def action_for_task(task: str) -> Action | None:
    """The action whose running task_state (or a later step of it) is ``task``."""
    for action in ACTIONS.values():
        if action.task is not None and action.accepts(task):
            return action
    return None


class InstanceInvalidState(Conflict):
    """Nova's 409 for an action in the wrong state."""


def check(action: str, *, instance_id: str, vm_state: str, task_state: str | None,
          api_name: str | None = None, name: str = "") -> Action:
    """The action if the instance may start it now, else 409 conflictingRequest as Nova words it (the
    dashboard says the instance's ``name`` where Nova says its id)."""
    entry = ACTIONS[action]
    shown = api_name or entry.record
    names = {instance_id: name} if name else {}
    if vm_state not in entry.allowed:
        raise InstanceInvalidState(f"Cannot '{shown}' instance {instance_id} while it is in vm_state {vm_state}",
                                   names=names)
    if task_state is not None and not entry.any_task:
        raise InstanceInvalidState(f"Cannot '{shown}' instance {instance_id} while it is in task_state "
                                   f"{task_state}", names=names)
    return entry
