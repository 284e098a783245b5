"""Swift requests into typed arguments: metadata headers, ACL headers, X-Delete-At/After, listing
parameters, Range and the conditional headers. Plain functions of a Django request's headers and query."""
from __future__ import annotations

import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from urllib.parse import unquote

from apps.core.errors import BadRequest
from apps.objects.selectors import Listing, PreconditionFailed

FORMATS = {"json": "json", "xml": "xml", "plain": "plain", "text": "plain"}


def metadata(headers: Mapping[str, str], kind: str) -> dict[str, str]:
    """``X-<kind>-Meta-Name: value`` as ``{"name": value}``; ``X-Remove-<kind>-Meta-Name`` as ``{"name": ""}``."""
    prefix, remove = f"x-{kind}-meta-", f"x-remove-{kind}-meta-"
    out: dict[str, str] = {}
    removed: set[str] = set()
    for key, value in headers.items():
        low = key.lower()
        if kind == "account" and low in ("x-account-quota-bytes", "x-account-quota-count"):
            out[low[len("x-account-"):]] = value.strip()  # Swift 2.34's quota headers: the same as the meta ones
            continue
        if low.startswith(prefix):
            out[low[len(prefix):]] = value.strip()
        elif low.startswith(remove):
            removed.add(low[len(remove):])
    for key in removed:
        if kind == "object":  # an object's metadata is replaced whole: a removed name is simply not sent
            out.pop(key, None)
        else:  # an account's or container's: an empty value removes the name
            out.setdefault(key, "")
    return out


def acls(headers: Mapping[str, str]) -> tuple[str | None, str | None]:
    read = headers.get("X-Container-Read")
    write = headers.get("X-Container-Write")
    if headers.get("X-Remove-Container-Read") is not None:
        read = ""
    if headers.get("X-Remove-Container-Write") is not None:
        write = ""
    return read, write


def delete_at(headers: Mapping[str, str]) -> int | None:
    after = headers.get("X-Delete-After")
    at = headers.get("X-Delete-At")
    if after is not None:
        try:
            value = int(after)
        except ValueError:
            raise BadRequest("Non-integer X-Delete-After") from None
        if value < 0:
            raise BadRequest("X-Delete-After in past")
        return int(time.time()) + max(value, 1)
    if at is not None and at != "":
        try:
            return int(float(at))
        except ValueError:
            raise BadRequest("Non-integer X-Delete-At") from None
    return None


def content_length(headers: Mapping[str, str]) -> int | None:
    value = headers.get("Content-Length")
    if value in (None, ""):
        return None
    try:
        length = int(value)
    except ValueError:
        raise BadRequest("Invalid Content-Length") from None
    if length < 0:
        raise BadRequest("Invalid Content-Length")
    return length


def listing(query: Mapping[str, str]) -> Listing:
    limit_s = query.get("limit")
    try:
        limit = int(limit_s) if limit_s not in (None, "") else 10000
    except ValueError:
        raise PreconditionFailed("Value of limit must be a positive integer") from None
    if limit < 0:
        raise PreconditionFailed("Value of limit must be a positive integer")
    reverse = (query.get("reverse") or "").lower() in ("1", "true", "yes", "on", "t", "y")
    for key in ("prefix", "marker", "end_marker", "delimiter"):
        value = query.get(key) or ""
        if "\x00" in value:
            raise BadRequest(f"Invalid {key}")
    return Listing(prefix=query.get("prefix") or "", marker=query.get("marker") or "",
                   end_marker=query.get("end_marker") or "", limit=limit, delimiter=query.get("delimiter") or "",
                   reverse=reverse)


def listing_format(query: Mapping[str, str], accept: str) -> str:
    wanted = (query.get("format") or "").lower()
    if wanted in FORMATS:
        return FORMATS[wanted]
    accept = accept.lower()
    if "application/json" in accept:
        return "json"
    if "application/xml" in accept or "text/xml" in accept:
        return "xml"
    return "plain"


def copy_source(value: str) -> tuple[str, str]:
    """``X-Copy-From`` / the COPY path: ``container/object`` (URL-quoted), leading slash optional."""
    path = unquote(value).lstrip("/")
    container, _, name = path.partition("/")
    if not container or not name:
        raise PreconditionFailed("X-Copy-From header must be of the form <container name>/<object name>")
    return container, name


def destination(value: str) -> tuple[str, str]:
    path = unquote(value).lstrip("/")
    container, _, name = path.partition("/")
    if not container or not name:
        raise PreconditionFailed("Destination header must be of the form <container name>/<object name>")
    return container, name


def ranges(value: str, size: int) -> list[tuple[int, int]] | None:
    """``Range: bytes=a-b,c-,-n`` as [(first, last)] inside ``size``; None when the header is not a
    byte range (ignored, the whole object is sent); [] when no range is satisfiable (416)."""
    value = value.strip()
    if not value.lower().startswith("bytes="):
        return None
    out: list[tuple[int, int]] = []
    for spec in value[6:].split(","):
        spec = spec.strip()
        first_s, dash, last_s = spec.partition("-")
        if not dash:
            return None
        try:
            if first_s == "":
                if last_s == "":
                    return None
                n = int(last_s)
                if n == 0:
                    continue
                out.append((max(size - n, 0), size - 1))
                continue
            first = int(first_s)
            last = int(last_s) if last_s else size - 1
        except ValueError:
            return None
        if last < first:
            return None
        if first >= size:
            continue
        out.append((first, min(last, size - 1)))
    if size == 0:
        return []
    return out


def http_time(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
