"""Django's Redis cache with one client (and so one connection pool) per process.

Django's cache handler is context-local: under ASGI each request gets a new ``RedisCache`` object,
which built a new redis-py connection pool and opened a new connection (~8 ms here, docs/performance.md)
for the first cache call of every request. This backend shares the client between them; redis-py's
pool is thread-safe.
"""
from __future__ import annotations

import os
import threading
from typing import Any

from django.core.cache.backends.redis import RedisCache

_clients: dict[tuple[int, str, str], Any] = {}
_lock = threading.Lock()


class SharedRedisCache(RedisCache):
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
