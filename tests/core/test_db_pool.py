"""The PostgreSQL connection pool of each process (portal/db/base.py): a request's thread hands its
connection back when Django closes it, the next thread takes the same one; a connection the server
killed, or one left inside a transaction, never reaches the next request as it was."""
from __future__ import annotations

import threading
import time

import psycopg2
import pytest
from django.db import connection, connections

from portal.db.base import ConnectionPool

pytestmark = pytest.mark.django_db(transaction=True)


def _in_thread(fn):  # type: ignore[no-untyped-def]
    """Run ``fn`` in a new thread (its own Django connection, as each ASGI request has), then close it."""
    out: list = []

    def run() -> None:
        try:
            out.append(fn())
        except Exception as error:  # noqa: BLE001 - raised again in the test's thread
            out.append(error)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if isinstance(out[0], Exception):
        raise out[0]
    return out[0]


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_threads_one_after_another_reuse_one_connection() -> None:
    assert type(connections["default"]).__module__ == "portal.db.base"
    first = _in_thread(_backend_pid)
    assert _in_thread(_backend_pid) == first
    assert _in_thread(_backend_pid) == first


def test_a_connection_the_server_killed_is_replaced() -> None:
    first = _in_thread(_backend_pid)
    admin = psycopg2.connect(**connection.get_connection_params())
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [first])
        for _ in range(100):  # the backend exits (and closes its socket) a moment later
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [first])
            if cursor.fetchone()[0] == 0:
                break
            time.sleep(0.05)
    admin.close()
    second = _in_thread(_backend_pid)  # no error: the dead one was dropped when taken
    assert second != first


def test_an_open_transaction_is_rolled_back_before_reuse() -> None:
    params = connection.get_connection_params()
    pool = ConnectionPool(size=2, max_age=600)
    conn = pool.take(params)
    cursor = conn.cursor()
    cursor.execute("CREATE TEMP TABLE leftover (x int)")  # autocommit off: inside a transaction
    cursor.execute("INSERT INTO leftover VALUES (1)")
    pool.give_back(conn)
    assert pool.idle_count() == 1
    again = pool.take(params)
    assert again is conn and again.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_IDLE
    with again.cursor() as cursor:
        cursor.execute("SELECT to_regclass('pg_temp.leftover')")
        assert cursor.fetchone()[0] is None  # rolled back: the table never existed
    pool.give_back(again)
    pool.close_all()
    assert again.closed


def test_the_pool_keeps_at_most_its_size_idle() -> None:
    params = connection.get_connection_params()
    pool = ConnectionPool(size=1, max_age=600)
    a, b = pool.take(params), pool.take(params)
    pool.give_back(a)
    pool.give_back(b)
    assert pool.idle_count() == 1 and b.closed and not a.closed
    pool.close_all()


def test_a_steady_load_keeps_its_connections_open() -> None:
    """As many connections in flight as a load holds at once are kept between its requests: with the
    configured size, 10 at a time (c=20 on 2 workers), handed back and taken again, are the same 10
    connections, none new (with 4 idle slots, 6 of each 10 were closed and opened again)."""
    params = connection.get_connection_params()
    configured = connection._pool()
    assert configured is not None
    pool = ConnectionPool(size=configured.size, max_age=600)
    first = [pool.take(params) for _ in range(10)]
    for conn in first:
        pool.give_back(conn)
    again = [pool.take(params) for _ in range(10)]
    assert {id(c) for c in again} == {id(c) for c in first} and not any(c.closed for c in again)
    for conn in again:
        pool.give_back(conn)
    pool.close_all()


def test_connections_unused_for_the_idle_timeout_are_closed() -> None:
    """The load went down: the connections it no longer takes are closed after ``idle_timeout``, the one
    still in use stays open."""
    params = connection.get_connection_params()
    pool = ConnectionPool(size=16, max_age=600, idle_timeout=0.3)
    conns = [pool.take(params) for _ in range(5)]
    for conn in conns:
        pool.give_back(conn)
    assert pool.idle_count() == 5
    deadline = time.monotonic() + 0.6
    while time.monotonic() < deadline:  # one request at a time: always the top of the stack
        pool.give_back(pool.take(params))
        time.sleep(0.02)
    assert pool.idle_count() == 1
    assert sum(c.closed for c in conns) == 4 and not conns[-1].closed
    pool.close_all()


def test_an_idle_process_closes_its_unused_connections() -> None:
    """No request comes any more: the pool's reaper closes what stayed idle past ``idle_timeout``."""
    params = connection.get_connection_params()
    pool = ConnectionPool(size=16, max_age=600, idle_timeout=0.2)
    conns = [pool.take(params) for _ in range(3)]
    for conn in conns:
        pool.give_back(conn)
    assert pool.idle_count() == 3
    deadline = time.monotonic() + 2
    while pool.idle_count() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert pool.idle_count() == 0 and all(c.closed for c in conns)
