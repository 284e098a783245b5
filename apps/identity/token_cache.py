"""Validated tokens kept in each web worker, and the identity epoch that makes every worker drop them at once.

Token validation runs on every API request; it read the token, its user, domain and project, the role
assignments and the role graph each time (docs/performance.md). Each process now keeps what a validation
found (the Actor, pickled, so that no request shares objects with another), tagged with the **identity
epoch**: a random value in Redis that changes whenever anything a validation reads changes - a token
deleted (revoked, or with its user, project, domain), a user, group, domain, project, role, inference
rule, role assignment, application credential or credential (EC2 keys: an S3 request's authentication
is kept the same way) saved or deleted, group membership changed, and the
catalog's regions, services and endpoints. Each request reads the epoch (one Redis GET) before it looks
at its cache: a cached validation from another epoch is never used, so a revoked token, a disabled user
or a removed role is refused by every worker from the moment the change commits, with no TTL.

Keystone's semantics are kept: what is checked is exactly what ``token_validate`` checks (the cache only
skips the database while nothing changed), expiry is checked on every hit, and nothing is cached while
Redis cannot be read (then every request goes to the database, as before).

Ordering: the epoch is read *before* the database, and changed *after* the change commits (and once more
at once, for the changing transaction itself and for tests, whose outer transaction never commits). A
validation that raced a change is thus stored under the old epoch and never used. Nothing is stored from
inside a transaction (it could still roll back), except a test's own outer one.
"""
from __future__ import annotations

import logging
import pickle
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

EPOCH_KEY = "identity:epoch"
MAX_ENTRIES = 10_000

log = logging.getLogger(__name__)
T = TypeVar("T")

_lock = threading.Lock()
# token hash -> (epoch, expires at (epoch seconds), pickled Actor)
_validated: dict[str, tuple[str, float, bytes]] = {}
# EC2 access key -> (epoch, secret, pickled Actor): what an S3 request's signature was checked against
_ec2: dict[str, tuple[str, str, bytes]] = {}
# (epoch, project id) -> pickled catalog
_catalogs: dict[tuple[str, str | None], bytes] = {}


# Within one HTTP request the epoch is read once (a request validates its X-Auth-Token, maybe an
# X-Subject-Token, and reads the catalog: one Redis round trip, not three). Django runs a request's sync
# code, its request_started/finished receivers included, in one thread; outside requests (Celery,
# commands) nothing is remembered.
_request = threading.local()


def _request_started(**kwargs: Any) -> None:  # noqa: ARG001
    _request.active, _request.epoch = True, None


def _request_finished(**kwargs: Any) -> None:  # noqa: ARG001
    _request.active, _request.epoch = False, None


def current_epoch() -> str | None:
    """The identity epoch (read once per request), or None when Redis cannot be read (then nothing
    is cached)."""
    active = getattr(_request, "active", False)
    if active and _request.epoch is not None:
        return _request.epoch
    epoch = _read_epoch()
    if active:
        _request.epoch = epoch
    return epoch


def _read_epoch() -> str | None:
    try:
        epoch = cache.get(EPOCH_KEY)
        if epoch is None:  # first use, or Redis lost it: a new value, never one seen before
            cache.add(EPOCH_KEY, secrets.token_hex(8), None)
            epoch = cache.get(EPOCH_KEY)
    except Exception:
        log.warning("identity epoch unreadable: token validations are not cached", exc_info=True)
        return None
    return epoch


def _set_new_epoch() -> None:
    try:
        cache.set(EPOCH_KEY, secrets.token_hex(8), None)
    except Exception:
        # Workers cannot read the epoch either while Redis is down, so they do not use their caches.
        log.error("identity epoch not changed (Redis unreachable)", exc_info=True)
    _request.epoch = None
    with _lock:  # this process drops its own at once whatever Redis said
        _validated.clear()
        _catalogs.clear()


def epoch_bump() -> None:
    """Something token validation or the catalog reads changed: every worker drops what it cached,
    now (this transaction) and again once the transaction commits."""
    _set_new_epoch()
    if connection.in_atomic_block:
        transaction.on_commit(_set_new_epoch)


def _storable(epoch: str | None) -> bool:
    """Only what committed data says may be kept: outside any transaction but a test's own."""
    return epoch is not None and all(getattr(a, "_from_testcase", False) for a in connection.atomic_blocks)


def validated_get(token_hash: str, epoch: str | None) -> Any:
    """The Actor a token validated to in this epoch, still unexpired; None otherwise."""
    if epoch is None:
        return None
    entry = _validated.get(token_hash)
    if entry is None or entry[0] != epoch or entry[1] <= time.time():
        return None
    return pickle.loads(entry[2])


def validated_put(token_hash: str, epoch: str | None, actor: Any, *, expires_at: float) -> None:
    if not _storable(epoch):
        return
    data = pickle.dumps(actor, protocol=pickle.HIGHEST_PROTOCOL)
    with _lock:
        if len(_validated) >= MAX_ENTRIES:
            _validated.clear()
        _validated[token_hash] = (epoch, expires_at, data)  # type: ignore[assignment]


def ec2_get(access: str, epoch: str | None) -> tuple[str, Any] | None:
    """(secret, Actor) an EC2 key authenticated to in this epoch; None otherwise."""
    if epoch is None:
        return None
    entry = _ec2.get(access)
    if entry is None or entry[0] != epoch:
        return None
    return entry[1], pickle.loads(entry[2])


def ec2_put(access: str, epoch: str | None, secret: str, actor: Any) -> None:
    if not _storable(epoch):
        return
    data = pickle.dumps(actor, protocol=pickle.HIGHEST_PROTOCOL)
    with _lock:
        if len(_ec2) >= MAX_ENTRIES:
            _ec2.clear()
        _ec2[access] = (epoch, secret, data)  # type: ignore[assignment]


def catalog_cached(project_id: str | None, build: Callable[[], T]) -> T:
    """``build()``'s catalog for ``project_id``, computed once per epoch in each process."""
    epoch = current_epoch()
    key = (epoch or "", project_id)
    if epoch is not None and (data := _catalogs.get(key)) is not None:
        return pickle.loads(data)
    value = build()
    if _storable(epoch):
        with _lock:
            if len(_catalogs) >= 1000:
                _catalogs.clear()
            _catalogs[key] = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return value


def _changed(**kwargs: Any) -> None:
    if kwargs.get("raw") or kwargs.get("action", "post_").startswith("pre_"):  # loaddata; m2m's pre_ half
        return
    epoch_bump()


def connect() -> None:
    """Every change that may change a token validation's answer or the catalog changes the epoch."""
    from django.core.signals import request_finished, request_started

    from apps.identity import models

    request_started.connect(_request_started, dispatch_uid="identity-epoch-request-started")
    request_finished.connect(_request_finished, dispatch_uid="identity-epoch-request-finished")

    watched = [models.Domain, models.Project, models.User, models.Group, models.Role, models.ImpliedRole,
               models.RoleAssignment, models.ApplicationCredential, models.Credential, models.Region,
               models.Service, models.Endpoint]
    for model in watched:
        post_save.connect(_changed, sender=model, dispatch_uid=f"identity-epoch-save-{model.__name__}")
        post_delete.connect(_changed, sender=model, dispatch_uid=f"identity-epoch-delete-{model.__name__}")
    # a new token changes nothing cached; one deleted is revoked (token_flush_expired skips this signal)
    post_delete.connect(_changed, sender=models.Token, dispatch_uid="identity-epoch-delete-Token")
    for through in (models.User.groups.through, models.ApplicationCredential.roles.through):
        m2m_changed.connect(_changed, sender=through, dispatch_uid=f"identity-epoch-m2m-{through.__name__}")
