"""The checks of a server's inputs (name, counts, booleans, access IPs, disk config, metadata
against its quota, tags), shared by create, update, rebuild, snapshots and metadata."""
from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from apps.compute.services import NovaQuotaExceeded
from apps.core.errors import BadRequest
from apps.identity import selectors as identity_selectors
from apps.identity.models import Project

MAX_USER_DATA = 65535


MAX_TAGS = 50


def check_text(value: Any, *, field: str, max_length: int = 255, blank: bool = True) -> str:
    if not isinstance(value, str) or len(value) > max_length or (not blank and not value.strip()):
        raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value}. "
                         f"It must be a{'' if blank else ' non-blank'} string of at most {max_length} characters.")
    return value


def check_count(value: Any, *, field: str) -> int:
    if isinstance(value, bool):
        raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value}.")
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or value < 1:
        raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value}. It must be an integer >= 1.")
    return value


def check_bool(value: Any, *, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false", "1", "0", "yes", "no", "on", "off", ""}:
        return value.lower() in {"true", "1", "yes", "on"}
    raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value}. It must be a boolean.")


def check_access_ip(value: Any, version: int) -> str:
    if value is None or value == "":
        return ""
    field = f"accessIPv{version}"
    try:
        address = ipaddress.ip_address(value) if isinstance(value, str) else None
    except ValueError:
        address = None
    if address is None or address.version != version:
        raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value}. "
                         f"It is not an IPv{version} address.")
    return str(address)


def check_disk_config(value: Any) -> str:
    if value not in ("AUTO", "MANUAL"):
        raise BadRequest(f"Invalid input for field/attribute OS-DCF:diskConfig. Value: {value}. "
                         "It must be AUTO or MANUAL.")
    return value


def check_metadata(value: Any, *, project_id: str, current: int = 0) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise BadRequest("Invalid input for field/attribute metadata. Value: it must be an object.")
    clean: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not 1 <= len(key) <= 255:
            raise BadRequest(f"Invalid input for field/attribute metadata. Value: {key!r}: keys are 1-255 characters.")
        if not isinstance(item, str) or len(item) > 255:
            raise BadRequest(f"Invalid input for field/attribute metadata. Value: {item!r}: values are strings of at "
                             "most 255 characters.")
        clean[key] = item
    limit = identity_selectors.quota_limits(project=Project(id=project_id)).get("metadata_items", 128)
    if limit >= 0 and len(clean) + current > limit:
        raise NovaQuotaExceeded(f"Quota exceeded for metadata_items: Requested {len(clean) + current}, but the "
                                f"limit is {limit}.", resource="metadata_items", limit=limit, in_use=current,
                                requested=len(clean))
    return clean


def check_tag(value: Any) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 60 or "/" in value or "," in value:
        raise BadRequest(f"Invalid tag {value!r}: 1-60 characters, without '/' or ','.")
    return value
