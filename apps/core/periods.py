"""Time inside a period, one computation for every usage figure: os-simple-tenant-usage (compute)
and the usage summaries from telemetry's lifecycle records count the same hours."""
from __future__ import annotations

from datetime import datetime


def overlap_hours(begin: datetime | None, end: datetime | None, start: datetime, stop: datetime,
                  now: datetime) -> float:
    """Hours of [begin, end) inside [start, stop], never past ``now`` (``end`` None: still going;
    ``begin`` None: never began). Nova's _hours_for, without charging the future."""
    if begin is None or begin > stop or (end is not None and end < start):
        return 0.0
    first = max(begin, start)
    last = min(end if end is not None else now, stop, now)
    return max((last - first).total_seconds(), 0.0) / 3600.0
