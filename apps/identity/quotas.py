"""The quota registry: each component registers the resources it counts, with a default limit.

Limits and usage live in QuotaLimit/QuotaUsage; reserving and releasing is done by
``services.quota_reserve`` / ``services.quota_release`` inside the caller's transaction.
"""
from __future__ import annotations

from dataclasses import dataclass

UNLIMITED = -1


@dataclass(frozen=True)
class QuotaResource:
    name: str
    default: int
    service: str
    description: str = ""


_REGISTRY: dict[str, QuotaResource] = {}


def register(name: str, *, default: int, service: str, description: str = "") -> QuotaResource:
    """Declare a countable resource (called from a component's AppConfig.ready). Idempotent."""
    resource = QuotaResource(name=name, default=default, service=service, description=description)
    _REGISTRY[name] = resource
    return resource


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def registered() -> dict[str, QuotaResource]:
    return dict(_REGISTRY)


def get(name: str) -> QuotaResource | None:
    return _REGISTRY.get(name)
