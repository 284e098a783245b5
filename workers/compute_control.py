"""Compute tasks of the control tier (queue ``control``): the periodic sweep of servers stuck in
BUILD. Tasks hold no business rules: they call a service and report its outcome."""
from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="workers.compute_control.build_timeouts")
def build_timeouts() -> int:
    """Servers in BUILD for longer than STRATUS_BUILD_TIMEOUT_SECONDS go to ERROR with their claims
    released (scheduled by Celery beat, see CELERY_BEAT_SCHEDULE); returns how many."""
    from apps.compute.services import server_reports  # imported here: this module loads before Django is set up

    count = server_reports.server_build_timeouts()
    if count:
        logger.warning("%d server(s) timed out in BUILD", count)
    return count
