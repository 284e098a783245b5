"""Identity tasks. Tasks hold no business rules: they call a service and report its outcome."""
from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="workers.identity.token_flush")
def token_flush() -> int:
    """Delete expired tokens (scheduled by Celery beat, see CELERY_BEAT_SCHEDULE); returns how many."""
    from apps.identity import services  # imported here: this module loads before Django is set up

    deleted = services.token_flush_expired()
    if deleted:
        logger.info("flushed %d expired tokens", deleted)
    return deleted
