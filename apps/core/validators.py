"""The one set of input checkers of the API parsers (``apps/<app>/api/``) and dashboard forms: each
takes a value from a decoded JSON body (or a query string) and returns it typed, or raises the
API's 400 (``error``: ``BadRequest`` unless the API has its own, such as Neutron's ``InvalidInput``)
with one wording: ``Invalid input for field/attribute <field>. Value: <value>. <why>``.

Services never call these: they take typed arguments. ``UNSET`` marks an argument an update was not
given (``None`` may be a value: "clear the description").
"""
from __future__ import annotations

import base64
import binascii
import enum
import ipaddress
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from apps.core.errors import BadRequest, StratusError

# oslo.utils' strutils.bool_from_string, as the OpenStack services read a boolean given as a string
TRUE_STRINGS = frozenset({"1", "t", "true", "on", "y", "yes"})
FALSE_STRINGS = frozenset({"0", "f", "false", "off", "n", "no"})
MAX_METADATA_ITEMS = 128


class Unset(enum.Enum):
    """The type of ``UNSET``: ``name: str | None | Unset = UNSET``."""

    UNSET = "unset"


UNSET = Unset.UNSET


def assign(obj: Any, **values: Any) -> None:
    """An update service's changes: set each attribute given, leave an UNSET one as it is."""
    for field, value in values.items():
        if value is not UNSET:
            setattr(obj, field, value)


def _invalid(field: str, value: Any, why: str, error: type[StratusError]) -> StratusError:
    shown = repr(value)[:80] if isinstance(value, str) else str(value)[:80]
    return error(f"Invalid input for field/attribute {field}. Value: {shown}. {why}")


def text(value: Any, *, field: str, max_length: int | None = 255, required: bool = False,
         error: type[StratusError] = BadRequest) -> str | None:
    """A string of at most ``max_length`` characters (None: any length); None stays None unless
    ``required``."""
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise _invalid(field, value, "It must be a string.", error)
    if max_length is not None and len(value) > max_length:
        raise _invalid(field, value, f"It must be at most {max_length} characters long.", error)
    if required and not value.strip():
        raise _invalid(field, value, "It must not be empty.", error)
    return value


def boolean(value: Any, *, field: str, strict: bool = False, error: type[StratusError] = BadRequest) -> bool:
    """A JSON boolean, or (unless ``strict``, as Keystone's schemas are) one of oslo's true/false
    strings (``"true"``, ``"no"``, ``"1"``, ...)."""
    if isinstance(value, bool):
        return value
    if strict:
        raise _invalid(field, value, "It must be a boolean.", error)
    if isinstance(value, str) and value.strip().lower() in TRUE_STRINGS:
        return True
    if isinstance(value, str) and value.strip().lower() in FALSE_STRINGS:
        return False
    raise _invalid(field, value, "It must be a boolean.", error)


def flag(value: str | None, *, bare: bool = False) -> bool:
    """A query-string switch (``?cascade=true``) or form checkbox: one of oslo's true strings; with
    ``bare``, also the switch given without a value (Keystone's ``?effective``); anything else
    (and None, absent) is off."""
    if value is None:
        return False
    word = value.strip().lower()
    return word in TRUE_STRINGS or (bare and word == "")


def integer(value: Any, *, field: str, minimum: int | None = None, maximum: int | None = None,
            error: type[StratusError] = BadRequest) -> int:
    """A JSON integer or a string of one (not a boolean, not a float), within the bounds given."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _invalid(field, value, "It must be an integer.", error)
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise _invalid(field, value, "It must be an integer.", error) from None
    if minimum is not None and value < minimum:
        raise _invalid(field, value, f"It must be greater than or equal to {minimum}.", error)
    if maximum is not None and value > maximum:
        raise _invalid(field, value, f"It must be less than or equal to {maximum}.", error)
    return value


def choice(value: Any, *, field: str, choices: Collection[str], error: type[StratusError] = BadRequest) -> str:
    if not isinstance(value, str) or value not in choices:
        raise _invalid(field, value, f"It must be one of {', '.join(sorted(choices))}.", error)
    return value


def obj(value: Any, *, field: str, error: type[StratusError] = BadRequest) -> dict[str, Any]:
    """A JSON object."""
    if not isinstance(value, dict):
        raise _invalid(field, value, "It must be an object.", error)
    return value


def string_map(value: Any, *, field: str = "metadata", max_items: int | None = MAX_METADATA_ITEMS,
               max_length: int = 255, error: type[StratusError] = BadRequest) -> dict[str, str]:
    """Metadata, extra specs, properties: an object of at most ``max_items`` string keys (1 to
    ``max_length`` characters) to string values (at most ``max_length``); None is empty. ``max_items``
    None: the count is a quota the service checks (Nova's metadata_items)."""
    if value is None:
        return {}
    items = obj(value, field=field, error=error)
    if max_items is not None and len(items) > max_items:
        raise error(f"Invalid input for field/attribute {field}: too many items, at most {max_items}.")
    for key, item in items.items():
        if not key or len(key) > max_length:
            raise error(f"Invalid input for field/attribute {field}: keys are strings of 1 to {max_length} "
                        f"characters.")
        if not isinstance(item, str) or len(item) > max_length:
            raise error(f"Invalid input for field/attribute {field}: the value of {key} must be a string of at "
                        f"most {max_length} characters.")
    return dict(items)


def member(body: Any, key: str, *, error: type[StratusError] = BadRequest) -> dict[str, Any]:
    """The object a body wraps under ``key`` (``{"user": {...}}``)."""
    if not isinstance(body, dict) or not isinstance(body.get(key), dict):
        raise error(f"Invalid input for field/attribute {key}: the request body needs a '{key}' object.")
    return body[key]


def tag(value: Any, *, field: str = "tags", max_length: int = 255, forbidden: str = "",
        error: type[StratusError] = BadRequest) -> str:
    """One tag: a non-empty string of at most ``max_length`` characters, none of them in ``forbidden``."""
    if not isinstance(value, str) or not value or len(value) > max_length or any(c in value for c in forbidden):
        without = f", without {' or '.join(repr(c) for c in forbidden)}" if forbidden else ""
        raise _invalid(field, value, f"A tag is a non-empty string of at most {max_length} characters{without}.",
                       error)
    return value


def tags(value: Any, *, field: str = "tags", max_items: int | None = None, max_length: int = 255,
         forbidden: str = "", error: type[StratusError] = BadRequest) -> list[str]:
    """A list of ``tag``s, duplicates dropped (the first kept), at most ``max_items``; None is empty."""
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise _invalid(field, value, "It must be a list of strings.", error)
    clean = list(dict.fromkeys(tag(v, field=field, max_length=max_length, forbidden=forbidden, error=error)
                               for v in value))
    if max_items is not None and len(clean) > max_items:
        raise error(f"Invalid input for field/attribute {field}: at most {max_items} tags.")
    return clean


def ip_address(value: Any, *, field: str, version: int | None = None, error: type[StratusError] = BadRequest) -> str:
    """An IP address (of ``version`` when given), as Python writes it."""
    try:
        address = ipaddress.ip_address(value) if isinstance(value, str) else None
    except ValueError:
        address = None
    if address is None or (version is not None and address.version != version):
        raise _invalid(field, value, f"It is not an IPv{version or ''} address.".replace("IPv ", "IP "), error)
    return str(address)


def base64_text(value: Any, *, field: str, max_length: int, error: type[StratusError] = BadRequest) -> str:
    """Base64 text of at most ``max_length`` characters (``user_data``), kept encoded."""
    if not isinstance(value, str) or len(value) > max_length:
        raise _invalid(field, value, f"It must be base64 text of at most {max_length} characters.", error)
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid(field, value, "It is not valid base64.", error) from None
    return value


def only_keys(body: Mapping[str, Any], *, field: str, allowed: Collection[str],
              error: type[StratusError] = BadRequest) -> None:
    """No key but the ``allowed`` ones (a JSON schema's ``additionalProperties: false``)."""
    unknown = set(body) - set(allowed)
    if unknown:
        raise error(f"Invalid input for field/attribute {field}. Additional properties are not allowed "
                    f"({', '.join(sorted(unknown))} were unexpected)")


def required(body: Mapping[str, Any], *, field: str, keys: Iterable[str],
             error: type[StratusError] = BadRequest) -> None:
    for key in keys:
        if key not in body:
            raise error(f"Invalid input for field/attribute {field}: '{key}' is a required property")
