"""The quota registry: each component registers the resources it counts, with a default limit.

A component may also register a family of resources whose names other data defines (Cinder's
per volume type quotas ``volumes_<type>``, ``gigabytes_<type>``, ``snapshots_<type>``): a prefix, one
default, and a callable naming the suffixes that exist now (asked only when a name needs it).

Each resource also says how people read it: a ``label`` ("Floating IPs", not "floatingip"), the
``unit`` its figures count (``count``, ``MiB``, ``GiB``, ``bytes``; ``amount()`` writes them as people
read them: 51200 MiB is "50 GiB", 0 is "0", -1 is "unlimited"; ``exact_amount()`` and ``parse_amount()``
write and read a limit as an admin edits it, "64 GiB" for 65536 MiB), whether the overview draws it as a ``chart``
(Horizon's headline pies), and the overview ``group`` it belongs to (from its service: ``GROUPS``).
The dashboard's overview reads all of it from here, never from its templates.

Limits and usage live in QuotaLimit/QuotaUsage; reserving and releasing is done by
``services.quota_reserve`` / ``services.quota_release`` inside the caller's transaction.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.utils.module_loading import import_string

UNLIMITED = -1

UNITS = ("count", "MiB", "GiB", "bytes")

# The overview's groups, in their order, and the services whose resources each holds.
GROUPS: dict[str, tuple[str, ...]] = {
    "Compute": ("compute",),
    "Network": ("network",),
    "Storage": ("volume", "image", "object"),
    "Orchestration": ("orchestration",),
    "Telemetry": ("alarming",),
}


@dataclass(frozen=True)
class QuotaResource:
    name: str
    default: int
    service: str
    description: str = ""
    family: str = ""  # the prefix of the family it belongs to ("" for a resource registered by name)
    label: str = ""   # how people name it ("" : made from the name)
    unit: str = "count"
    chart: bool = False  # a headline resource: the overview draws it as a chart
    order: int = 0    # the order of declaration (the overview's tie-break after how full it is)
    counter: str = ""  # counted from its own rows: the dotted path of ``f(project_id) -> int`` (no usage row)

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()

    @property
    def group(self) -> str:
        return group_of(self.service)

    def amount(self, value: int | None) -> str:
        return amount(value, self.unit)


@dataclass(frozen=True)
class QuotaFamily:
    prefix: str
    names: Callable[[], Iterable[str]]
    default: int
    service: str
    description: str = ""
    label: str = ""   # a ``{}`` is the suffix
    unit: str = "count"
    order: int = 0

    def resource(self, suffix: str) -> QuotaResource:
        return QuotaResource(name=f"{self.prefix}_{suffix}", default=self.default, service=self.service,
                             description=self.description.format(suffix) if self.description else "",
                             family=self.prefix, label=self.label.format(suffix) if self.label else "",
                             unit=self.unit, order=self.order)


def group_of(service: str) -> str:
    """The overview group of a service's resources (an unknown service's is its own name)."""
    return next((group for group, services in GROUPS.items() if service in services), service.capitalize())


def amount(value: int | None, unit: str = "count") -> str:
    """A quota figure as people read it: ``-1`` is "unlimited"; MiB and bytes are written in the
    largest binary unit they fill (51200 MiB -> "50 GiB", 2**40 bytes -> "1 TiB")."""
    if value is None or value < 0:
        return "unlimited"
    if unit == "count" or value == 0:
        return f"{value:,}"
    if unit == "GiB":
        return f"{value:,} GiB"
    size = value * (1 << 20) if unit == "MiB" else value
    for name, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            figure = size / scale
            return f"{figure:,.0f} {name}" if figure == int(figure) else f"{figure:,.1f} {name}"
    return f"{size:,} bytes"


_SCALES = {"bytes": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}
_SPELLINGS = {"b": "bytes", "byte": "bytes", "bytes": "bytes", "k": "KiB", "kb": "KiB", "kib": "KiB", "m": "MiB",
              "mb": "MiB", "mib": "MiB", "g": "GiB", "gb": "GiB", "gib": "GiB", "t": "TiB", "tb": "TiB", "tib": "TiB"}
_AMOUNT = re.compile(r"\s*(-?[0-9][0-9,_]{0,30}(?:\.[0-9]{1,9})?)\s*([A-Za-z]{0,5})\s*")


def exact_amount(value: int, unit: str = "count") -> str:
    """A limit as an admin types it back: ``amount()``'s largest unit only where the figure is whole in
    it (51200 MiB -> "50 GiB", 1500 MiB -> "1500 MiB"), so that ``parse_amount`` gives ``value`` again."""
    if value < 0:
        return "unlimited"
    if unit == "count" or value == 0:
        return str(value)
    size = value * _SCALES[unit]
    for name in ("TiB", "GiB", "MiB", "KiB"):
        if _SCALES[name] >= _SCALES.get(unit, 1) and size % _SCALES[name] == 0:
            return f"{size // _SCALES[name]} {name}"
    return f"{value} {unit}"


def parse_amount(text: str, unit: str = "count") -> int:
    """A limit typed by an admin, in ``unit``: "unlimited" (or -1) is -1, a count is a whole number, a
    size may name its unit ("64 GiB", "1.5 TiB", "512 M"; none: ``unit``); ValueError says what is wrong."""
    if text.strip().lower() in ("unlimited", "-1"):
        return UNLIMITED
    match = _AMOUNT.fullmatch(text)
    if match is None:
        raise ValueError("Enter a whole number, or -1 for unlimited." if unit == "count" else
                         f"Enter a size such as 100 {'GiB' if unit == 'bytes' else unit}, or -1 for unlimited.")
    figure, given = Decimal(match.group(1).replace(",", "").replace("_", "")), match.group(2)
    if unit == "count":
        if given or figure != int(figure):
            raise ValueError("Enter a whole number, or -1 for unlimited.")
        return int(figure)
    named = _SPELLINGS.get(given.lower(), "") if given else unit
    if not named:
        raise ValueError(f"Unknown unit {given!r}: use bytes, KiB, MiB, GiB or TiB.")
    value = figure * _SCALES[named] / _SCALES[unit]
    if value != int(value):
        raise ValueError(f"This limit counts whole {unit}: {text.strip()} is not a whole number of them.")
    return int(value)


# a resource by its name; a family by ``<prefix>_*`` (never a resource's name)
_REGISTRY: dict[str, QuotaResource | QuotaFamily] = {}


def _order(key: str) -> int:
    found = _REGISTRY.get(key)
    return found.order if found is not None else len(_REGISTRY)


def register(name: str, *, default: int, service: str, description: str = "", label: str = "",
             unit: str = "count", chart: bool = False, counter: str = "") -> QuotaResource:
    """Declare a countable resource (called from a component's AppConfig.ready). Idempotent.

    ``counter``: the resource's usage is counted from its own rows rather than kept in a usage row
    (Nova's counting quotas): the dotted path of a function ``(project_id) -> int`` that counts the
    project's rows, including those the calling transaction wrote and has not committed. Its creates
    then share no row (``services.quota_reserve``)."""
    if unit not in UNITS:
        raise ValueError(f"Unknown quota unit {unit!r} (one of {', '.join(UNITS)}).")
    resource = QuotaResource(name=name, default=default, service=service, description=description, label=label,
                             unit=unit, chart=chart, order=_order(name), counter=counter)
    _REGISTRY[name] = resource
    return resource


def register_family(prefix: str, *, names: Callable[[], Iterable[str]], default: int, service: str,
                    description: str = "", label: str = "", unit: str = "count") -> QuotaFamily:
    """Declare the resources ``<prefix>_<suffix>`` for every suffix ``names()`` yields when asked (a
    ``{}`` in ``description`` or ``label`` is the suffix). Idempotent."""
    if unit not in UNITS:
        raise ValueError(f"Unknown quota unit {unit!r} (one of {', '.join(UNITS)}).")
    family = QuotaFamily(prefix=prefix, names=names, default=default, service=service, description=description,
                         label=label, unit=unit, order=_order(f"{prefix}_*"))
    _REGISTRY[f"{prefix}_*"] = family
    return family


def counter_of(name: str) -> Callable[[str], int] | None:
    """The function counting a counted resource's rows for a project (None: a usage row keeps it)."""
    found = _REGISTRY.get(name)
    if not isinstance(found, QuotaResource) or not found.counter:
        return None
    if found.counter not in _COUNTERS:
        _COUNTERS[found.counter] = import_string(found.counter)
    return _COUNTERS[found.counter]


def counted_names() -> list[str]:
    """The resources counted from their own rows (named resources only: no family is)."""
    return sorted(name for name, r in _REGISTRY.items() if isinstance(r, QuotaResource) and r.counter)


_COUNTERS: dict[str, Callable[[str], int]] = {}


def unregister(name: str) -> None:
    """Forget a resource, or a family by ``<prefix>_*``."""
    _REGISTRY.pop(name, None)


def registered() -> dict[str, QuotaResource]:
    """Every resource: the named ones, then each family's as its names are now."""
    found = {name: r for name, r in _REGISTRY.items() if isinstance(r, QuotaResource)}
    by_names: dict[Callable[[], Iterable[str]], list[str]] = {}
    for family in [f for f in _REGISTRY.values() if isinstance(f, QuotaFamily)]:
        if family.names not in by_names:
            by_names[family.names] = list(family.names())
        for suffix in by_names[family.names]:
            found.setdefault(f"{family.prefix}_{suffix}", family.resource(suffix))
    return found


def service_resources(service: str) -> list[str]:
    """The names of the resources ``service`` (compute, volume, network, image) registered, its
    families' as they are now: what that service's quota reset returns to the defaults."""
    return sorted(name for name, r in registered().items() if r.service == service)


def get(name: str) -> QuotaResource | None:
    found = _REGISTRY.get(name)
    if isinstance(found, QuotaResource):
        return found
    for family in [f for f in _REGISTRY.values() if isinstance(f, QuotaFamily)]:
        suffix = name[len(family.prefix) + 1:]
        if name.startswith(f"{family.prefix}_") and suffix and suffix in set(family.names()):
            return family.resource(suffix)
    return None
