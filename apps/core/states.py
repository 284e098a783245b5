"""The task record's state machine (``apps.core.models.TaskRecord.status``), written once as a table of
allowed transitions. ``apps.core.tasks`` moves a record only through it.

    pending --sent on commit--> sent --a worker starts it--> running --> succeeded | failed
    pending | retrying --the broker refused it--> retrying (the beat task sends it again)
    pending | retrying | sent --expired before a worker ran it--> failed
    running --redelivered (acks_late: its worker died)--> running
"""
from __future__ import annotations

PENDING = "pending"      # written in the caller's transaction; sent once it commits
SENT = "sent"            # on the broker, waiting for a worker of its queue
RUNNING = "running"      # a worker runs it
SUCCEEDED = "succeeded"
FAILED = "failed"
RETRYING = "retrying"    # the broker refused it; the beat task sends it again

TASK_TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({SENT, RETRYING, FAILED}),
    RETRYING: frozenset({SENT, RETRYING, FAILED}),
    # a worker may start the task before the sender has marked it sent: running and the ends come from
    # pending (or retrying) as well, through the table's ``sent`` row
    SENT: frozenset({RUNNING, SUCCEEDED, FAILED}),
    RUNNING: frozenset({RUNNING, SUCCEEDED, FAILED}),
    SUCCEEDED: frozenset(),
    FAILED: frozenset(),
}
TASK_STATUSES = tuple(TASK_TRANSITIONS)
UNSENT = frozenset({PENDING, RETRYING})


def task_may(current: str, target: str) -> bool:
    """May a record in ``current`` move to ``target``? A worker's report may overtake the sender's
    "sent" (the message is on the broker before the sender writes it): an unsent record may take any
    move a sent one may."""
    if current in UNSENT and target in TASK_TRANSITIONS[SENT]:
        return True
    return target in TASK_TRANSITIONS.get(current, frozenset())

