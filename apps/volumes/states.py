"""The volume and snapshot state machines, each written once as a table of allowed transitions.
Services move a row only through ``volume_transition``/``snapshot_transition``; anything else is
an illegal request."""
from __future__ import annotations

from apps.core.errors import BadRequest

CREATING = "creating"
AVAILABLE = "available"
RESERVED = "reserved"
ATTACHING = "attaching"
IN_USE = "in-use"
DETACHING = "detaching"
EXTENDING = "extending"
UPLOADING = "uploading"  # its data on its way into a Glance image (os-volume_upload_image)
DELETING = "deleting"
ERROR = "error"
ERROR_DELETING = "error_deleting"
ERROR_EXTENDING = "error_extending"

VOLUME_TRANSITIONS: dict[str, frozenset[str]] = {
    CREATING: frozenset({AVAILABLE, ERROR}),
    AVAILABLE: frozenset({RESERVED, ATTACHING, EXTENDING, DELETING, UPLOADING}),
    RESERVED: frozenset({ATTACHING, IN_USE, AVAILABLE}),
    ATTACHING: frozenset({IN_USE, AVAILABLE, ERROR}),
    IN_USE: frozenset({DETACHING, IN_USE, UPLOADING}),  # uploading in-use: only when forced
    DETACHING: frozenset({AVAILABLE, IN_USE}),
    EXTENDING: frozenset({AVAILABLE, ERROR_EXTENDING}),
    UPLOADING: frozenset({AVAILABLE, IN_USE}),  # back to what it was, whatever the upload's outcome
    DELETING: frozenset({ERROR_DELETING}),  # success removes the row
    ERROR: frozenset({DELETING}),
    ERROR_DELETING: frozenset({DELETING}),
    ERROR_EXTENDING: frozenset({DELETING, EXTENDING}),
}
VOLUME_STATUSES = tuple(VOLUME_TRANSITIONS)

SNAPSHOT_TRANSITIONS: dict[str, frozenset[str]] = {
    CREATING: frozenset({AVAILABLE, ERROR}),
    AVAILABLE: frozenset({DELETING}),
    DELETING: frozenset({ERROR_DELETING}),
    ERROR: frozenset({DELETING}),
    ERROR_DELETING: frozenset({DELETING}),
}
SNAPSHOT_STATUSES = tuple(SNAPSHOT_TRANSITIONS)

# a volume attachment (volumes.VolumeAttachment): reserved for a server, attaching on its node,
# attached once the node reports the device; detaching removes the row
ATTACHED = "attached"
ATTACHMENT_STATUSES = (RESERVED, ATTACHING, ATTACHED)


def volume_may(current: str, target: str) -> bool:
    return target in VOLUME_TRANSITIONS.get(current, frozenset())


def check_volume(current: str, target: str, *, volume_id: str, action: str) -> None:
    """Raise Cinder's 400 (InvalidVolume) when ``action`` would take the volume from ``current`` to
    ``target`` and the table does not allow it."""
    if not volume_may(current, target):
        allowed = sorted(s for s, targets in VOLUME_TRANSITIONS.items() if target in targets)
        raise BadRequest(f"Invalid volume: Volume {volume_id} status must be {' or '.join(allowed)} to {action}, "
                         f"but current status is: {current}.")


def check_snapshot(current: str, target: str, *, snapshot_id: str, action: str) -> None:
    if target not in SNAPSHOT_TRANSITIONS.get(current, frozenset()):
        allowed = sorted(s for s, targets in SNAPSHOT_TRANSITIONS.items() if target in targets)
        raise BadRequest(f"Invalid snapshot: Snapshot {snapshot_id} status must be {' or '.join(allowed)} to "
                         f"{action}, but current status is: {current}.")
