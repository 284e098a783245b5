"""Glance's image status machine, written once as a table of allowed transitions, and the
vocabularies of image members and image tasks. Services move an image only through the table;
anything else is refused.

    queued --upload starts--> saving --data stored--> active <--deactivate/reactivate--> deactivated
               saving --upload broken (disconnect, store error, size mismatch, over quota)--> queued
    queued --stage--> uploading --import--> importing --done--> active (or back to queued)
    queued --import (web-download)--> importing --fetched--> active (or back to queued)
"""
from __future__ import annotations

# ---- image status -------------------------------------------------------------------------------
QUEUED = "queued"
SAVING = "saving"
ACTIVE = "active"
KILLED = "killed"
DEACTIVATED = "deactivated"
UPLOADING = "uploading"
IMPORTING = "importing"

IMAGE_TRANSITIONS: dict[str, frozenset[str]] = {
    QUEUED: frozenset({SAVING, UPLOADING, IMPORTING}),
    SAVING: frozenset({ACTIVE, QUEUED, KILLED}),
    ACTIVE: frozenset({DEACTIVATED}),
    KILLED: frozenset(),
    DEACTIVATED: frozenset({ACTIVE}),
    UPLOADING: frozenset({QUEUED, IMPORTING}),
    IMPORTING: frozenset({ACTIVE, QUEUED}),
}
IMAGE_STATUSES = tuple(IMAGE_TRANSITIONS)

# ---- image member status (set by the member project, any to any) --------------------------------
PENDING = "pending"
ACCEPTED = "accepted"
REJECTED = "rejected"
MEMBER_STATUSES = (PENDING, ACCEPTED, REJECTED)

# ---- image task status (an import: pending → processing → success | failure) ---------------------
PROCESSING = "processing"
SUCCESS = "success"
FAILURE = "failure"
TASK_STATUSES = (PENDING, PROCESSING, SUCCESS, FAILURE)


def image_may(current: str, target: str) -> bool:
    return target in IMAGE_TRANSITIONS.get(current, frozenset())
