"""The quota registry: each component registers the resources it counts, with a default limit.

A component may also register a family of resources whose names other data defines (Cinder's
per volume type quotas ``volumes_<type>``, ``gigabytes_<type>``, ``snapshots_<type>``): a prefix, one
default, and a callable naming the suffixes that exist now (asked only when a name needs it).

Limits and usage live in QuotaLimit/QuotaUsage; reserving and releasing is done by
``services.quota_reserve`` / ``services.quota_release`` inside the caller's transaction.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

UNLIMITED = -1


@dataclass(frozen=True)
class QuotaResource:
    name: str
    default: int
    service: str
    description: str = ""
    family: str = ""  # the prefix of the family it belongs to ("" for a resource registered by name)


@dataclass(frozen=True)
class QuotaFamily:
    prefix: str
    names: Callable[[], Iterable[str]]
    default: int
    service: str
    description: str = ""

    def resource(self, suffix: str) -> QuotaResource:
        return QuotaResource(name=f"{self.prefix}_{suffix}", default=self.default, service=self.service,
                             description=self.description.format(suffix) if self.description else "",
                             family=self.prefix)


# a resource by its name; a family by ``<prefix>_*`` (never a resource's name)
_REGISTRY: dict[str, QuotaResource | QuotaFamily] = {}


def register(name: str, *, default: int, service: str, description: str = "") -> QuotaResource:
    """Declare a countable resource (called from a component's AppConfig.ready). Idempotent."""
    resource = QuotaResource(name=name, default=default, service=service, description=description)
    _REGISTRY[name] = resource
    return resource


def register_family(prefix: str, *, names: Callable[[], Iterable[str]], default: int, service: str,
                    description: str = "") -> QuotaFamily:
    """Declare the resources ``<prefix>_<suffix>`` for every suffix ``names()`` yields when asked (a
    ``{}`` in ``description`` is the suffix). Idempotent."""
    family = QuotaFamily(prefix=prefix, names=names, default=default, service=service, description=description)
    _REGISTRY[f"{prefix}_*"] = family
    return family


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
