"""Gnocchi's ways of writing a time and a duration (no Django): timestamps as ISO 8601, seconds since
the epoch, ``now`` or ``-5 minutes``; durations as seconds, ``0:05:00``, ``7 days, 0:00:00``, ``1 hour``."""
from __future__ import annotations

import datetime as dt
import math
import re

UTC = dt.UTC
MAX_DURATION = 100 * 366 * 86400  # a granularity, timespan or resampling period: at most a century
UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hr": 3600,
         "hour": 3600, "d": 86400, "day": 86400, "w": 604800, "wk": 604800, "week": 604800}
_SPAN = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)\s*([a-z]+?)s?\s*$")
_CLOCK = re.compile(r"^\s*(?:(\d+)\s+days?,\s*)?(\d+):(\d\d):(\d\d(?:\.\d+)?)\s*$")
_ISO = re.compile(r"^\d{4}-\d\d-\d\d([T ]\d\d:\d\d(:\d\d(\.\d+)?)?)?(Z|[+-]\d\d:?\d\d)?$")


def parse_duration(value: object) -> float:
    """Seconds in ``value``; ValueError when it is no duration."""
    if isinstance(value, bool):
        raise ValueError(f"Invalid duration {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        clock = _CLOCK.match(text)
        span = _SPAN.match(text)
        if clock:
            days, hours, minutes, secs = clock.groups()
            seconds = int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(secs)
        elif span and span.group(2) in UNITS:
            seconds = float(span.group(1)) * UNITS[span.group(2)]
        else:
            try:
                seconds = float(text)
            except ValueError:
                raise ValueError(f"Invalid duration {value!r}") from None
    else:
        raise ValueError(f"Invalid duration {value!r}")
    if not math.isfinite(seconds):
        raise ValueError(f"Invalid duration {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    return str(dt.timedelta(seconds=seconds))


def parse_timestamp(value: object, *, now: dt.datetime | None = None) -> dt.datetime:
    """An aware UTC datetime for ``value``; ValueError when it is no time."""
    now = now or dt.datetime.now(UTC)
    if isinstance(value, bool):
        raise ValueError(f"Invalid timestamp {value!r}")
    if isinstance(value, int | float):
        return _epoch(float(value), value)
    if not isinstance(value, str):
        raise ValueError(f"Invalid timestamp {value!r}")
    text = value.strip()
    if text.lower() == "now":
        return now
    if text[:1] in "+-":
        try:
            return now + dt.timedelta(seconds=parse_duration(text))
        except OverflowError:
            raise ValueError(f"Invalid timestamp {value!r}") from None
    try:
        return _epoch(float(text), value)
    except ValueError:
        pass
    if not _ISO.match(text):
        raise ValueError(f"Invalid timestamp {value!r}")
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(f"Invalid timestamp {value!r}") from None


def _epoch(seconds: float, original: object) -> dt.datetime:
    if not math.isfinite(seconds) or not -62135596800 < seconds < 253402300799:
        raise ValueError(f"Invalid timestamp {original!r}")
    return dt.datetime.fromtimestamp(seconds, UTC)


def epoch(moment: dt.datetime) -> float:
    return moment.timestamp()


def from_epoch(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, UTC)


def isoformat(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()
