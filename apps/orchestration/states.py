"""A stack's and a stack resource's state: Heat's (action, status) pair, written once as a table of
allowed transitions of ``ACTION_STATUS`` names. Services move a row only through ``check``; an illegal
request is a 409 (``Conflict``), never a silent no-op.

    INIT_COMPLETE --create--> CREATE_IN_PROGRESS --> CREATE_COMPLETE | CREATE_FAILED
    CREATE_FAILED (a stack, unless disable_rollback) --> ROLLBACK_IN_PROGRESS --> ROLLBACK_COMPLETE | ROLLBACK_FAILED
    at rest --update--> UPDATE_IN_PROGRESS --> UPDATE_COMPLETE | UPDATE_FAILED (--> ROLLBACK_*: the previous template)
    at rest --check/suspend--> CHECK_* | SUSPEND_*; SUSPEND_COMPLETE --resume--> RESUME_*
    adopted: ADOPT_COMPLETE (rows made from abandon data, nothing created)
    any end state --delete--> DELETE_IN_PROGRESS --> DELETE_COMPLETE | DELETE_FAILED
    an IN_PROGRESS past the stack's timeout --> its FAILED
"""
from __future__ import annotations

from apps.core.errors import Conflict

INIT, CREATE, DELETE, ROLLBACK, UPDATE = "INIT", "CREATE", "DELETE", "ROLLBACK", "UPDATE"
SUSPEND, RESUME, CHECK = "SUSPEND", "RESUME", "CHECK"
IN_PROGRESS, COMPLETE, FAILED = "IN_PROGRESS", "COMPLETE", "FAILED"
ACTIONS = (INIT, CREATE, DELETE, ROLLBACK, UPDATE, SUSPEND, RESUME, CHECK, "ADOPT")
STATUSES = (IN_PROGRESS, COMPLETE, FAILED)


def name(action: str, status: str) -> str:
    return f"{action}_{status}"


INIT_COMPLETE = name(INIT, COMPLETE)
CREATE_IN_PROGRESS, CREATE_COMPLETE, CREATE_FAILED = (name(CREATE, s) for s in STATUSES)
DELETE_IN_PROGRESS, DELETE_COMPLETE, DELETE_FAILED = (name(DELETE, s) for s in STATUSES)
ROLLBACK_IN_PROGRESS, ROLLBACK_COMPLETE, ROLLBACK_FAILED = (name(ROLLBACK, s) for s in STATUSES)
UPDATE_IN_PROGRESS, UPDATE_COMPLETE, UPDATE_FAILED = (name(UPDATE, s) for s in STATUSES)
CHECK_IN_PROGRESS, CHECK_COMPLETE, CHECK_FAILED = (name(CHECK, s) for s in STATUSES)
SUSPEND_IN_PROGRESS, SUSPEND_COMPLETE, SUSPEND_FAILED = (name(SUSPEND, s) for s in STATUSES)
RESUME_IN_PROGRESS, RESUME_COMPLETE, RESUME_FAILED = (name(RESUME, s) for s in STATUSES)
ADOPT = "ADOPT"
ADOPT_IN_PROGRESS, ADOPT_COMPLETE, ADOPT_FAILED = (name(ADOPT, s) for s in STATUSES)

# a stack that holds running resources and is at rest: it may be updated, checked, suspended, deleted
_RUNNING = (CREATE_COMPLETE, UPDATE_COMPLETE, UPDATE_FAILED, ROLLBACK_COMPLETE, ROLLBACK_FAILED, CHECK_COMPLETE,
            CHECK_FAILED, RESUME_COMPLETE, ADOPT_COMPLETE)
_FROM_RUNNING = frozenset({DELETE_IN_PROGRESS, UPDATE_IN_PROGRESS, CHECK_IN_PROGRESS, SUSPEND_IN_PROGRESS})

# A stack: what each state may become. An IN_PROGRESS state becomes its COMPLETE or FAILED (a delete
# waits for the end or the timeout); an update that failed (or was cancelled) rolls back to the previous
# template; a suspended stack is resumed, checked or deleted, never updated (Heat refuses that too).
STACK_TRANSITIONS: dict[str, frozenset[str]] = {
    CREATE_IN_PROGRESS: frozenset({CREATE_COMPLETE, CREATE_FAILED}),
    CREATE_COMPLETE: _FROM_RUNNING,
    CREATE_FAILED: frozenset({ROLLBACK_IN_PROGRESS, DELETE_IN_PROGRESS, UPDATE_IN_PROGRESS}),
    ROLLBACK_IN_PROGRESS: frozenset({ROLLBACK_COMPLETE, ROLLBACK_FAILED}),
    ROLLBACK_COMPLETE: _FROM_RUNNING,
    ROLLBACK_FAILED: _FROM_RUNNING,
    UPDATE_IN_PROGRESS: frozenset({UPDATE_COMPLETE, UPDATE_FAILED}),
    UPDATE_COMPLETE: _FROM_RUNNING,
    UPDATE_FAILED: _FROM_RUNNING | {ROLLBACK_IN_PROGRESS},
    CHECK_IN_PROGRESS: frozenset({CHECK_COMPLETE, CHECK_FAILED}),
    CHECK_COMPLETE: _FROM_RUNNING,
    CHECK_FAILED: _FROM_RUNNING,
    SUSPEND_IN_PROGRESS: frozenset({SUSPEND_COMPLETE, SUSPEND_FAILED}),
    SUSPEND_COMPLETE: frozenset({DELETE_IN_PROGRESS, RESUME_IN_PROGRESS, CHECK_IN_PROGRESS}),
    SUSPEND_FAILED: frozenset({DELETE_IN_PROGRESS, RESUME_IN_PROGRESS, SUSPEND_IN_PROGRESS, CHECK_IN_PROGRESS}),
    RESUME_IN_PROGRESS: frozenset({RESUME_COMPLETE, RESUME_FAILED}),
    RESUME_COMPLETE: _FROM_RUNNING,
    RESUME_FAILED: frozenset({DELETE_IN_PROGRESS, RESUME_IN_PROGRESS, SUSPEND_IN_PROGRESS, CHECK_IN_PROGRESS}),
    ADOPT_IN_PROGRESS: frozenset({ADOPT_COMPLETE, ADOPT_FAILED}),
    ADOPT_COMPLETE: _FROM_RUNNING,
    ADOPT_FAILED: frozenset({DELETE_IN_PROGRESS}),
    DELETE_IN_PROGRESS: frozenset({DELETE_COMPLETE, DELETE_FAILED}),
    DELETE_FAILED: frozenset({DELETE_IN_PROGRESS}),
    DELETE_COMPLETE: frozenset(),
}
STACK_STATES = tuple(STACK_TRANSITIONS)
# where an abandon may start from (it removes the rows of a stack at rest, none of its resources)
ABANDONABLE = frozenset(s for s, targets in STACK_TRANSITIONS.items() if DELETE_IN_PROGRESS in targets)

# A stack's resource: created, updated in place, checked, suspended and resumed, deleted (also when its
# stack rolls back or an update replaces or removes it), failed either way.
# (UPDATE_FAILED directly: an update that refuses a resource's new properties before it starts)
_HELD = frozenset({DELETE_IN_PROGRESS, UPDATE_IN_PROGRESS, UPDATE_FAILED, CHECK_IN_PROGRESS, SUSPEND_IN_PROGRESS})
RESOURCE_TRANSITIONS: dict[str, frozenset[str]] = {
    INIT_COMPLETE: frozenset({CREATE_IN_PROGRESS, DELETE_COMPLETE, ADOPT_COMPLETE}),
    CREATE_IN_PROGRESS: frozenset({CREATE_COMPLETE, CREATE_FAILED}),
    CREATE_COMPLETE: _HELD,
    CREATE_FAILED: frozenset({DELETE_IN_PROGRESS}),  # an update replaces a failed resource
    UPDATE_IN_PROGRESS: frozenset({UPDATE_COMPLETE, UPDATE_FAILED}),
    UPDATE_COMPLETE: _HELD,
    UPDATE_FAILED: _HELD,
    CHECK_IN_PROGRESS: frozenset({CHECK_COMPLETE, CHECK_FAILED}),
    CHECK_COMPLETE: _HELD,
    CHECK_FAILED: _HELD,
    SUSPEND_IN_PROGRESS: frozenset({SUSPEND_COMPLETE, SUSPEND_FAILED}),
    SUSPEND_COMPLETE: frozenset({DELETE_IN_PROGRESS, RESUME_IN_PROGRESS, CHECK_IN_PROGRESS}),
    SUSPEND_FAILED: frozenset({DELETE_IN_PROGRESS, RESUME_IN_PROGRESS, SUSPEND_IN_PROGRESS, CHECK_IN_PROGRESS}),
    RESUME_IN_PROGRESS: frozenset({RESUME_COMPLETE, RESUME_FAILED}),
    RESUME_COMPLETE: _HELD,
    RESUME_FAILED: _HELD | {RESUME_IN_PROGRESS},
    ADOPT_COMPLETE: _HELD,
    DELETE_IN_PROGRESS: frozenset({DELETE_COMPLETE, DELETE_FAILED}),
    DELETE_FAILED: frozenset({DELETE_IN_PROGRESS}),
    DELETE_COMPLETE: frozenset(),
}
# Marked unhealthy by a user (``PATCH .../resources/{name}`` with mark_unhealthy: Heat's resource
# mark-unhealthy) from any state at rest, so that the next update replaces it; marked healthy again from
# CHECK_FAILED only
MARKABLE = frozenset(s for s in RESOURCE_TRANSITIONS if not s.endswith("_IN_PROGRESS")) - {INIT_COMPLETE,
                                                                                            DELETE_COMPLETE}
RESOURCE_TRANSITIONS = {**RESOURCE_TRANSITIONS,
                        **{s: RESOURCE_TRANSITIONS[s] | {CHECK_FAILED} for s in MARKABLE},
                        CHECK_FAILED: RESOURCE_TRANSITIONS[CHECK_FAILED] | {CHECK_FAILED, CHECK_COMPLETE}}
RESOURCE_STATES = tuple(RESOURCE_TRANSITIONS)
# what a delete (or a rollback) has to remove: the resource may hold something in its service
HOLDING = frozenset(RESOURCE_STATES) - {INIT_COMPLETE, DELETE_COMPLETE}


def stack_may(current: str, target: str) -> bool:
    return target in STACK_TRANSITIONS.get(current, frozenset())


def resource_may(current: str, target: str) -> bool:
    return target in RESOURCE_TRANSITIONS.get(current, frozenset())


def check_stack(current: str, target: str, *, stack_name: str, action: str) -> None:
    """Heat's 409 when ``action`` would take the stack from ``current`` to ``target`` and the table says no."""
    if not stack_may(current, target):
        raise Conflict(f"Stack {stack_name} is in state {current}: {action} is not allowed now.")


def in_progress(state: str) -> bool:
    return state.endswith("_" + IN_PROGRESS)


def split(state: str) -> tuple[str, str]:
    action, _, status = state.partition("_")
    return action, status

# A software deployment's status, as the server it is deployed to reports it (no transitions: the server
# may report any of them at any time, as in Heat)
DEPLOYMENT_STATUSES = (IN_PROGRESS, COMPLETE, FAILED)
