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

**The epoch without a Redis GET per request.** A web worker keeps the epoch current with one listener
thread (``_EpochListener``, started by the worker's first request): every change sets the new epoch and
PUBLISHes it on a channel of the same name in one MULTI/EXEC (both or neither), and the listener, on
each message, reads the key again (a GET, so that two changes whose messages cross cannot leave an
older value). After every (re)connection it GETs the key once its SUBSCRIBE is confirmed, so a change
made while it was disconnected is never missed. What it knows is used only while it is *fresh*: the
listener PINGs on its subscribed connection every ``PING_EVERY`` s, and Redis answers a PING after every
message it published before it, so a PONG for a PING sent at ``t`` proves that every change published
before ``t`` has been applied; the epoch is used until ``t + STALE_AFTER``. A listener that is stalled,
disconnected or dead therefore stops being used within ``STALE_AFTER`` (0.5 s), and the worker reads the
epoch with a GET per request again (as without a listener). The bound: a change is seen by every worker
after its message's delivery (well under a millisecond on one host; tests/identity/
test_token_cache_workers.py) and at worst ``STALE_AFTER`` after it was published; a request that starts
inside that delivery window may still be answered from the old epoch. The process that made the change
uses the new epoch at once.
"""
from __future__ import annotations

import logging
import os
import pickle
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

from portal.cache import redis_client

EPOCH_KEY = "identity:epoch"  # the key (raw bytes, not a cache pickle) and the channel its changes go to
MAX_ENTRIES = 10_000
PING_EVERY = 0.1  # seconds between the listener's PINGs
STALE_AFTER = 0.5  # the listener's epoch is used until this long after its last answered PING was sent
RECONNECT_AFTER = 0.2  # seconds between the listener's attempts to reach Redis again

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
    if settings.STRATUS_EPOCH_LISTENER:
        _ensure_listener()


def _request_finished(**kwargs: Any) -> None:  # noqa: ARG001
    _request.active, _request.epoch = False, None


def current_epoch() -> str | None:
    """The identity epoch (read once per request): the listener's while it is fresh, else from Redis;
    None when Redis cannot be read (then nothing is cached)."""
    active = getattr(_request, "active", False)
    if active and _request.epoch is not None:
        return _request.epoch
    epoch = listened_epoch()
    if epoch is None:
        epoch = _read_epoch()
    if active:
        _request.epoch = epoch
    return epoch


def _key() -> str:
    return cache.make_and_validate_key(EPOCH_KEY)


def _read_epoch_from(client: Any) -> str:
    key = _key()
    value = client.get(key)
    if value is None:  # first use, or Redis lost it: a new value, never one seen before
        client.set(key, secrets.token_hex(8), nx=True)
        value = client.get(key)
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def _read_epoch() -> str | None:
    try:
        return _read_epoch_from(redis_client())
    except Exception:
        log.warning("identity epoch unreadable: token validations are not cached", exc_info=True)
        return None


def publish_epoch(epoch: str) -> None:
    """Set the epoch and tell every listener, in one MULTI/EXEC: a listener never misses a change that
    is in Redis (every writer of the key goes through here)."""
    key = _key()
    pipe = redis_client().pipeline(transaction=True)
    pipe.set(key, epoch)
    pipe.publish(key, epoch)
    pipe.execute()


def _set_new_epoch() -> None:
    epoch = secrets.token_hex(8)
    try:
        publish_epoch(epoch)
    except Exception:
        # Workers cannot read the epoch either while Redis is down, so they do not use their caches.
        log.error("identity epoch not changed (Redis unreachable)", exc_info=True)
    _request.epoch = None
    _adopt_local(epoch)  # this process uses the new epoch at once, before its message comes back
    with _lock:  # and drops its own entries at once whatever Redis said
        _validated.clear()
        _catalogs.clear()


# What this process's listener knows: (epoch, used until (time.monotonic()), generation). Replaced
# whole under _known_lock, read without it. The generation counts this process's own changes, so that
# the listener never puts back a value it read before one of them.
_known_lock = threading.Lock()
_known: tuple[str | None, float, int] = (None, 0.0, 0)
_listener: _EpochListener | None = None
_listener_lock = threading.Lock()


def listened_epoch() -> str | None:
    """The listener's epoch while it is fresh (see the module's docstring), else None."""
    epoch, fresh_until, _ = _known
    if epoch is not None and time.monotonic() < fresh_until:
        return epoch
    return None


def _adopt_local(epoch: str) -> None:
    global _known
    with _known_lock:
        _known = (epoch, _known[1], _known[2] + 1)


def _adopt_read(epoch: str, generation: int, fresh_until: float) -> bool:
    """The listener read ``epoch`` (asked at fresh_until - STALE_AFTER): taken unless this process
    changed the epoch since it looked at ``generation`` (then it reads again)."""
    global _known
    with _known_lock:
        if _known[2] != generation:
            return False
        _known = (epoch, max(fresh_until, _known[1]) if _known[0] == epoch else fresh_until, generation)
        return True


def _refresh(fresh_until: float) -> None:
    global _known
    with _known_lock:
        if _known[0] is not None and fresh_until > _known[1]:
            _known = (_known[0], fresh_until, _known[2])


def _forget() -> None:
    global _known
    with _known_lock:
        _known = (None, 0.0, _known[2])


def _redis_location() -> str:
    location = settings.CACHES["default"]["LOCATION"]
    if isinstance(location, (list, tuple)):
        location = location[0]
    return str(location).split(",")[0]  # the server the cache writes to (Django's first)


class _EpochListener(threading.Thread):
    """This process's subscriber to the epoch's channel (see the module's docstring)."""

    def __init__(self) -> None:
        super().__init__(name="identity-epoch-listener", daemon=True)
        self.pid = os.getpid()
        self.stopping = threading.Event()
        self.subscriptions = 0  # how many times it (re)subscribed and read the epoch

    def run(self) -> None:
        failing = False
        while not self.stopping.is_set():
            try:
                self._listen()
            except Exception:
                # not fresh from now on: requests read the epoch themselves until it is back
                if not failing:
                    log.warning("identity epoch listener lost Redis; reconnecting", exc_info=True)
                failing = True
            finally:
                _forget()
            self.stopping.wait(RECONNECT_AFTER)

    def _listen(self) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # its own connections, never retried behind its back: a reconnection must be seen, to read again
        client = redis.Redis.from_url(_redis_location(), client_name=f"stratus-epoch-listener-{self.pid}",
                                      socket_connect_timeout=2, socket_timeout=2, retry=Retry(NoBackoff(), 0),
                                      protocol=2)
        pubsub = client.pubsub()
        try:
            pubsub.subscribe(_key())
            pings: deque[tuple[int, float]] = deque(maxlen=64)
            sequence, next_ping = 0, 0.0
            while not self.stopping.is_set():
                now = time.monotonic()
                if now >= next_ping:
                    sequence += 1
                    pings.append((sequence, now))
                    pubsub.ping(str(sequence))
                    next_ping = now + PING_EVERY
                message = pubsub.get_message(timeout=max(0.0, next_ping - time.monotonic()))
                if message is None:
                    continue
                kind = message["type"]
                if kind in ("subscribe", "message"):
                    # (re)subscribed, or a change: read the key itself (a message's value may be older)
                    while True:
                        generation, asked = _known[2], time.monotonic()
                        if _adopt_read(_read_epoch_from(client), generation, asked + STALE_AFTER):
                            break
                    if kind == "subscribe":
                        self.subscriptions += 1
                elif kind == "pong":
                    answered = int(message["data"] or 0)
                    while pings and pings[0][0] < answered:
                        pings.popleft()
                    if pings and pings[0][0] == answered:
                        _refresh(pings.popleft()[1] + STALE_AFTER)
        finally:
            pubsub.close()
            client.close()


def _ensure_listener() -> _EpochListener:
    """This process's listener, started when there is none (or it died, or this is a forked child)."""
    global _listener
    listener = _listener
    if listener is not None and listener.pid == os.getpid() and listener.is_alive():
        return listener
    with _listener_lock:
        listener = _listener
        if listener is None or listener.pid != os.getpid() or not listener.is_alive():
            listener = _listener = _EpochListener()
            listener.start()
        return listener


# A forked child (a Celery prefork worker) has no listener: it must not use what its parent's knew.
os.register_at_fork(after_in_child=_forget)


def stop_listener() -> None:
    """Stop this process's listener (tests); the next request starts another."""
    global _listener
    with _listener_lock:
        listener, _listener = _listener, None
    if listener is not None and listener.pid == os.getpid():
        listener.stopping.set()
        listener.join(5)
    _forget()


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
