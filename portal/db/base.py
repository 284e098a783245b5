"""PostgreSQL through psycopg2, with the connections of each process kept in a pool.

Under ASGI Django runs each request's sync code in a thread of its own (a new ThreadSensitiveContext
per request), so ``CONN_MAX_AGE`` cannot keep a connection for the next request: the thread it belongs
to is gone. Without a pool every request paid a new PostgreSQL connection (a backend fork on the server,
~10 ms here; docs/performance.md). Django's own pool needs psycopg 3; the design card fixes psycopg2, so
this backend keeps Django's behaviour (``CONN_MAX_AGE = 0``: the connection is "closed" at the end of each
request) and makes that close hand the connection back to a pool of this process, from which the next
request of any thread takes it, as pgbouncer would in session mode, without the extra hop.

A connection goes back to the pool only when it is idle (a transaction left open is rolled back first,
a broken one is really closed); one taken from the pool is checked without a round trip (an idle
connection has nothing to read: readable means the server closed it or sent something unexpected, and
it is dropped). At most ``OPTIONS["stratus_pool_size"]`` idle connections are kept per database (default
16; more may be open at once under load, the extra ones are closed when handed back), none older than
``OPTIONS["stratus_pool_max_age"]`` seconds (default 600), and none left unused longer than
``OPTIONS["stratus_pool_idle"]`` seconds (default 10; closed at the process's next take or give-back).
The pool does not limit how many are open at once (every request in flight holds one); it keeps those a
steady load uses open, so a load of more requests in flight than idle slots does not connect and close
one for every request (with 4 idle slots, 2 workers at c=20 opened a new connection for 22 % of their
requests: docs/performance.md). Taken last-in first-out, the connections a lighter load no longer needs
sit at the bottom and are closed once idle for ``stratus_pool_idle`` (by the next take or give-back, or by
the pool's reaper thread when the process gets no more requests). ``OPTIONS["stratus_pool"] = False``
turns the pool off (the names are not Django's "pool", which is psycopg 3's pool).
"""
from __future__ import annotations

import os
import select
import threading
import time
from typing import Any

import psycopg2
import psycopg2.extensions
import psycopg2.extras
from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.postgresql import base as postgresql
from django.db.backends.postgresql.creation import DatabaseCreation as PostgresCreation

POOL_OPTIONS = ("stratus_pool", "stratus_pool_size", "stratus_pool_max_age", "stratus_pool_idle")


class ConnectionPool:
    """Idle psycopg2 connections to one database, for the threads of one process."""

    def __init__(self, *, size: int, max_age: float, idle_timeout: float = 10.0) -> None:
        self.size = size
        self.max_age = max_age
        self.idle_timeout = idle_timeout
        # (connection, opened at, handed back at), the most recently handed back last
        self._idle: list[tuple[Any, float, float]] = []
        self._born: dict[int, float] = {}
        self._lock = threading.Lock()
        self._reaper: threading.Thread | None = None

    def take(self, params: dict[str, Any]) -> Any:
        """An open idle connection, else a new one."""
        now = time.monotonic()
        self._close_unused(now)
        while True:
            with self._lock:
                if not self._idle:
                    break
                conn, born, _ = self._idle.pop()
            if now - born < self.max_age and _usable(conn):
                return conn
            self._discard(conn)
        conn = psycopg2.connect(**params)
        with self._lock:
            self._born[id(conn)] = now
        return conn

    def give_back(self, conn: Any) -> None:
        """Return ``conn`` to the pool when it is idle and there is room, else close it."""
        born = self._born.get(id(conn), 0.0)
        if conn.closed or time.monotonic() - born >= self.max_age:
            self._discard(conn)
            return
        try:
            status = conn.info.transaction_status
            if status in (psycopg2.extensions.TRANSACTION_STATUS_INTRANS,
                          psycopg2.extensions.TRANSACTION_STATUS_INERROR):
                conn.rollback()
                status = conn.info.transaction_status
            if status != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
                raise psycopg2.InterfaceError("connection not idle")
            conn.autocommit = True
        except psycopg2.Error:
            self._discard(conn)
            return
        now = time.monotonic()
        with self._lock:
            if len(self._idle) < self.size:
                self._idle.append((conn, born, now))
                conn = None
        if conn is not None:
            self._discard(conn)
        self._close_unused(now)
        if self._reaper is None:
            self._start_reaper()

    def _start_reaper(self) -> None:
        """A daemon thread that closes unused idle connections of a process that gets no requests."""
        with self._lock:
            if self._reaper is not None:
                return
            self._reaper = threading.Thread(target=self._reap, name="stratus-db-pool-reaper", daemon=True)
        self._reaper.start()

    def _reap(self) -> None:
        while True:
            time.sleep(max(self.idle_timeout / 2, 0.05))
            self._close_unused(time.monotonic())

    def _close_unused(self, now: float) -> None:
        """Close the idle connections handed back more than ``idle_timeout`` ago (the bottom of the
        stack: what the load of the last ``idle_timeout`` seconds did not need)."""
        with self._lock:
            if not self._idle or now - self._idle[0][2] < self.idle_timeout:
                return
            unused = [entry[0] for entry in self._idle if now - entry[2] >= self.idle_timeout]
            self._idle = [entry for entry in self._idle if now - entry[2] < self.idle_timeout]
        for conn in unused:
            self._discard(conn)

    def close_all(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn, _, _ in idle:
            self._discard(conn)

    def idle_count(self) -> int:
        with self._lock:
            return len(self._idle)

    def _discard(self, conn: Any) -> None:
        with self._lock:
            self._born.pop(id(conn), None)
        try:
            conn.close()
        except psycopg2.Error:
            pass


def _usable(conn: Any) -> bool:
    """Open and silent: an idle connection the server closed (restart, pg_terminate_backend, timeout)
    has its end of file waiting to be read."""
    if conn.closed:
        return False
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError, psycopg2.Error):
        return False
    return not readable


_pools: dict[tuple[int, str], ConnectionPool] = {}
_pools_lock = threading.Lock()


def pool_for(params: dict[str, Any], *, size: int, max_age: float, idle_timeout: float = 10.0) -> ConnectionPool:
    """This process's pool for the database ``params`` connect to (a forked child gets its own)."""
    key = (os.getpid(), repr(sorted((k, repr(v)) for k, v in params.items())))
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = ConnectionPool(size=size, max_age=max_age, idle_timeout=idle_timeout)
        return pool


def close_pools() -> None:
    """Close every idle connection of this process's pools (before a database is dropped)."""
    with _pools_lock:
        pools = [pool for (pid, _), pool in _pools.items() if pid == os.getpid()]
    for pool in pools:
        pool.close_all()


class DatabaseCreation(PostgresCreation):
    """The test database cannot be dropped (nor made again) while the pool holds connections to it."""

    def _execute_create_test_db(self, cursor: Any, parameters: dict[str, Any], keepdb: bool = False) -> None:
        close_pools()
        super()._execute_create_test_db(cursor, parameters, keepdb)

    def _destroy_test_db(self, test_database_name: str, verbosity: int) -> None:
        close_pools()
        super()._destroy_test_db(test_database_name, verbosity)


class DatabaseWrapper(postgresql.DatabaseWrapper):
    creation_class = DatabaseCreation

    def _pool(self) -> ConnectionPool | None:
        options = self.settings_dict["OPTIONS"]
        if self.alias == NO_DB_ALIAS or not options.get("stratus_pool", True):
            return None
        return pool_for(self.get_connection_params(), size=int(options.get("stratus_pool_size", 16)),
                        max_age=float(options.get("stratus_pool_max_age", 600)),
                        idle_timeout=float(options.get("stratus_pool_idle", 10)))

    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        for name in POOL_OPTIONS:
            params.pop(name, None)
        return params

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        pool = self._pool()
        if pool is None:
            return super().get_new_connection(conn_params)
        connection = pool.take(conn_params)
        # what Django's get_new_connection does to a new psycopg2 connection
        isolation = self.settings_dict["OPTIONS"].get("isolation_level")
        self.isolation_level = postgresql.IsolationLevel(isolation) if isolation is not None \
            else postgresql.IsolationLevel.READ_COMMITTED
        if isolation is not None:
            connection.isolation_level = self.isolation_level
        psycopg2.extras.register_default_jsonb(conn_or_curs=connection, loads=lambda x: x)
        return connection

    def _close(self) -> None:
        pool = self._pool() if self.connection is not None else None
        if pool is None or self.in_atomic_block:
            # closed inside a transaction: Django keeps the object to raise on its next use, so it
            # must not be handed to another thread
            return super()._close()
        with self.wrap_database_errors:
            pool.give_back(self.connection)
        return None
