"""What the node agents share: the node queues (``<prefix><host>``) a worker consumes."""
from __future__ import annotations

from typing import Any


def consumed_hosts(sender: Any, prefix: str) -> list[str]:
    """The hosts whose queue ``<prefix><host>`` the worker ``sender`` (of ``worker_ready``) consumes;
    none when the sender is no consuming worker."""
    try:
        queues = [q.name for q in sender.task_consumer.queues]
    except AttributeError:
        return []
    return [name[len(prefix):] for name in queues if name.startswith(prefix)]
