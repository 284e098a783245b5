"""Helpers every networking service shares: ownership and write rights, the lock of a row to write,
quota reservations, events and revision numbers."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

from django.db import connection, models

from apps.core import events
from apps.core.errors import QuotaExceeded
from apps.identity import selectors as identity_selectors
from apps.identity import services as identity_services
from apps.identity.policy import Actor
from apps.networks import errors
from apps.networks.models import FloatingIP, Network, Router
from apps.telemetry import services as telemetry_services

M = TypeVar("M", bound=models.Model)


def owning_project(actor: Actor, project_id: str | None) -> str:
    """The project a new resource belongs to: the caller's, or (admin only) the one asked for."""
    if project_id:
        if project_id != actor.project_id and not actor.is_admin:
            raise errors.PolicyNotAuthorized("Only an admin may create resources for another project.")
        _require_member(actor, project_id)
        return project_id
    if actor.project_id is None:
        raise errors.InvalidInput("A project-scoped token (or project_id, for an admin) is required.")
    _require_member(actor, actor.project_id)
    return actor.project_id


def _require_member(actor: Actor, project_id: str) -> None:
    if actor.is_admin:
        return
    if not actor.may_write(project_id):
        raise errors.PolicyNotAuthorized("Your role on this project is read-only.")


def require_write(actor: Actor, obj: Any, not_found: type[Exception], message: str) -> None:
    """Writes to another project's object: 404 (as if absent); the reader role: 403."""
    if actor.may_write(obj.project_id):
        return
    if actor.may_read(obj.project_id) or (isinstance(obj, Network) and (obj.shared or obj.external)):
        raise errors.PolicyNotAuthorized(f"Your role does not allow changing {type(obj).__name__.lower()} "
                                         f"{obj.id}.")
    raise not_found(message)


def locked_for_write(actor: Actor, obj: M, not_found: type[Exception], message: str, *, related: tuple[str, ...] = ()
                     ) -> M:
    """``obj`` (read through its selector) again, locked for the write ``actor`` may make (require_write);
    ``related``: rows read with it (locked are only the object's own)."""
    require_write(actor, obj, not_found, message)
    rows = type(obj).objects
    if related:
        return rows.select_for_update(of=("self",)).select_related(*related).get(pk=obj.pk)
    return rows.select_for_update().get(pk=obj.pk)


def reserve(project_id: str, deltas: Mapping[str, int], limits: Mapping[str, int] | None = None) -> None:
    try:
        identity_services.quota_reserve(project_id=project_id, deltas=deltas, limits=limits)
    except QuotaExceeded as exc:
        raise errors.OverQuota(f"Quota exceeded for resources: ['{exc.resource}'].") from None


def limits_of(project_id: str, *resources: str) -> dict[str, int]:
    """The project's limits of ``resources``, read before a write takes its locks (``reserve(limits=)``)."""
    return identity_selectors.quota_limits_of(project_id=project_id, resources=resources)


def share_lock(network: Network) -> None:
    """Lock ``network``'s row FOR SHARE until the commit: a delete or an update of the network waits for
    the transaction, concurrent port creates do not wait for each other (the port rows' foreign keys
    hold KEY SHARE on it). SQLite locks the whole database for a write anyway."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f'SELECT 1 FROM "{Network._meta.db_table}" WHERE "id" = %s FOR SHARE', [network.pk])


def prefetched(obj: models.Model, **related: list[Any]) -> None:
    """``obj`` with its many-related ``related`` (name -> rows, in the order a read would give them) as
    ``prefetch_related`` leaves them, so that ``obj.<name>.all()`` costs no query (a row just written)."""
    cache = obj.__dict__.setdefault("_prefetched_objects_cache", {})
    for name, rows in related.items():
        queryset = getattr(obj, name).all()
        queryset._result_cache = list(rows)
        queryset._prefetch_done = True
        cache[name] = queryset


def release(project_id: str, deltas: Mapping[str, int]) -> None:
    identity_services.quota_release(project_id=project_id, deltas=deltas)


def publish(kind: str, resource: str, obj: Any, **data: Any) -> None:
    events.publish(project_id=getattr(obj, "project_id", None) or None, kind=kind, resource=resource,
                   resource_id=obj.id, data={"name": getattr(obj, "name", ""), **data})


def telemetry_record(kind: str, obj: FloatingIP | Router, event: str, at: datetime | None = None) -> None:
    """A floating IP's or router's life for telemetry (on commit): ip.floating / router samples
    (``at``: now, or a past moment for the backfill of rows older than telemetry)."""
    attributes: dict[str, Any] = {"status": "deleted" if event == "delete" else obj.status}
    if isinstance(obj, FloatingIP):
        attributes |= {"floating_ip_address": obj.floating_ip_address or "",
                       "floating_network_id": obj.floating_network_id or ""}
    else:
        attributes["name"] = obj.name or ""
    telemetry_services.lifecycle_record(kind=kind, resource_id=obj.id, project_id=obj.project_id or "", user_id="",
                                        attributes=attributes, event=event, at=at)  # type: ignore[arg-type]


def touch(obj: Any, fields: list[str]) -> None:
    obj.revision_number += 1
    obj.save(update_fields=[*fields, "revision_number", "updated_at"])


def save_changes(obj: Any, changes: Mapping[str, Any]) -> None:
    """An update's checked ``changes`` (attribute → value) set and saved, with a new revision."""
    for key, value in changes.items():
        setattr(obj, key, value)
    touch(obj, list(changes))
