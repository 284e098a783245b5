"""Swift container ACLs (``X-Container-Read`` / ``X-Container-Write``), as Keystone-backed Swift reads
them: ``<project>:<user>`` (ids or names, ``*`` for any), ``.r:<referrer>`` (``.r:*`` any, ``.r:.example.com``
a domain, ``.r:-host`` a denial) and ``.rlistings`` (referrers may list too). Plain functions of strings."""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

from apps.core.errors import BadRequest


@dataclass(frozen=True)
class Who:
    """The caller as an ACL sees it (all empty: anonymous)."""

    project_id: str = ""
    project_name: str = ""
    user_id: str = ""
    user_name: str = ""


def parse(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def clean(value: str, *, write: bool) -> str:
    """The ACL as stored, or BadRequest (referrer rules only make sense for reading)."""
    items = parse(value)
    for item in items:
        if item.startswith(".r:"):
            if write:
                raise BadRequest("Referrers not allowed in write ACL: " + repr(item))
            if len(item) == 3 or item in (".r:-", ".r:-*"):
                raise BadRequest("No host/domain value after referrer designation in ACL: " + repr(item))
        elif item.startswith("."):
            if item != ".rlistings" or write:
                raise BadRequest("Unknown designator " + repr(item) + " in ACL")
        elif ":" not in item:
            raise BadRequest(f"Invalid ACL element {item!r}: expected <project>:<user>")
    return ",".join(items)


def _host_matches(rule: str, host: str) -> bool:
    if rule.startswith("."):
        return host.endswith(rule) or host == rule[1:]
    return host == rule


def referrer_allowed(items: list[str], referrer: str) -> bool:
    host = (urlparse(referrer).hostname or "") if referrer else ""
    allowed = False
    for item in items:
        if not item.startswith(".r:"):
            continue
        rule = item[3:]
        if rule.startswith("-"):
            if rule[1:] == "*" or (host and _host_matches(rule[1:], host)):
                allowed = False
        elif rule == "*" or (host and _host_matches(rule, host)):
            allowed = True
    return allowed


def user_allowed(items: list[str], who: Who) -> bool:
    if not who.user_id:
        return False
    for item in items:
        if item.startswith(".") or ":" not in item:
            continue
        project, user = item.split(":", 1)
        if project in ("*", who.project_id, who.project_name) and project and \
                user in ("*", who.user_id, who.user_name) and user:
            if project != "*" and not who.project_id:
                continue
            return True
    return False


def allows(value: str, who: Who, *, referrer: str = "", listing: bool = False, write: bool = False) -> bool:
    """May ``who`` (coming from ``referrer``) read (list) or write through this ACL?"""
    items = parse(value)
    if user_allowed(items, who):
        return True
    if write:
        return False
    if listing and ".rlistings" not in items:
        return False
    return referrer_allowed(items, referrer)
