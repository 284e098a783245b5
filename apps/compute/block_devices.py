"""One block device mapping (Nova's ``block_device_mapping_v2`` item) as a typed value, and how it is
read from Nova's JSON format, with Nova's schema checks and 400s.

Two places hold mappings in that format: a server create's body (``api/inputs.py`` reads it and
``services.servers.server_create`` takes the ``BlockDevice`` values) and the ``block_device_mapping``
property of an image made by ``createImage`` of a volume-backed server (``services.boot_volumes``
merges its mappings in when a server boots from the image). Both are read by ``block_device`` here,
so neither layer imports the other. Plain values only: no database.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from apps.core import validators as check
from apps.core.errors import BadRequest

SOURCES = ("volume", "image", "snapshot", "blank")
DESTINATIONS = ("local", "volume")
ALLOWED_KEYS = frozenset({
    "source_type", "destination_type", "uuid", "boot_index", "volume_size", "delete_on_termination", "device_name",
    "disk_bus", "device_type", "guest_format", "no_device", "tag", "volume_type", "snapshot_id", "volume_id",
    "image_id", "connection_info", "volume_type_id", "encrypted", "encryption_secret_uuid", "encryption_format",
    "encryption_options"})
UUID_PATTERN = re.compile(r"^[a-zA-Z0-9._-]*$")
DEVICE_PATTERN = re.compile(r"^(/dev/)?(x?[a-z]?d)?([a-z]+)[0-9]*$")
MAX_TAG = 60  # Nova's tags (a server's, a mapping's): at most 60 characters, without '/' or ','


def invalid(message: str) -> BadRequest:
    return BadRequest(f"Block Device Mapping is Invalid: {message}")


@dataclass(frozen=True)
class BlockDevice:
    """One mapping, checked. ``boot_index`` None: not bootable (a negative index too);
    ``volume_size`` None: not given (or 0); ``device_name`` under /dev/. A ``local`` mapping (the
    flavor's ephemeral/swap, or the image's local root) keeps only what the boot checks read."""

    source_type: str
    destination_type: str
    uuid: str | None = None
    boot_index: int | None = None
    volume_size: int | None = None
    device_name: str | None = None
    delete_on_termination: bool = False
    disk_bus: str | None = None
    device_type: str | None = None
    tag: str | None = None
    volume_type: str | None = None


def _int(value: Any, *, name: str, minimum: int | None = None) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise BadRequest(f"Invalid input for field/attribute {name}. Value: {value}. It must be an integer.")
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        value = int(value)
    if not isinstance(value, int):
        raise BadRequest(f"Invalid input for field/attribute {name}. Value: {value}. It must be an integer.")
    if minimum is not None and value < minimum:
        raise BadRequest(f"Invalid input for field/attribute {name}. Value: {value}. "
                         f"{value} is less than the minimum of {minimum}")
    return value


def _flag(value: Any, *, name: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false", "1", "0", "yes", "no", "on", "off"}:
        return value.lower() in {"true", "1", "yes", "on"}
    raise BadRequest(f"Invalid input for field/attribute {name}. Value: {value}. It must be a boolean.")


def device_name(value: Any) -> str | None:
    """A device name as ``/dev/<name>`` (None: not given)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 255 or not DEVICE_PATTERN.match(value):
        raise BadRequest(f"Invalid input for field/attribute device_name. Value: {value}. "
                         f"Does not match the device name pattern.")
    return value if value.startswith("/dev/") else f"/dev/{value}"


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _tag(value: Any) -> str | None:
    """Nova's BDM tag: at most 60 characters without '/' or ','; empty is allowed."""
    if value is None or value == "":
        return value
    return check.tag(value, field="tag", max_length=MAX_TAG, forbidden="/,")


def block_device(item: Any) -> BlockDevice:
    """One mapping in Nova's format: the source (``source_type``, or implied by ``volume_id`` /
    ``snapshot_id``), the destination (``volume`` for a volume or snapshot by default), the source's
    id (``uuid`` or the older ``volume_id``/``snapshot_id``/``image_id``), and the rest typed."""
    if not isinstance(item, Mapping):
        raise BadRequest("Invalid input for field/attribute block_device_mapping_v2. Value: "
                         f"{item!r}. It must be an object.")
    unknown = set(item) - ALLOWED_KEYS
    if unknown:
        raise BadRequest(f"Invalid input for field/attribute block_device_mapping_v2. Additional properties are not "
                         f"allowed ({', '.join(sorted(unknown))} were unexpected)")
    source = item.get("source_type")
    if source is None:
        source = "volume" if item.get("volume_id") else "snapshot" if item.get("snapshot_id") else None
    if source not in SOURCES:
        raise BadRequest(f"Invalid input for field/attribute source_type. Value: {source}. "
                         f"'{source}' is not one of {list(SOURCES)}")
    destination = item.get("destination_type")
    if destination is None:
        destination = "volume" if source in ("volume", "snapshot") else "local"
    if destination not in DESTINATIONS:
        raise BadRequest(f"Invalid input for field/attribute destination_type. Value: {destination}. "
                         f"'{destination}' is not one of {list(DESTINATIONS)}")
    uuid = item.get("uuid") or item.get("volume_id") or item.get("snapshot_id") or item.get("image_id")
    if uuid is not None and (not isinstance(uuid, str) or len(uuid) > 255 or not UUID_PATTERN.match(uuid)):
        raise BadRequest(f"Invalid input for field/attribute uuid. Value: {uuid}. Does not match pattern.")
    name = device_name(item.get("device_name"))
    boot_index = _int(item.get("boot_index"), name="boot_index")
    size = _int(item.get("volume_size"), name="volume_size", minimum=0) or None
    common = {"source_type": source, "destination_type": destination, "uuid": uuid, "device_name": name,
              "boot_index": boot_index if boot_index is not None and boot_index >= 0 else None, "volume_size": size}
    if destination == "local":
        return BlockDevice(**common)
    if source != "blank" and not uuid:
        raise invalid("Missing device UUID.")
    return BlockDevice(**common, tag=_tag(item.get("tag")),
                       delete_on_termination=_flag(item.get("delete_on_termination"), name="delete_on_termination"),
                       disk_bus=_text(item.get("disk_bus")), device_type=_text(item.get("device_type")),
                       volume_type=_text(item.get("volume_type")))
