"""Object storage tasks. Tasks hold no business rules: they call a service and report its outcome."""
from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="workers.objects.expire")
def expire() -> int:
    """Delete the objects whose X-Delete-At has passed (scheduled by Celery beat, see
    CELERY_BEAT_SCHEDULE; readers stopped seeing them at that moment already); returns how many."""
    from apps.objects import services  # imported here: this module loads before Django is set up

    deleted = services.objects_expire()
    if deleted:
        logger.info("deleted %d expired objects", deleted)
    return deleted


@shared_task(name="workers.objects.fold")
def fold() -> int:
    """Fold the containers' pending counter changes into their counters (scheduled by Celery beat):
    readers already add them, so this only keeps their number small; returns how many containers."""
    from apps.objects import services

    folded = services.counters_fold()
    if folded:
        logger.debug("folded the counter changes of %d containers", len(folded))
    return len(folded)


@shared_task(name="workers.objects.audit")
def audit() -> dict[str, int]:
    """Read a share of the stored blobs back and check them (scheduled by Celery beat); each corrupt or
    missing one is logged as an error (its row keeps the finding: the admin console shows it)."""
    from apps.objects import services

    report = services.objects_audit()
    for account, container, name, error in report.failed:
        logger.error("audit: object %s/%s/%s: %s", account, container, name, error)
    return {"checked": report.checked, "bytes": report.bytes, "failed": len(report.failed)}


@shared_task(name="workers.objects.usage")
def usage() -> int:
    """Every account's bytes, objects and containers to telemetry (scheduled by Celery beat: the
    swift_account resources and their storage.objects* samples); returns how many accounts."""
    from apps.objects import services

    return services.objects_usage_record()
