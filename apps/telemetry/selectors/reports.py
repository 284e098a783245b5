"""Reads of the scheduled usage reports, scoped to the caller (``restrict``): the schedules and runs a
caller may see (its project's; admins every one), paged for the dashboard's tables in one query, and a
run's files from the object storage engine."""
from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet

from apps.core import pagination
from apps.core.access import restrict
from apps.core.errors import BadRequest, NotFound
from apps.identity.policy import Actor
from apps.objects.storage import get_engine
from apps.telemetry.models import ReportRun, ReportSchedule

REPORT_SCHEDULE_SORT_KEYS = {"name": "name", "created_at": "created_at", "next_run_at": "next_run_at",
                             "frequency": "frequency", "project_id": "project_id"}
REPORT_RUN_SORT_KEYS = {"created_at": "created_at", "name": "name", "status": "status",
                        "period_start": "period_start", "project_id": "project_id"}


def _report_page(qs: QuerySet[Any], *, keys: dict[str, str], sort_key: str, ascending: bool, search: str,
                 limit: int | None, marker: str | None) -> list[Any]:
    column = keys.get(sort_key)
    if column is None:
        raise BadRequest(f"Invalid sort key: {sort_key}.")
    if search:
        qs = qs.filter(name__icontains=search)
    order = [(column, ascending), ("id", ascending)]
    if marker is not None:
        try:
            marker = str(uuid.UUID(marker))
        except ValueError as exc:
            raise BadRequest(f"Marker {marker} could not be found.") from exc
    qs = pagination.keyset(qs, order=order, marker=marker,
                           unknown=lambda value: BadRequest(f"Marker {value} could not be found."))
    return list(qs[:limit] if limit is not None else qs)


def report_schedule_list(*, actor: Actor, sort_key: str = "name", ascending: bool = True, search: str = "",
                         limit: int | None = None, marker: str | None = None) -> list[ReportSchedule]:
    """The schedules the caller may see: its project's (admins: every one, those of every project too),
    sorted and paged for the dashboard's table (one query)."""
    qs = restrict(ReportSchedule.objects.select_related("crontab"), actor, "view")
    return _report_page(qs, keys=REPORT_SCHEDULE_SORT_KEYS, sort_key=sort_key, ascending=ascending, search=search,
                        limit=limit, marker=marker)


def report_schedule_get(*, actor: Actor, schedule_id: str) -> ReportSchedule:
    row = restrict(ReportSchedule.objects.select_related("crontab"), actor, "view").filter(
        pk=_report_uuid(schedule_id, "Report schedule")).first()
    if row is None:
        raise NotFound(f"Report schedule {schedule_id} could not be found.")
    return row


def report_run_list(*, actor: Actor, schedule_id: str | None = None, sort_key: str = "created_at",
                    ascending: bool = False, search: str = "", limit: int | None = 50,
                    marker: str | None = None) -> list[ReportRun]:
    """The runs the caller may see (its project's; admins every one), newest first (one query)."""
    qs = restrict(ReportRun.objects.all(), actor, "view")
    if schedule_id is not None:
        qs = qs.filter(schedule_id=_report_uuid(schedule_id, "Report schedule"))
    return _report_page(qs, keys=REPORT_RUN_SORT_KEYS, sort_key=sort_key, ascending=ascending, search=search,
                        limit=limit, marker=marker)


def report_run_get(*, actor: Actor, run_id: str) -> ReportRun:
    row = restrict(ReportRun.objects.all(), actor, "view").filter(pk=_report_uuid(run_id, "Report run")).first()
    if row is None:
        raise NotFound(f"Report run {run_id} could not be found.")
    return row


def report_file(*, actor: Actor, run_id: str, kind: str) -> tuple[ReportRun, Iterable[bytes], str, int]:
    """One file of a run the caller may see: (run, its bytes in chunks, content type, size)."""
    from apps.telemetry.services.reports import KINDS

    run = report_run_get(actor=actor, run_id=run_id)
    item = (run.files or {}).get(kind)
    if kind not in KINDS or item is None:
        raise NotFound(f"Report run {run_id} has no {kind} file.")
    return run, get_engine(item.get("engine")).reader(item["location"]), KINDS[kind][0], int(item["size"])


def _report_uuid(value: str, what: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError as exc:
        raise NotFound(f"{what} {value} could not be found.") from exc
