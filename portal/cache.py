"""Django's Redis cache with one client (and so one connection pool) per process.

Django's cache handler is context-local: under ASGI each request gets a new ``RedisCache`` object,
which built a new redis-py connection pool and opened a new connection (~8 ms here, docs/performance.md)
for the first cache call of every request. This backend shares the client between them; redis-py's
pool is thread-safe. It also keeps one ``redis.Redis`` per pool: Django's client built a new one for
every cache call (a few hundred dict writes each, ~0.5 ms on a loaded machine).
"""
from __future__ import annotations

import os
import threading
from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient

_clients: dict[tuple[int, str, str], Any] = {}
_lock = threading.Lock()


class _ReusedClient(RedisCacheClient):
    def __init__(self, servers: list[str], **options: Any) -> None:
        super().__init__(servers, **options)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:  # noqa: ARG002 - Django's signature
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class SharedRedisCache(RedisCache):
    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = _ReusedClient

    @property
    def _cache(self) -> Any:  # type: ignore[override]
        key = (os.getpid(), ",".join(self._servers), repr(sorted(self._options.items())))
        client = _clients.get(key)
        if client is None:
            with _lock:
                client = _clients.get(key)
                if client is None:
                    client = _clients[key] = self._class(self._servers, **self._options)
        return client


def redis_client() -> Any:
    """The default cache's ``redis.Redis`` (this process's shared pool), for what the cache API cannot
    say: a transaction (MULTI/EXEC), PUBLISH. Keys made with ``cache.make_and_validate_key`` share the
    cache's prefix; values written here are raw bytes, not the cache's pickles."""
    from django.core.cache import cache

    return cache._cache.get_client(write=True)  # type: ignore[attr-defined]
