"""One microversion negotiation for the APIs that have them (Nova, Cinder; issue 10, item 4)."""
from __future__ import annotations

import re

from rest_framework.request import Request

from apps.core.errors import BadRequest, StratusError

Version = tuple[int, int]

HEADER = "OpenStack-API-Version"


class NotAcceptable(StratusError):
    status = 406


def version_str(version: Version) -> str:
    return f"{version[0]}.{version[1]}"


def negotiate(request: Request, *, service: str, minimum: Version, maximum: Version, invalid: str,
              legacy_header: str | None = None) -> Version:
    """The version ``OpenStack-API-Version: <service> X.Y`` asks for (then ``legacy_header``, a META
    key, if given); ``latest`` is ``maximum``, nothing is ``minimum``. A malformed one is a 400 with
    ``invalid`` (formatted with ``wanted``), one out of range a 406."""
    wanted: str | None = None
    for part in request.META.get("HTTP_OPENSTACK_API_VERSION", "").split(","):
        name, _, value = part.strip().partition(" ")
        if name.lower() == service:
            wanted = value.strip()
    if wanted is None and legacy_header is not None:
        wanted = request.META.get(legacy_header, "").strip() or None
    if wanted is None:
        return minimum
    if wanted.lower() == "latest":
        return maximum
    match = re.fullmatch(r"(\d+)\.(\d+)", wanted)
    if match is None:
        raise BadRequest(invalid.format(wanted=wanted))
    version = (int(match.group(1)), int(match.group(2)))
    if not minimum <= version <= maximum:
        raise NotAcceptable(f"Version {wanted} is not supported by the API. Minimum is {version_str(minimum)} and "
                            f"maximum is {version_str(maximum)}.")
    return version
