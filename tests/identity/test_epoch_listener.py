"""The identity epoch's listener (apps/identity/token_cache.py): a web worker keeps the epoch current from
Redis pub/sub instead of a GET per request, and never longer than the stated bound on a stale value:
a change is applied within a second, a reconnection reads the epoch again (a change made while it was
disconnected is not missed), and a stalled or dead listener stops being used within STALE_AFTER (the
worker reads the epoch from Redis per request again)."""
from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator

import pytest

from apps.identity import token_cache
from portal.cache import redis_client


def _until(check: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``check()`` held; fails the test after ``timeout``."""
    began = time.monotonic()
    while not check():
        assert time.monotonic() - began < timeout, f"not within {timeout} s"
        time.sleep(0.002)
    return time.monotonic() - began


@pytest.fixture
def listener() -> Iterator[token_cache._EpochListener]:
    token_cache.stop_listener()
    started = token_cache._ensure_listener()
    _until(lambda: token_cache.listened_epoch() is not None, 5)
    yield started
    token_cache.stop_listener()


def test_another_process_change_is_applied_within_a_second(listener: token_cache._EpochListener) -> None:
    before = token_cache.listened_epoch()
    new = secrets.token_hex(8)
    token_cache.publish_epoch(new)  # what another worker's epoch_bump does; this process's state untouched
    _until(lambda: token_cache.listened_epoch() == new, 1.0)
    assert before != new and token_cache.current_epoch() == new
    # and it stays fresh while nothing changes (its PINGs are answered): no GET per request (polled, not
    # read once: on a loaded machine the thread may be late for a PONG now and then)
    time.sleep(3 * token_cache.STALE_AFTER)
    _until(lambda: token_cache.listened_epoch() == new, 1.0)


def test_after_a_reconnection_the_epoch_is_read_again(listener: token_cache._EpochListener) -> None:
    """Its connection dropped and, before it is back, the epoch changed with no listener to tell (the
    message is lost): on reconnecting it reads the key, so the change is applied all the same."""
    subscriptions = listener.subscriptions
    client = redis_client()
    mine = [c["id"] for c in client.client_list() if c.get("name") == f"stratus-epoch-listener-{os.getpid()}"]
    assert mine
    missed = secrets.token_hex(8)
    pipe = client.pipeline(transaction=True)
    for client_id in mine:
        pipe.execute_command("CLIENT", "KILL", "ID", client_id)
    pipe.set(token_cache._key(), missed)  # no PUBLISH: only a read after the reconnection can see it
    pipe.execute()
    _until(lambda: token_cache.listened_epoch() == missed, 1.0)
    assert listener.subscriptions == subscriptions + 1


def test_a_stalled_listener_is_not_used_after_stale_after(listener: token_cache._EpochListener) -> None:
    """The listener cannot run (here: it waits for the lock its state is written under, as it would for
    the GIL or a dead socket): its epoch is not used once STALE_AFTER passed since its last answered PING,
    and the epoch is read from Redis again, so a change it never applied is seen all the same."""
    new = secrets.token_hex(8)
    with token_cache._known_lock:  # the listener stalls at its next message or PONG
        token_cache.publish_epoch(new)
        stale_for = _until(lambda: token_cache.listened_epoch() is None, token_cache.STALE_AFTER + 0.2)
        assert token_cache.current_epoch() == new  # read from Redis
    assert stale_for <= token_cache.STALE_AFTER + 0.2
    _until(lambda: token_cache.listened_epoch() == new, 1.0)  # running again, it catches up


def test_a_dead_listener_is_not_used_and_the_next_request_starts_another(
        listener: token_cache._EpochListener) -> None:
    listener.stopping.set()
    listener.join(5)
    assert not listener.is_alive()
    assert token_cache.listened_epoch() is None  # it forgot what it knew as it ended
    new = secrets.token_hex(8)
    token_cache.publish_epoch(new)
    assert token_cache.current_epoch() == new  # from Redis
    token_cache._request_started()
    try:
        assert token_cache._listener is not None and token_cache._listener is not listener
        _until(lambda: token_cache.listened_epoch() == new, 2.0)
    finally:
        token_cache._request_finished()


def test_this_process_change_is_used_at_once(listener: token_cache._EpochListener) -> None:
    """The process that changed identity does not wait for its own message: the new epoch is its own
    (a change of generation, not the listener's read) as soon as the change returns."""
    old, _, generation = token_cache._known
    token_cache._set_new_epoch()
    epoch, fresh_until, now_generation = token_cache._known
    assert epoch != old and now_generation == generation + 1 and time.monotonic() < fresh_until
    assert token_cache.current_epoch() == epoch == redis_client().get(token_cache._key()).decode()


def test_a_forked_child_does_not_use_its_parents_listener(listener: token_cache._EpochListener) -> None:
    assert token_cache.listened_epoch() is not None
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no listener thread of its own, so nothing it could trust
        os.write(write, b"none" if token_cache.listened_epoch() is None else b"used")
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 4) == b"none"
