"""workers.identity tasks, run by a real Celery worker process against the test database."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.identity import services
from apps.identity.models import Token
from tests.identity.factories import password_auth, seed
from workers.identity import token_flush

pytestmark = pytest.mark.django_db(transaction=True)


def test_token_flush_in_a_real_worker_deletes_only_expired_tokens(celery_worker_process) -> None:
    seed()
    expired, _ = services.token_issue(auth=password_auth("admin", "admin-pw", project="admin"))
    alive, _ = services.token_issue(auth=password_auth("admin", "admin-pw", project="admin"))
    Token.objects.filter(id=services.token_hash(expired)).update(expires_at=timezone.now() - timedelta(seconds=1))

    result = token_flush.apply_async(queue=celery_worker_process.queue)
    assert result.get(timeout=30) == 1

    assert not Token.objects.filter(id=services.token_hash(expired)).exists()
    assert Token.objects.filter(id=services.token_hash(alive)).exists()
    services.token_validate(token=alive)  # still good
