"""Regular expressions that callers send as list filters (Nova's server ``name``, ``ip``, ``ip6``).

The database matches them: PostgreSQL with its own engine, SQLite with Python's ``re`` (Django's
REGEXP function), a backtracking matcher whose work can grow exponentially with the pattern
(``(a+)+$``, ``(a|a)*b``) or as a high power of the name's length (``.*.*.*.*x``). A filter is
refused (400) unless it is of a shape whose matching work is bounded whatever the engine:

- at most MAX_LENGTH characters;
- no backreference, lookaround, conditional, atomic group or named group (the engines disagree on
  them, and backreferences make matching NP-hard);
- no quantifier on anything that itself has a quantifier or an alternation (``(a+)+``, ``(a|ab)*``);
- at most MAX_QUANTIFIERS variable-length quantifiers (work ~ n^(k+1) for a name of n characters);
- alternations whose choices multiply to at most MAX_CHOICES (``(a|a)(a|a)...``).

Within those bounds, a 255-character name is matched in milliseconds by either engine.
"""
from __future__ import annotations

import re
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

from apps.core.errors import BadRequest

MAX_LENGTH = 255
MAX_QUANTIFIERS = 2
MAX_CHOICES = 16
MAX_BOUND = 255  # {n,m} with m above this is as good as unbounded

REPEATS = {sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT}
REFUSED = {sre.GROUPREF, sre.GROUPREF_EXISTS, sre.GROUPREF_IGNORE, sre.GROUPREF_LOC_IGNORE, sre.GROUPREF_UNI_IGNORE,
           sre.ASSERT, sre.ASSERT_NOT, sre.ATOMIC_GROUP}


class _Unsafe(Exception):
    pass


def _items(av: Any) -> list[Any]:
    return list(av.data) if isinstance(av, sre_parse.SubPattern) else list(av)


def _complex(items: list[Any]) -> bool:
    """Whether a quantified body has a quantifier or an alternation of its own."""
    for op, av in items:
        if op in REPEATS or op is sre.BRANCH or op in REFUSED:
            return True
        if op is sre.SUBPATTERN and _complex(_items(av[3])):
            return True
    return False


def _walk(items: list[Any]) -> tuple[int, int]:
    """(variable quantifiers, product of alternation widths) of a parsed pattern."""
    quantifiers, choices = 0, 1
    for op, av in items:
        if op in REFUSED:
            raise _Unsafe("backreferences, lookarounds, conditionals and atomic groups are not supported")
        if op is sre.SUBPATTERN:
            _group, add_flags, del_flags, body = av
            if add_flags or del_flags:
                raise _Unsafe("inline flags are not supported")
            q, c = _walk(_items(body))
        elif op is sre.BRANCH:
            q, c = 0, 0
            for branch in av[1]:
                bq, bc = _walk(_items(branch))
                q, c = q + bq, c + bc
        elif op in REPEATS:
            low, high, body = av
            if _complex(_items(body)):
                raise _Unsafe("a quantifier may not apply to a group with a quantifier or an alternation")
            q, c = (0 if low == high and high <= MAX_BOUND else 1), 1
        else:
            q, c = 0, 1
        quantifiers += q
        choices *= max(c, 1)
        if quantifiers > MAX_QUANTIFIERS:
            raise _Unsafe(f"at most {MAX_QUANTIFIERS} variable-length quantifiers are supported")
        if choices > MAX_CHOICES:
            raise _Unsafe(f"alternations may offer at most {MAX_CHOICES} combinations")
    return quantifiers, choices


def regex_check(pattern: str, *, field: str) -> str:
    """``pattern`` if it is a regular expression that a list may be filtered by; BadRequest otherwise."""
    if not isinstance(pattern, str) or len(pattern) > MAX_LENGTH:
        raise BadRequest(f"Invalid regular expression for {field}: at most {MAX_LENGTH} characters.")
    try:
        parsed = sre_parse.parse(pattern)
    except (re.error, RecursionError, OverflowError):
        raise BadRequest(f"Invalid regular expression for {field}: {pattern}") from None
    if parsed.state.groupdict:
        raise BadRequest(f"Invalid regular expression for {field}: named groups are not supported.")
    try:
        _walk(_items(parsed))
    except _Unsafe as exc:
        raise BadRequest(f"Unsupported regular expression for {field}: {exc}.") from None
    return pattern
