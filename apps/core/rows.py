"""Model instances from rows of hand-written SQL, exactly as the ORM would have made them: each value
goes through the backend's converters and the field's own (SQLite's dates, the JSON fields), as the SQL
compiler applies them. For the few hot statements written once as parameterized SQL instead of built
by the ORM on every request (building a statement costs more than running it), and on PostgreSQL
prepared once per database session (planning a statement with a few joins costs more than running it:
0.8 ms planned each time against 0.14 ms prepared, for the server read in apps/compute)."""
from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Model

M = TypeVar("M", bound=Model)


def columns(alias: str, model: type[Model], attnames: Sequence[str] | None = None) -> str:
    """``alias.column, ...`` of ``model``'s concrete fields (or of those in ``attnames``), in the
    model's order: what ``instance`` takes."""
    fields = _fields(model, tuple(attnames) if attnames is not None else None)
    return ", ".join(f'{alias}."{f.column}"' for f in fields)


def _fields(model: type[Model], attnames: tuple[str, ...] | None) -> list[Any]:
    unknown = set(attnames or ()) - {f.attname for f in model._meta.concrete_fields}
    if unknown:
        raise ValueError(f"{model.__name__} has no column {sorted(unknown)}")
    return [f for f in model._meta.concrete_fields if attnames is None or f.attname in attnames]


@cache
def _converters(model: type[Model], attnames: tuple[str, ...] | None, _vendor: str) -> tuple[
        tuple[str, ...], tuple[tuple[Any, tuple[Callable[..., Any], ...]], ...]]:
    # (the vendor is part of the key: the converters are the backend's)
    fields = _fields(model, attnames)
    plan = []
    for field in fields:
        col = field.get_col(model._meta.db_table)
        plan.append((col, tuple(connection.ops.get_db_converters(col) + col.get_db_converters(connection))))
    return tuple(f.attname for f in fields), tuple(plan)


def instance(model: type[M], values: Sequence[Any], attnames: Sequence[str] | None = None) -> M:
    """``model``'s instance from ``values``: the columns ``columns(alias, model, attnames)`` selected,
    in that order (the fields not in ``attnames`` deferred, as ``only()`` leaves them)."""
    names, plan = _converters(model, tuple(attnames) if attnames is not None else None, connection.vendor)
    converted = []
    for (col, convert), value in zip(plan, values, strict=True):
        for converter in convert:
            value = converter(value, col, connection)
        converted.append(value)
    return model.from_db(connection.alias, list(names), converted)


def index(model: type[Model], attname: str, attnames: Sequence[str] | None = None) -> int:
    """Where ``attname``'s value sits among the values ``columns(alias, model, attnames)`` selects."""
    return [f.attname for f in _fields(model, tuple(attnames) if attnames is not None else None)].index(attname)


def width(model: type[Model], attnames: Sequence[str] | None = None) -> int:
    """How many values ``columns(alias, model, attnames)`` selects."""
    return len(_fields(model, tuple(attnames) if attnames is not None else None))


# ---- prepared statements (PostgreSQL) ----------------------------------------------------------
# A prepared statement lives as long as its database session, whatever the transactions do (a PREPARE
# is not rolled back). The process's pool (portal/db) hands the same sessions to request after request,
# so each session prepares each statement once. Which names a session holds is kept per session (the
# psycopg2 connection and the server's backend pid); a session this process does not know of is asked
# once (pg_prepared_statements), so a forgotten entry costs one query, never an error.

_sessions: OrderedDict[tuple[int, int], set[str]] = OrderedDict()
_sessions_lock = threading.Lock()
_SESSIONS_KEPT = 64
_PLACEHOLDER = re.compile(r"%s")


def _prepared_in(cursor: Any, key: tuple[int, int]) -> set[str]:
    with _sessions_lock:
        known = _sessions.get(key)
        if known is not None:
            _sessions.move_to_end(key)
            return known
    cursor.execute("SELECT name FROM pg_prepared_statements")
    known = {row[0] for row in cursor.fetchall()}
    with _sessions_lock:
        _sessions[key] = known
        while len(_sessions) > _SESSIONS_KEPT:
            _sessions.popitem(last=False)
    return known


def execute(cursor: Any, sql: str, params: Sequence[Any]) -> None:
    """``cursor.execute(sql, params)``; on PostgreSQL as a statement prepared once per session
    (``sql`` takes its parameters as ``%s`` and holds no literal ``%``)."""
    if connection.vendor != "postgresql":
        cursor.execute(sql, params)
        return
    raw = connection.connection
    name = "stratus_" + hashlib.sha1(sql.encode()).hexdigest()[:16]
    known = _prepared_in(cursor, (id(raw), raw.get_backend_pid()))
    if name not in known:
        numbered = iter(range(1, sql.count("%s") + 1))
        cursor.execute(f"PREPARE {name} AS " + _PLACEHOLDER.sub(lambda _m: f"${next(numbered)}", sql))
        known.add(name)
    cursor.execute(f"EXECUTE {name} ({', '.join(['%s'] * len(params))})" if params else f"EXECUTE {name}", params)
