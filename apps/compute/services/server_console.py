"""The server's console output, asked of its node while the caller waits."""
from __future__ import annotations

import logging

from apps.compute import states
from apps.compute.selectors import servers as server_selectors
from apps.compute.services.instances import node_up
from apps.core import tasks
from apps.core.errors import Conflict
from apps.identity.policy import Actor, require_write

log = logging.getLogger(__name__)

CONSOLE_TIMEOUT_SECONDS = 10  # how long os-getConsoleOutput waits for the node


def server_console_output(*, actor: Actor, server_id: str, length: int | None = None) -> str:
    """The last ``length`` lines of the guest's console (None: all), asked of its node (a writer's
    right, as in Nova); a node that does not answer in time is a 409."""
    instance = server_selectors.server_get(actor=actor, server_id=server_id)
    require_write(actor, instance.project_id, what=f"instance {server_id}")
    states.check("getConsoleOutput", instance_id=instance.id, vm_state=instance.vm_state,
                 task_state=instance.task_state, api_name="get_console_output")
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
