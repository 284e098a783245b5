"""Password authentication: as costly for an unknown user as for a wrong password (no user
enumeration by timing), on the Keystone API and the dashboard alike (one service); Keystone's
lockout (STRATUS_LOCKOUT_FAILURE_ATTEMPTS, STRATUS_LOCKOUT_DURATION) off by default, and when on a
locked user gets Keystone's 401 even with the right password until the lock expires or an admin
re-enables the user."""
from __future__ import annotations

import json
import statistics
import time
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.test import Client
from django.utils import timezone

from apps.identity.models import User
from tests.identity import factories

pytestmark = pytest.mark.django_db

TOKENS = "/identity/v3/auth/tokens"


class CountingHasher(PBKDF2PasswordHasher):
    """PBKDF2 with few iterations that counts how many hashes were computed."""

    algorithm = "pbkdf2_counting"
    iterations = 60000
    computed = 0

    def encode(self, password: str, salt: str, iterations: int | None = None) -> str:
        CountingHasher.computed += 1
        return super().encode(password, salt, iterations)


@pytest.fixture
def counting(settings: Any) -> type[CountingHasher]:
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingHasher"]
    CountingHasher.computed = 0
    return CountingHasher


# ``cloud`` is the seeded cloud (tests/conftest.py): alice (a member of demo, password factories.PASSWORD)
# is the user who gets locked out, the admin unlocks her. A test that takes ``counting`` names it before
# ``cloud``, so the seeded passwords are hashed by the counting hasher too.


def _login(name: str, password: str) -> Any:
    return Client().post(TOKENS, data=json.dumps({"auth": factories.password_auth_body(name, password)}),
                         content_type="application/json")


def _dashboard_login(name: str, password: str) -> int:
    return Client().post("/dashboard/login", {"domain": "Default", "username": name, "password": password}).status_code


def _keystone_401(response: Any) -> None:
    assert response.status_code == 401, response.content
    body = response.json()
    assert body["error"]["code"] == 401 and body["error"]["title"] == "Unauthorized", body


def test_an_unknown_user_costs_one_hash_like_a_wrong_password(counting, cloud):
    for login in (lambda n, p: _login(n, p).status_code, _dashboard_login):
        counting.computed = 0
        assert login("alice", "wrong") in (400, 401)
        wrong = counting.computed
        counting.computed = 0
        assert login("nobody-at-all", "wrong") in (400, 401)
        unknown = counting.computed
        assert wrong == unknown == 1, (login, wrong, unknown)


def test_an_unknown_user_takes_as_long_as_a_wrong_password(counting, cloud):
    def median(name: str) -> float:
        times = []
        for _ in range(7):
            started = time.perf_counter()
            _keystone_401(_login(name, "wrong"))
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    wrong, unknown = median("alice"), median("nobody-at-all")
    assert 0.4 < unknown / wrong < 2.5, (unknown, wrong)  # before: 0.2 (no hash for an unknown user)


def test_lockout_is_off_by_default(settings, cloud):
    assert settings.STRATUS_LOCKOUT_FAILURE_ATTEMPTS == 0 and settings.STRATUS_LOCKOUT_DURATION == 1800
    for _ in range(8):
        _keystone_401(_login("alice", "wrong"))
    assert _login("alice", factories.PASSWORD).status_code == 201


def _lock(settings: Any, attempts: int = 3) -> None:
    settings.STRATUS_LOCKOUT_FAILURE_ATTEMPTS = attempts
    settings.STRATUS_LOCKOUT_DURATION = 1800
    for _ in range(attempts):
        _keystone_401(_login("alice", "wrong"))


def test_a_locked_user_gets_401_even_with_the_right_password(settings, cloud):
    settings.STRATUS_LOCKOUT_FAILURE_ATTEMPTS = 3
    _keystone_401(_login("alice", "wrong"))
    _keystone_401(_login("alice", "wrong"))
    assert _login("alice", factories.PASSWORD).status_code == 201  # a success starts the count again
    _lock(settings)
    assert User.objects.get(name="alice").failed_auth_count == 3
    _keystone_401(_login("alice", factories.PASSWORD))
    assert _dashboard_login("alice", factories.PASSWORD) == 400  # the dashboard asks the same service
    assert _login("admin", "admin-pw").status_code == 201  # others are not affected


def test_the_admin_unlocks_by_enabling_the_user(settings, cloud):
    _lock(settings)
    _keystone_401(_login("alice", factories.PASSWORD))
    response = cloud.admin.patch(f"users/{cloud.member_actor.user_id}", {"user": {"enabled": True}})
    assert response.status_code == 200, response.content
    assert _login("alice", factories.PASSWORD).status_code == 201


def test_the_lock_expires(settings, cloud):
    _lock(settings)
    _keystone_401(_login("alice", factories.PASSWORD))
    User.objects.filter(name="alice").update(failed_auth_at=timezone.now() - timedelta(seconds=1801))
    assert _login("alice", factories.PASSWORD).status_code == 201
    assert User.objects.get(name="alice").failed_auth_count == 0


def _change_password(cloud: Any, original: str, user_id: str | None = None) -> Any:
    """Keystone's self-service POST /users/{id}/password, which needs no token (alice's by default)."""
    return cloud.anonymous.post(f"users/{user_id or cloud.member_actor.user_id}/password",
                                {"user": {"original_password": original, "password": "new-pw-123"}})


def test_the_password_change_api_is_no_way_around_the_lockout(settings, cloud):
    """It takes no token, so its original password is a sign-in: wrong ones count, a locked user is
    refused even with the right one, and an unknown user costs the same as a wrong password."""
    settings.STRATUS_LOCKOUT_FAILURE_ATTEMPTS = 3
    for _ in range(3):
        _keystone_401(_change_password(cloud, "wrong"))
    assert User.objects.get(name="alice").failed_auth_count == 3
    _keystone_401(_change_password(cloud, factories.PASSWORD))
    _keystone_401(_login("alice", factories.PASSWORD))
    assert User.objects.get(name="alice").check_password(factories.PASSWORD)


def test_the_password_change_api_costs_one_hash_for_an_unknown_user(counting, cloud):
    counting.computed = 0
    _keystone_401(_change_password(cloud, "wrong"))
    wrong = counting.computed
    counting.computed = 0
    _keystone_401(_change_password(cloud, "wrong", user_id="nobody"))
    assert counting.computed == wrong
