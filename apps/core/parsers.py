"""The one JSON reader of every API (DRF's parser, and the views that read a body themselves): what
Python's json would let through to a service or the database but no OpenStack body can hold is a
400 here, in the API's own format: nesting deeper than MAX_DEPTH, NaN/Infinity (also a number too
large for a float), NUL characters and lone surrogates (PostgreSQL stores neither), bytes that are
not UTF-8."""
from __future__ import annotations

import json
import math
import re
from typing import IO, Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

MAX_DEPTH = 64  # OpenStack bodies nest a few levels; Heat templates a few more
_FORBIDDEN = re.compile("[\x00\ud800-\udfff]")


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {text[:40]} is too large")
    return value


# in JSON text, an escape that may stand for a NUL or a surrogate (a conservative test: ``\\u0000`` or a
# paired surrogate matches too, and only sends the body through the per-string check)
_ESCAPED_FORBIDDEN = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


def _check(value: Any, text: str | None = None) -> None:
    """Depth, NUL and surrogates, walked without recursion. ``text``: the JSON text ``value`` was parsed
    from; when it holds neither character, raw or as an escape, no string can, and only the depth of the
    maps and lists is walked."""
    if text is not None and not _FORBIDDEN.search(text) and not _ESCAPED_FORBIDDEN.search(text):
        _check_depth(value)
        return
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if _FORBIDDEN.search(item):
                raise ValueError("strings may not hold NUL characters or lone surrogates")
        elif isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise ValueError(f"the body nests deeper than {MAX_DEPTH} levels")
            if isinstance(item, dict):
                stack.extend((key, depth) for key in item)
                stack.extend((child, depth + 1) for child in item.values())
            else:
                stack.extend((child, depth + 1) for child in item)


def _check_depth(value: Any) -> None:
    """No map or list deeper than MAX_DEPTH (only they are walked)."""
    if type(value) is not dict and type(value) is not list:
        return
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ValueError(f"the body nests deeper than {MAX_DEPTH} levels")
        below = depth + 1
        for child in item.values() if type(item) is dict else item:
            if type(child) is dict or type(child) is list:
                stack.append((child, below))


def loads(raw: bytes | str) -> Any:
    """The JSON value of ``raw``; ValueError (its message safe to show) when it is not one an API takes."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        value = json.loads(text, parse_constant=_constant, parse_float=_float)
    except RecursionError:
        raise ValueError(f"the body nests deeper than {MAX_DEPTH} levels") from None
    except UnicodeDecodeError:
        raise ValueError("the body is not UTF-8") from None
    _check(value, text)
    return value


class JSONParser(BaseParser):
    """DRF's parser for application/json, through ``loads``."""

    media_type = "application/json"

    def parse(self, stream: IO[bytes], media_type: str | None = None,  # noqa: ARG002
              parser_context: dict[str, Any] | None = None) -> Any:
        encoding = (parser_context or {}).get("encoding") or "utf-8"
        try:
            raw = stream.read() if stream is not None else b""
            if encoding.lower().replace("_", "-") not in ("utf-8", "utf8"):
                raw = raw.decode(encoding).encode("utf-8")
            return loads(raw)
        except (ValueError, LookupError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
