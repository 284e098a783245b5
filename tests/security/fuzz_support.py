"""What the fuzz battery (test_fuzz.py) is built from: the write routes of every API, read from the URL
resolver (a route added later joins by itself), a concrete path for each, the malformed bodies
hypothesis draws, the error shape each API must answer in, and a snapshot of the database.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from django.apps import apps as django_apps
from django.db import connection
from django.urls import URLPattern, URLResolver, get_resolver
from hypothesis import strategies as st

# The APIs under apps/*/api/urls.py, by the prefix portal/urls.py mounts them at.
API_PREFIXES = {"identity/v3/": "keystone", "image/": "glance", "network/": "neutron", "compute/": "nova",
                "volume/": "cinder", "metric/": "gnocchi", "alarming/": "aodh", "orchestration/": "heat",
                "v1/nodes/": "keystone"}  # node enrolment answers in Keystone's error format
WRITE_METHODS = ("post", "put", "patch")


@dataclass(frozen=True)
class Route:
    api: str            # keystone, glance, neutron, nova, cinder, gnocchi, heat
    regex: str          # the whole pattern, prefix included (what the resolver matches)
    view: str           # the view class's name
    method: str         # POST, PUT or PATCH
    choice: str = ""    # the alternative picked in a (?P<x>a|b) group

    @property
    def id(self) -> str:
        shown = self.regex.replace("(?:\\.json)?", "").replace("/?$", "").replace("$", "").replace("^", "")
        shown = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", shown).replace("\\", "")
        return f"{self.method} /{shown}" + (f" [{self.choice}]" if self.choice else "")


def _walk(patterns: list[Any], prefix: str = "") -> list[tuple[str, URLPattern]]:
    found = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            found += _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            found.append((prefix + str(pattern.pattern), pattern))
    return found


def write_routes() -> list[Route]:
    """Every POST/PUT/PATCH the five APIs route, as the resolver sees them."""
    routes = []
    for regex, pattern in _walk(get_resolver().url_patterns):
        api = next((name for prefix, name in API_PREFIXES.items() if regex.startswith(prefix)), None)
        view = getattr(pattern.callback, "view_class", None)
        if api is None or view is None:
            continue
        for method in WRITE_METHODS:
            if not hasattr(view, method):
                continue
            alternatives = re.search(r"\(\?P<\w+>([\w|-]+\|[\w|-]+)\)", regex)
            for choice in (alternatives.group(1).split("|") if alternatives else [""]):
                routes.append(Route(api=api, regex=regex, view=view.__name__, method=method.upper(), choice=choice))
    return routes


_GROUP = re.compile(r"\(\?P<(\w+)>([^()]*)\)")


def route_path(route: Route, ids: dict[str, str]) -> str:
    """A concrete path for ``route``: each named group takes the id of the world's resource that the
    path segment before it names (``ids["<segment>.<group>"]``, then ``ids["<group>"]``)."""
    regex = route.regex.replace("(?:\\.json)?", "").replace("/?$", "").replace("$", "").replace("^", "")
    regex = regex.replace(".*", "fuzz-no-such-thing")

    def value(match: re.Match[str]) -> str:
        name, body = match.group(1), match.group(2)
        if route.choice and route.choice in body.split("|"):
            return route.choice
        before = _GROUP.sub(r"\1", regex[:match.start()]).rstrip("/").rsplit("/", 1)[-1].replace("\\", "")
        key = f"{before}.{name}"
        return ids.get(key) or ids.get(name) or "fuzz-unknown-id"

    return "/" + _GROUP.sub(value, regex).replace("\\", "")


# ---- bodies -------------------------------------------------------------------------------------

HUGE_INT = 2 ** 70
WEIRD_STRINGS = [
    "", " ", "x" * 70_000, "\u00e9\u4e2d\U0001f600" * 50, "a\x00b", "\x00", "\ud800", "lone \udfff surrogate",
    "\u202e\u200b\ufeff", "../../../../etc/passwd", "%00", "' OR 1=1 --", "<script>", "\n\r\t", "-1", "1e400",
    "NaN", "null", "true", "[]", "{}", "0" * 400, "9" * 40, "10.0.0.0/33", "::/129", "2001:db8::/1",
    "not-a-uuid", "00000000-0000-0000-0000-000000000000",
]
WEIRD_NUMBERS = [0, -1, -(2 ** 31), 2 ** 31, 2 ** 63, HUGE_INT, -HUGE_INT, 1.5, -0.0, 1e308, float("nan"),
                 float("inf"), float("-inf")]


def deep(depth: int, leaf: Any = 1) -> Any:
    """A value nested ``depth`` times (small depths only: json itself cannot write deep ones)."""
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"a": value}
    return value


@dataclass(frozen=True)
class Deep:
    """A place holder that encode() writes as ``depth`` nested arrays (deeper than json can write)."""

    depth: int

    @property
    def text(self) -> str:
        return "[" * self.depth + "]" * self.depth


weird_scalar = st.one_of(
    st.none(), st.booleans(), st.sampled_from(WEIRD_NUMBERS), st.integers(), st.floats(allow_nan=True),
    st.sampled_from(WEIRD_STRINGS), st.text(max_size=30),
    st.text(alphabet=st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF), max_size=10),
)
weird_value = st.one_of(
    weird_scalar,
    st.lists(weird_scalar, max_size=3),
    st.dictionaries(st.text(max_size=8), weird_scalar, max_size=3),
    st.sampled_from([deep(40), deep(200), Deep(3000), Deep(200_000)]),
    st.recursive(weird_scalar, lambda inner: st.lists(inner, max_size=3)
                 | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8),
)


def _paths(value: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value (the root included) that a mutation may hit."""
    found = [here]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*here, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*here, index))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replace(value[path[0]], path[1:], new)
    return copy


def _drop(value: Any, path: tuple[Any, ...]) -> Any:
    if len(path) == 1:
        copy = dict(value) if isinstance(value, dict) else list(value)
        del copy[path[0]]
        return copy
    return _replace(value, path[:1], _drop(value[path[0]], path[1:]))


@st.composite
def mutated(draw: st.DrawFn, seed: Any) -> Any:
    """The valid ``seed`` with one to three places replaced by a wrong value, removed, or given an
    unknown key."""
    body = seed
    for _ in range(draw(st.integers(1, 3))):
        places = _paths(body)
        path = draw(st.sampled_from(places))
        kind = draw(st.sampled_from(["replace", "replace", "replace", "unknown", "drop"]))
        target: Any = body
        for step in path:
            target = target[step]
        if kind == "unknown" and isinstance(target, dict):
            body = _replace(body, path, {**target, draw(st.sampled_from(["fuzz", "id", "", "\x00k", "a" * 300])):
                                         draw(weird_value)})
        elif kind == "drop" and path:
            body = _drop(body, path)
        else:
            body = _replace(body, path, draw(weird_value))
    return body


def poison(value: Any, *, text: str | None = None, number: int | None = None) -> Any:
    """``value`` with every string (keys aside) replaced by ``text`` and every integer by ``number``."""
    if isinstance(value, dict):
        return {key: poison(item, text=text, number=number) for key, item in value.items()}
    if isinstance(value, list):
        return [poison(item, text=text, number=number) for item in value]
    if isinstance(value, str) and text is not None:
        return text
    if isinstance(value, int) and not isinstance(value, bool) and number is not None:
        return number
    return value


POISONS = [{"text": "a\x00b"}, {"text": "\ud800x"}, {"text": "x" * 70_000}, {"number": HUGE_INT},
           {"number": -HUGE_INT}, {"number": -1}]


def encode(body: Any) -> bytes:
    """JSON as a careless client writes it: NaN/Infinity as bare words, lone surrogates escaped,
    Deep(n) as n nested arrays."""
    deeps: list[Deep] = []

    def placeholder(value: Any) -> str:
        if not isinstance(value, Deep):
            raise TypeError(type(value).__name__)
        deeps.append(value)
        return f"@@deep-{len(deeps) - 1}@@"

    text = json.dumps(body, allow_nan=True, default=placeholder)
    for index, value in enumerate(deeps):
        text = text.replace(f'"@@deep-{index}@@"', value.text)
    return text.encode()


RAW_BODIES = [
    b"", b"{", b"}", b"[", b"{\"a\":", b"nul", b"\xff\xfe\x00", b"\xc3\x28", b"{\"a\": \"\xff\"}",
    b"\xef\xbb\xbf{}", b"NaN", b"Infinity", b"-Infinity", b"{\"a\": NaN}", b"{\"size\": Infinity}",
    b"1e999999", b"{\"a\": 1e999999}", b"[" * 100_000 + b"]" * 100_000, b"{\"a\":" * 50_000 + b"1" + b"}" * 50_000,
    b"\"\\ud800\"", b"{\"\\u0000\": \"\\u0000\"}", b"{\"a\": 1, \"a\": {}}", b"\x00\x00\x00\x00",
    b"<xml/>", b"a=1&b=2", b"9" * 5000, b"{\"a\": 1}garbage", b"  \n\t ",
]
CONTENT_TYPES = ["application/json", "text/plain", "application/x-www-form-urlencoded", "application/xml",
                 "multipart/form-data; boundary=x", "application/json; charset=latin-1", ""]


@st.composite
def request_body(draw: st.DrawFn, seed: Any) -> tuple[bytes, str]:
    """(bytes, Content-Type): a mutated valid body (most of the time), any JSON value, or bytes
    that are not JSON at all, under the right Content-Type or a wrong one."""
    kind = draw(st.sampled_from(["mutated"] * 6 + ["any", "raw", "content_type"]))
    if kind == "mutated":
        return encode(draw(mutated(seed))), "application/json"
    if kind == "any":
        return encode(draw(weird_value)), "application/json"
    if kind == "raw":
        return draw(st.sampled_from(RAW_BODIES) | st.binary(max_size=40)), "application/json"
    return encode(seed), draw(st.sampled_from(CONTENT_TYPES[1:]))


# ---- the answer -----------------------------------------------------------------------------------

def error_shape_problem(api: str, status: int, body: Any) -> str | None:
    """None when ``body`` is the error of ``status`` in the API's own format, else what is wrong."""
    if not isinstance(body, dict):
        return f"not a JSON object: {body!r:.200}"
    if api == "keystone":
        error = body.get("error")
        ok = set(body) == {"error"} and isinstance(error, dict) and error.get("code") == status \
            and isinstance(error.get("message"), str) and isinstance(error.get("title"), str)
    elif api == "neutron":
        error = body.get("NeutronError")
        ok = set(body) == {"NeutronError"} and isinstance(error, dict) \
            and {"type", "message", "detail"} <= set(error) and isinstance(error.get("message"), str)
    elif api == "glance":
        ok = body.get("code") == status and isinstance(body.get("message"), str) and isinstance(body.get("title"), str)
    elif api == "aodh":
        error = body.get("error_message")
        ok = set(body) == {"error_message"} and isinstance(error, dict) and isinstance(error.get("faultstring"), str)
    elif api == "gnocchi":
        ok = set(body) == {"code", "title", "description"} and body["code"] == status \
            and isinstance(body["title"], str) and isinstance(body["description"], str | dict)
    elif api == "heat":
        error = body.get("error")
        ok = set(body) == {"code", "title", "explanation", "error"} and body["code"] == status \
            and isinstance(error, dict) and set(error) == {"type", "message", "traceback"} \
            and isinstance(error["message"], str)
    else:  # nova, cinder: {"<name>": {"code", "message"}}
        ok = len(body) == 1 and isinstance(next(iter(body.values())), dict) \
            and next(iter(body.values())).get("code") == status \
            and isinstance(next(iter(body.values())).get("message"), str)
    return None if ok else f"not {api}'s error format: {body!r:.300}"


# ---- the database -----------------------------------------------------------------------------------

def snapshot_sql() -> str:
    """One query: each table of the cloud's apps, its row count and an md5 of all its rows."""
    tables = sorted({model._meta.db_table for model in django_apps.get_models()
                     if model.__module__.startswith("apps.") and model._meta.managed})
    quote = connection.ops.quote_name
    parts = [f"SELECT '{t}', count(*), coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '') "
             f"FROM {quote(t)} x" for t in tables]
    return " UNION ALL ".join(parts)


def snapshot(sql: str) -> dict[str, tuple[int, str]]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return {table: (count, digest) for table, count, digest in cursor.fetchall()}


def diff(before: dict[str, tuple[int, str]], after: dict[str, tuple[int, str]]) -> list[str]:
    return [f"{t}: {before[t][0]} -> {after[t][0]} rows" + (" (rows changed)" if before[t][0] == after[t][0] else "")
            for t in before if before[t] != after.get(t)]

