"""The server's console: its output asked of its node while the caller waits (os-getConsoleOutput),
and the interactive serial console that a socket opens on the node (``server_serial_console_open``).

The serial console's data path: the browser's socket (``apps/compute/consumers.py``) asks this service
to open the console, which sends ``workers.compute.serial_console`` to the instance's node with the
socket's channel; the node opens the domain's serial console (libvirt's virDomainOpenConsole) and relays
it over the channel layer: output to that channel, the keys typed to a channel of its own that it names
in its first message. Only a node whose hypervisor has consoles (QEMU, not libvirt's test driver) can.
The VNC console (``server_vnc_console_open``) is the same path with ``workers.compute.vnc_console``: the
node connects to the domain's VNC server (which its qemu domains have on the node's own address) and
relays the RFB bytes unchanged. Whether a domain has one is per instance (``Instance.graphics``, what its
node reads of the domain's definition and reports): a domain defined before its node gave domains VNC has
none.
"""
from __future__ import annotations

import logging

from apps.compute import states
from apps.compute.models import ComputeNode, Instance
from apps.compute.selectors import servers as server_selectors
from apps.compute.services.instances import node_up
from apps.core import tasks
from apps.core.errors import BadRequest, Conflict
from apps.core.models import TaskRecord
from apps.identity.policy import Actor, require_write

log = logging.getLogger(__name__)

CONSOLE_TIMEOUT_SECONDS = 10  # how long os-getConsoleOutput waits for the node
# The node must open a serial console within this long (the task expires; the socket gives up).
SERIAL_CONSOLE_OPEN_SECONDS = 20
# Hypervisors whose domains have no console to open (libvirt's test driver): their console log only.
NO_SERIAL_CONSOLE = frozenset({"test"})
# ... and no screen: the qemu/kvm nodes give their domains a VNC server (settings.STRATUS_VNC_LISTEN).
NO_GRAPHICS = frozenset({"test"})
# The interactive consoles: kind -> (the state table's action, what the node runs, its name for people)
CONSOLES = {"serial": ("getSerialConsole", "workers.compute.serial_console", "serial console"),
            "vnc": ("getVNCConsole", "workers.compute.vnc_console", "graphical (VNC) console")}


def server_console_output(*, actor: Actor, server_id: str, length: int | None = None) -> str:
    """The last ``length`` lines of the guest's console (None: all), asked of its node (a writer's
    right, as in Nova); a node that does not answer in time is a 409."""
    instance = server_selectors.server_get(actor=actor, server_id=server_id)
    require_write(actor, instance.project_id, what=f"instance {server_id}")
    states.check("getConsoleOutput", instance_id=instance.id, vm_state=instance.vm_state,
                 task_state=instance.task_state, api_name="get_console_output", name=instance.name)
    node = node_up(instance.node_id)
    if node is None:
        raise Conflict(f"Instance {instance.id} is not ready: its compute host is not available.")
    # a read, sent at once (outside any transaction) and useless late: it expires with the wait
    record = tasks.enqueue("workers.compute.console_output", queue=node.queue,
                           kwargs={"instance_id": instance.id, "length": length}, action="getConsoleOutput",
                           resource_type="instance", resource_id=instance.id, project_id=instance.project_id,
                           user_id=actor.user_id, expires=CONSOLE_TIMEOUT_SECONDS)
    try:
        return str(tasks.task_result(record=record, timeout=CONSOLE_TIMEOUT_SECONDS) or "")
    except Exception as exc:  # noqa: BLE001 - timeout, broker or node error: Nova's ConsoleNotAvailable
        log.warning("console output of %s failed: %s", instance.id, exc)
        raise Conflict(f"Guest console of instance {instance.id} is not available right now.") from None


def serial_console_available(*, instance: Instance) -> bool:
    """Whether the instance's node can open its serial console (what the console page offers)."""
    node = instance.node
    return node is not None and node.hypervisor_type not in NO_SERIAL_CONSOLE


def has_vnc(instance: Instance) -> bool | None:
    """Whether the instance's domain has a VNC server, as its node reported its graphics (None: not
    reported yet)."""
    if instance.graphics is None:
        return None
    return "vnc" in instance.graphics.split(",")


def vnc_console_state(*, instance: Instance) -> str:
    """What the console page can say of the instance's screen: "available" (its domain has a VNC server),
    "none" (its domain was defined without graphics: before its node gave its domains VNC), "unknown" (its
    node has not reported its graphics yet: they are read at the spawn, after each task and in every power
    sync) or "unsupported" (no node, or a hypervisor without graphics: libvirt's test driver)."""
    node = instance.node
    if node is None or node.hypervisor_type in NO_GRAPHICS:
        return "unsupported"
    vnc = has_vnc(instance)
    return "unknown" if vnc is None else "available" if vnc else "none"


def vnc_console_available(*, instance: Instance) -> bool:
    """Whether the instance's domain has a screen to show (``vnc_console_state``)."""
    return vnc_console_state(instance=instance) == "available"


def server_remote_console_check(*, actor: Actor, server_id: str, kind: str) -> tuple[Instance, ComputeNode]:
    """The instance and its node if ``actor`` may open its ``kind`` console ("serial" or "vnc") now (a
    writer's right, as Nova's os-remote-consoles): 404 for another project's, 403 for a reader, 409 when
    the instance is not running or its node is down, 400 when its hypervisor has no such console."""
    action, _task, what = CONSOLES[kind]
    instance = server_selectors.server_get(actor=actor, server_id=server_id)
    require_write(actor, instance.project_id, what=f"instance {server_id}")
    states.check(action, instance_id=instance.id, vm_state=instance.vm_state, task_state=instance.task_state,
                 api_name=f"get_{kind}_console", name=instance.name)
    node = node_up(instance.node_id)
    if node is None:
        raise Conflict(f"Instance {instance.id} is not ready: its compute host is not available.")
    if node.hypervisor_type in (NO_SERIAL_CONSOLE if kind == "serial" else NO_GRAPHICS):  # ConsoleTypeUnavailable
        raise BadRequest(f"The compute host of instance {instance.id} ({node.hypervisor_type} hypervisor) has no "
                         f"{what}; its console log is below.")
    if kind == "vnc" and has_vnc(instance) is False:  # not reported yet: the node says (ConsoleUnavailable)
        raise BadRequest(f"Instance {instance.id} has no {what}: its domain has no graphics.")
    return instance, node


def server_serial_console_check(*, actor: Actor, server_id: str) -> tuple[Instance, ComputeNode]:
    """``server_remote_console_check`` for the serial console."""
    return server_remote_console_check(actor=actor, server_id=server_id, kind="serial")


def server_remote_console_open(*, actor: Actor, server_id: str, kind: str, reply_channel: str) -> TaskRecord:
    """Ask the instance's node to open its ``kind`` console ("serial" or "vnc") and relay it to the channel
    ``reply_channel`` (a socket's); refused as ``server_remote_console_check`` says."""
    instance, node = server_remote_console_check(actor=actor, server_id=server_id, kind=kind)
    action, task, _what = CONSOLES[kind]
    return tasks.enqueue(task, queue=node.queue, kwargs={"instance_id": instance.id, "reply_channel": reply_channel},
                         action=action, resource_type="instance", resource_id=instance.id,
                         project_id=instance.project_id, user_id=actor.user_id, expires=SERIAL_CONSOLE_OPEN_SECONDS)


def server_serial_console_open(*, actor: Actor, server_id: str, reply_channel: str) -> TaskRecord:
    """``server_remote_console_open`` for the serial console."""
    return server_remote_console_open(actor=actor, server_id=server_id, kind="serial", reply_channel=reply_channel)
