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
