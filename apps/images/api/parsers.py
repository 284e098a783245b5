"""Glance v2 request bodies and headers → the typed arguments of the image services, one parser per
operation (a 400/403/415 in Glance's format). Here are the attributes a body may give, their types and
the keys no request sets (read-only, reserved); the services check the rules (who may publicize or give
an image away, how many tags and properties, what may change in which status). The API views, the
ASGI upload path and the dashboard's upload read a data upload's headers with the same ``upload_size``."""
from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from apps.core import parsers, validators
from apps.core.errors import BadRequest, Forbidden, StratusError
from apps.images.services import (
    CONTAINER_FORMATS,
    DISK_FORMATS,
    VISIBILITIES,
    PatchOperation,
    PatchValue,
    refuse_unwritable,
)

PATCH_V21 = "application/openstack-images-v2.1-json-patch"
PATCH_V20 = "application/openstack-images-v2.0-json-patch"
OCTET_STREAM = "application/octet-stream"


class UnsupportedMediaType(StratusError):
    status = 415


def media_type(content_type: str | None) -> str:
    """A Content-Type header's media type, without parameters, lower case."""
    return (content_type or "").split(";")[0].strip().lower()


def json_body(raw: bytes) -> Any:
    """A request's JSON body (None when empty), through the one JSON reader."""
    if not raw:
        return None
    try:
        return parsers.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"Malformed JSON in request body: {exc}") from None


def json_object(raw: bytes, what: str) -> dict[str, Any]:
    body = json_body(raw)
    if not isinstance(body, dict):
        raise BadRequest(f"The request body must be {what}.")
    return body


def upload_size(content_type: str | None, content_length: str | None) -> int | None:
    """The declared size of an image data upload (None: not declared), which must be sent as
    application/octet-stream (415 otherwise)."""
    media = media_type(content_type)
    if media != OCTET_STREAM:
        raise UnsupportedMediaType(f"Unsupported Content-Type {media or '(none)'}: send {OCTET_STREAM}.")
    if not content_length:
        return None
    try:
        return int(content_length)
    except ValueError:
        raise BadRequest(f"Invalid Content-Length {content_length!r}.") from None


def node_signed(query: dict[str, str], signature: str | None) -> dict[str, str]:
    """The signed grant of a node's image data request (``selectors.image_node_url``): node and expiry
    from the query, the signature from the ``X-Stratus-Image-Signature`` header (``signature``) only.
    A signature in the query string is refused (403): it would sit in every access log as a usable
    credential, so an old-style URL is never accepted."""
    if "signature" in query:
        raise Forbidden("A signature in the URL is not accepted: send it in the X-Stratus-Image-Signature header.")
    return {"node": query.get("node", ""), "expires": query.get("expires", ""), "signature": signature or ""}


# ---- image attributes ------------------------------------------------------------------------

def _name(value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or len(value) > 255):
        raise BadRequest("Invalid value for 'name': a string of at most 255 characters or null.")
    return value


def _visibility(value: Any) -> str:
    if value not in VISIBILITIES:
        raise BadRequest(f"Invalid visibility value: {value}")
    return value


def _boolean(key: str) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        if not isinstance(value, bool):
            raise BadRequest(f"Invalid value for '{key}': {value!r} is not a boolean.")
        return value
    return check


def _owner(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise BadRequest("Invalid value for 'owner'.")
    return value


def _disk_format(value: Any) -> str | None:
    if value is not None and value not in DISK_FORMATS:
        raise BadRequest(f"Invalid disk format '{value}': one of {', '.join(DISK_FORMATS)}.")
    return value


def _container_format(value: Any) -> str | None:
    if value is not None and value not in CONTAINER_FORMATS:
        raise BadRequest(f"Invalid container format '{value}': one of {', '.join(CONTAINER_FORMATS)}.")
    return value


def _size(key: str) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value > 2**31 - 1:
            raise BadRequest(f"Invalid value for '{key}': a non-negative integer.")
        return value
    return check


def tag(value: Any) -> str:
    """One image tag (in a body's ``tags`` or PUT /images/{id}/tags/{tag})."""
    if not isinstance(value, str) or not value or len(value) > 255:
        raise BadRequest(f"Invalid tag {value!r}: a non-empty string of at most 255 characters.")
    return value


def _tags(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise BadRequest("Invalid value for 'tags': a list of strings.")
    return list(dict.fromkeys(tag(t) for t in value))


# Glance's core attributes a request may set, each with its check
CORE: dict[str, Callable[[Any], Any]] = {
    "name": _name, "visibility": _visibility, "protected": _boolean("protected"),
    "os_hidden": _boolean("os_hidden"), "owner": _owner, "disk_format": _disk_format,
    "container_format": _container_format, "min_disk": _size("min_disk"), "min_ram": _size("min_ram"),
    "tags": _tags,
}


def _property(key: str, value: Any) -> str:
    """A free-form property: a name of 1 to 255 characters, a string value of at most 65535."""
    if not key or len(key) > 255:
        raise BadRequest(f"Invalid property name {key!r}.")
    if not isinstance(value, str):
        raise BadRequest(f"Invalid value for property '{key}': {value!r} is not a string.")
    if len(value) > 65535:
        raise BadRequest(f"Property '{key}' is too long.")
    return value


def image_create(raw: bytes) -> dict[str, Any]:
    """POST /images: Glance's create body (core attributes, ``id``, and free-form string properties
    at the top level) → ``services.image_create``'s keyword arguments, only those the body gives."""
    body = json_object(raw, "a JSON object of image attributes")
    fields: dict[str, Any] = {}
    properties: dict[str, str] = {}
    for key, value in body.items():
        if key == "id":
            try:
                fields["image_id"] = str(uuid.UUID(str(value)))
            except ValueError:
                raise BadRequest(f"Invalid image id {value!r}: a UUID.") from None
            continue
        refuse_unwritable(key)
        if key in CORE:
            fields[key] = CORE[key](value)
        else:
            properties[key] = _property(key, value)
    if properties:
        fields["properties"] = properties
    return fields


def _path_key(path: Any) -> str:
    if not isinstance(path, str) or not path.startswith("/") or len(path) < 2:
        raise BadRequest(f"Json path should start with a '/' and name an attribute: {path!r}")
    parts = path[1:].split("/")
    if len(parts) != 1:
        raise BadRequest(f"Nested paths are not allowed: {path}")
    return parts[0].replace("~1", "/").replace("~0", "~")


def patch_operations(content_type: str | None, raw: bytes) -> list[PatchOperation]:
    """Both Glance patch dialects: v2.1 ``{"op", "path", "value"}`` and v2.0 ``{"replace": "/name",
    "value": ...}``."""
    media = media_type(content_type)
    if media not in (PATCH_V21, PATCH_V20):
        raise UnsupportedMediaType(f"Unsupported Content-Type {media or '(none)'}: send {PATCH_V21} or {PATCH_V20}.")
    body = json_body(raw)
    if not isinstance(body, list):
        raise BadRequest("The request body must be a JSON array of patch operations.")
    operations = []
    for item in body:
        if not isinstance(item, dict):
            raise BadRequest("Each patch operation must be a JSON object.")
        if media == PATCH_V21:
            op, path = item.get("op"), item.get("path")
        else:
            ops = [k for k in PatchOperation.OPS if k in item]
            if len(ops) != 1:
                raise BadRequest("Each v2.0 patch operation needs exactly one of add, replace or remove.")
            op, path = ops[0], item[ops[0]]
        key = _path_key(path)
        if op not in PatchOperation.OPS:
            raise BadRequest(f"Operation {op!r} is not supported: add, replace or remove.")
        if op != "remove" and "value" not in item:
            raise BadRequest(f"Operation {op} on /{key} needs a value.")
        operations.append(PatchOperation(op=op, key=key, value=None if op == "remove" else
                                         _patch_value(key, item["value"])))
    return operations


def _patch_value(key: str, value: Any) -> PatchValue:
    """The value an add or replace gives ``key``, typed (the service refuses what no one may set)."""
    refuse_unwritable(key)
    return CORE[key](value) if key in CORE else _property(key, value)


@dataclass(frozen=True)
class ImportRequest:
    method: str
    document: dict[str, Any]  # the request as given, which the import's task records


def import_request(raw: bytes) -> ImportRequest:
    """POST /images/{id}/import: the method's name (``{"method": {"name": "glance-direct"}}``);
    several stores are not supported here."""
    body = json_object(raw, "a JSON object with the import method")
    method = body.get("method")
    name = method.get("name") if isinstance(method, dict) else None
    if body.get("stores") or body.get("all_stores_must_succeed"):
        raise BadRequest("Multiple stores are not supported at this site.")
    return ImportRequest(method=name if isinstance(name, str) else "", document=body)


def member_create(raw: bytes) -> str:
    """POST /images/{id}/members: ``{"member": "<project id>"}``."""
    body = json_object(raw, '{"member": "<project id>"}')
    if "member" not in body:
        raise BadRequest('The request body must be {"member": "<project id>"}.')
    return validators.text(body["member"], field="member", max_length=None, required=True)


def member_update(raw: bytes) -> str:
    """PUT /images/{id}/members/{member}: ``{"status": "accepted|rejected|pending"}``."""
    body = json_object(raw, '{"status": "accepted|rejected|pending"}')
    if "status" not in body:
        raise BadRequest('The request body must be {"status": "accepted|rejected|pending"}.')
    return validators.text(body["status"], field="status", required=True)
