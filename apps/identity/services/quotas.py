"""Quotas: identity owns every project's limits and usage; other apps reserve, release, read and
reset them only through these functions (``resources=``)."""
from __future__ import annotations

import secrets
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from apps.core import events
from apps.core.errors import BadRequest, QuotaExceeded
from apps.identity import quotas, selectors
from apps.identity.models import QuotaDefault, QuotaLimit, QuotaUsage
from apps.identity.policy import Actor, require_admin

# ---- quotas ---------------------------------------------------------------------------------

QUOTA_MAX = 2**31 - 1  # Nova's, Cinder's and Neutron's schemas: a limit is a 32-bit integer
WIDE_MAX = 2**63 - 1  # ...but a resource whose own default passes that (image storage, 1 TiB in bytes) is 64-bit


def _registered(resource: str) -> int:
    """The largest limit ``resource`` takes, never less than its default (BadRequest when no component
    registered it)."""
    known = quotas.get(resource)
    if known is None:
        raise BadRequest(f"Unknown quota resource: {resource}.")
    return WIDE_MAX if known.default > QUOTA_MAX else QUOTA_MAX


def quota_reserve(*, project_id: str, deltas: Mapping[str, int], limits: Mapping[str, int] | None = None) -> None:
    """Count ``deltas`` against the project's limits, or raise QuotaExceeded changing nothing.

    Call it inside the transaction that creates the resource rows, as late in it as it can come: each
    usage row is changed by one conditional UPDATE (``in_use + delta <= limit``, in resource order),
    which locks it until that transaction ends, so concurrent reservations never overshoot (PostgreSQL
    re-checks the condition on the row a concurrent reservation left), and a rollback returns what was
    reserved. Several resources are reserved all or none (a savepoint around them). ``limits``: the
    project's limits as ``selectors.quota_limits_of`` read them before the caller took its locks (so that
    the locked section does not wait for that read); read here without it.

    A resource counted from its own rows (``quotas.register(counter=)``: ports) keeps no usage row, so
    its creates share none: call this after the transaction wrote the rows it reserves for. Nothing is
    done when its limit is -1 or the delta gives back (the deleted rows are the release); otherwise
    ``_check_counted`` counts the rows, with the ones other transactions are writing, and refuses past
    the limit.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("quota_reserve must run inside the transaction that creates the resource")
    wanted = {r: int(d) for r, d in deltas.items() if int(d) != 0}
    for resource in wanted:
        _registered(resource)
    if not wanted:
        return
    stored = {r: d for r, d in wanted.items() if quotas.counter_of(r) is None}
    growing = {r: d for r, d in wanted.items() if r not in stored and d > 0}
    needed = [*stored, *growing]
    if needed and (limits is None or not set(needed) <= set(limits)):
        limits = selectors.quota_limits_of(project_id=project_id, resources=needed)
    for resource, delta in sorted(growing.items()):
        assert limits is not None
        if limits[resource] >= 0:  # unlimited: nothing to count, nothing locked
            _check_counted(project_id, resource, delta, limits[resource])
    if stored:
        assert limits is not None
        if len(stored) == 1:
            _reserve_rows(project_id, stored, limits)
        else:
            with transaction.atomic():
                _reserve_rows(project_id, stored, limits)
        # a usage row moved: the quota's live event (a counted resource's own event says it: the
        # dashboard's overview listens to both, ``quotas.counted_names()``)
        events.publish(project_id=project_id, kind="updated", resource="quota", resource_id=project_id,
                       data={"deltas": stored})


_USAGE = QuotaUsage._meta.db_table

# A counted resource's reservation registers each row it reserves for as being written by this
# transaction: a transaction-scoped advisory lock on (hash of project and resource, a random key), which
# never waits; then it reads the keys the other transactions of this database hold for the same
# project and resource. The read sits in a subquery correlated with the registration, so PostgreSQL
# runs it after the locks are taken.
_IN_FLIGHT_SQL = ("SELECT array_agg(objid::bigint) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 "
                  "AND classid = hashtext(%s)::oid AND pid <> pg_backend_pid() AND granted "
                  "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")
_REGISTER_SQL = (f"SELECT ({_IN_FLIGHT_SQL.replace('WHERE', 'WHERE reg.ok AND', 1)}), reg.ok FROM (SELECT "
                 "bool_and(pg_try_advisory_xact_lock(hashtext(%s), n)) AS ok FROM unnest(%s::int[]) AS n) AS reg")
COUNTED_WAIT_SECONDS = 1.0  # how long a reservation at the limit waits for younger ones to finish


def _register(key: str, delta: int) -> tuple[int, list[int]]:
    """Register ``delta`` rows under ``key``; (this registration's rank, the keys others hold)."""
    with connection.cursor() as cursor:
        while True:  # a random key already taken (2**-31 a row) is taken again with a new one
            mine = [secrets.randbelow(2**31) for _ in range(delta)]
            cursor.execute(_REGISTER_SQL, [key, key, mine])
            others, ok = cursor.fetchone()
            if ok:
                return max(mine), list(others or [])


def _held(key: str) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(_IN_FLIGHT_SQL, [key])
        return list(cursor.fetchone()[0] or [])


def _check_counted(project_id: str, resource: str, delta: int, limit: int) -> None:
    """Refuse ``delta`` more rows of a counted resource (already written by this transaction) when the
    project's rows, with those other transactions are writing, pass ``limit``.

    Exact without a shared row (Nova's counting quotas, checked before the commit): each reservation
    first registers its rows (``_register``), then counts the committed rows and its own. Of two
    transactions that both commit, the one that registered later sees the other, as registered (its
    locks are held until it commits) or as committed (PostgreSQL makes a commit visible before it
    releases the locks); so the last to register counts every row that ends up committed, and none
    passes the limit. At the limit, a reservation over only because of others in flight waits for those
    whose key is larger than its own (so no two wait for each other), at most COUNTED_WAIT_SECONDS, and
    counts again: of N racing for K free slots, K usually pass. It may still be refused while the others
    it counted roll back (a race at the limit); two are never accepted past it. SQLite takes the
    database's write lock with the first write, so there the count alone is exact."""
    counter = quotas.counter_of(resource)
    assert counter is not None
    if connection.vendor != "postgresql":
        others: list[int] = []
        rank = 0
    else:
        key = f"quota:{resource}:{project_id}"
        rank, others = _register(key, delta)
    deadline = time.monotonic() + COUNTED_WAIT_SECONDS
    while True:
        own = counter(project_id)  # read after the others' keys: a newer snapshot
        if own + len(others) <= limit:
            return
        younger = {k for k in others if k > rank}
        if own > limit or not younger or time.monotonic() > deadline:
            in_use = max(own + len(others) - delta, 0)
            raise QuotaExceeded(
                f"Quota exceeded for {resource}: requested {delta}, but already used {in_use} of {limit} "
                f"{resource}.", resource=resource, limit=limit, in_use=in_use, requested=delta)
        while time.monotonic() < deadline and younger & set(others := _held(key)):
            time.sleep(0.005)


def _add_usage(project_id: str, resource: str, delta: int, now: datetime, ceiling: int | None) -> bool:
    """``in_use += delta`` (never below 0) on the project's row, only while ``in_use <= ceiling`` when a
    ceiling is given; False when no row changed (none yet, or the ceiling). One statement, written out:
    the hot path of every create and delete."""
    sql = (f'UPDATE "{_USAGE}" SET "in_use" = CASE WHEN "in_use" + %s < 0 THEN 0 ELSE "in_use" + %s END, '
           '"updated_at" = %s WHERE "project_id" = %s AND "resource" = %s')
    params: list[Any] = [delta, delta, now, project_id, resource]
    if ceiling is not None:
        sql += ' AND "in_use" <= %s'
        params.append(ceiling)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount > 0


def _reserve_rows(project_id: str, wanted: Mapping[str, int], limits: Mapping[str, int]) -> None:
    now = timezone.now()
    for resource, delta in sorted(wanted.items()):
        limit = limits[resource]
        rows = QuotaUsage.objects.filter(project_id=project_id, resource=resource)
        change = {"in_use": Greatest(F("in_use") + delta, Value(0)), "updated_at": now}
        if delta > 0 and limit >= 0 and _add_usage(project_id, resource, delta, now, limit - delta):
            continue
        if (delta <= 0 or limit < 0) and _add_usage(project_id, resource, delta, now, None):
            continue
        usage = QuotaUsage.objects.select_for_update().filter(project_id=project_id, resource=resource).first()
        if usage is None:  # the project's first of this resource: its row, then the same UPDATE again
            QuotaUsage.objects.bulk_create([QuotaUsage(project_id=project_id, resource=resource)],
                                           ignore_conflicts=True)
            usage = QuotaUsage.objects.select_for_update().get(project_id=project_id, resource=resource)
        if delta > 0 and limit >= 0 and usage.in_use + delta > limit:
            raise QuotaExceeded(
                f"Quota exceeded for {resource}: requested {delta}, but already used {usage.in_use} "
                f"of {limit} {resource}.", resource=resource, limit=limit, in_use=usage.in_use, requested=delta)
        rows.update(**change)  # the row is locked now: the figure read is the one changed


def quota_release(*, project_id: str, deltas: Mapping[str, int]) -> None:
    """Give back what a deleted resource held (inside the transaction that deletes it)."""
    quota_reserve(project_id=project_id, deltas={r: -abs(int(d)) for r, d in deltas.items()})


@transaction.atomic
def quota_set(*, actor: Actor, project_id: str, limits: Mapping[str, Any], force: bool = False) -> dict[str, int]:
    """Set a project's own limits (admin). A limit below what is in use is refused unless forced."""
    require_admin(actor, action="set quotas")
    project = selectors.project_get(actor=actor, project_id=project_id)
    clean: dict[str, int] = {}
    for resource, value in limits.items():
        most = _registered(resource)
        if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).lstrip("-").isdigit():
            raise BadRequest(f"Quota limit {value!r} for {resource} must be an integer.")
        if int(value) < -1 or int(value) > most:
            raise BadRequest(f"Quota limit {value} for {resource} must be -1 (unlimited) or more, "
                             f"and at most {most}.")
        clean[resource] = int(value)
    used = dict(QuotaUsage.objects.select_for_update().filter(project=project, resource__in=clean)
                .values_list("resource", "in_use"))
    for resource in clean:
        counter = quotas.counter_of(resource)
        if counter is not None:
            used[resource] = counter(project.id)
    for resource, value in clean.items():
        if not force and value >= 0 and used.get(resource, 0) > value:
            raise BadRequest(f"Quota limit {value} for {resource} must be greater than or equal to the "
                             f"{used[resource]} already used.")
        QuotaLimit.objects.update_or_create(project=project, resource=resource, defaults={"hard_limit": value})
    events.publish(project_id=project.id, kind="updated", resource="quota", resource_id=project.id)
    return selectors.quota_limits(project=project)


@transaction.atomic
def quota_delete(*, actor: Actor, project_id: str, resources: Iterable[str]) -> None:
    """Return ``resources`` of a project to the default limits (admin). Each API resets only its
    own (``quotas.service_resources(service)``): a Nova reset never touches Cinder's limits."""
    require_admin(actor, action="reset quotas")
    project = selectors.project_get(actor=actor, project_id=project_id)
    names = list(resources)
    QuotaLimit.objects.filter(project=project, resource__in=names).delete()
    events.publish(project_id=project.id, kind="updated", resource="quota", resource_id=project.id)


def quota_resources_rename(*, resources: Mapping[str, str]) -> None:
    """Carry every project's usage and limits and the default of each ``old`` resource name over to
    its ``new`` one (``{old: new}``), as when the thing a family's names come from is renamed. Call it
    inside the transaction that renames that thing."""
    for old, new in resources.items():
        for model in (QuotaUsage, QuotaLimit, QuotaDefault):
            model.objects.filter(resource=old).update(resource=new)


def quota_resources_forget(*, resources: Iterable[str]) -> None:
    """Drop every project's usage and limits and the default of ``resources``, whose thing is gone
    (nothing of it remains to count). Call it inside the transaction that deletes that thing."""
    names = list(resources)
    for model in (QuotaUsage, QuotaLimit, QuotaDefault):
        model.objects.filter(resource__in=names).delete()


@transaction.atomic
def quota_default_set(*, actor: Actor, limits: Mapping[str, int]) -> dict[str, int]:
    require_admin(actor, action="set default quotas")
    for resource, value in limits.items():
        most = _registered(resource)
        if isinstance(value, bool) or not isinstance(value, int) or not -1 <= value <= most:
            raise BadRequest(f"Quota limit {value!r} for {resource} must be an integer, -1 or more, "
                             f"at most {most}.")
        QuotaDefault.objects.update_or_create(resource=resource, defaults={"hard_limit": value})
    return selectors.quota_defaults()
