"""Scheduled usage reports. Tasks hold no business rules: they call the telemetry services.

- ``due`` (control queue, Celery beat every STRATUS_REPORTS_CHECK_SECONDS): starts a run of every
  schedule whose time has come (``report_schedules_due``; each run is a task record, so the task log
  shows it);
- ``run`` (control queue, sent through ``enqueue`` with its task record): renders, stores and mails
  one run (``report_run_execute``).
"""
from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="workers.reports.due")
def due() -> int:
    """Start the runs that are due; returns how many."""
    from apps.telemetry import services  # imported here: this module loads before Django is set up

    started = services.report_schedules_due()
    for run in started:
        logger.info("report schedule %s: run %s started for %s to %s", run.schedule_id, run.id,
                    run.period_start.isoformat(), run.period_end.isoformat())
    return len(started)


@shared_task(name="workers.reports.run")
def run(run_id: str) -> dict[str, Any]:
    """Make one report run (usage, CSV/HTML/PDF, storage, mail); a failure fails its task record."""
    from apps.telemetry import services

    done = services.report_run_execute(run_id=run_id)
    return {"run": str(done.id), "status": done.status, "instance_hours": done.instance_hours,
            "files": sorted(done.files), "mailed_to": len(done.recipients) if done.mailed_at else 0}
