"""The ``Server-Timing`` response header (W3C Server Timing): the request's SQL queries and their time,
``Server-Timing: db;desc="12 queries";dur=3.1`` (milliseconds), which browsers' devtools show with the
request's timing and a test driving a browser can read from the responses (tests/browser/test_ports_table.py).

Off by default (``settings.STRATUS_SERVER_TIMING``, env STRATUS_SERVER_TIMING=1): when off the middleware
raises ``MiddlewareNotUsed`` as Django builds its handler, so it is not in the chain at all and costs
nothing per request. When on (first in MIDDLEWARE, so the session's and the user's queries count too),
every query of the default connection made while the request is handled and its response rendered goes
through ``connection.execute_wrapper`` (counted and timed); queries made
later by a streaming response's iterator are not. Only a header: nothing is added to the body.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed
from django.db import connection
from django.http import HttpRequest, HttpResponseBase


class _QueryTimer:
    """An execute wrapper: counts the queries that pass through it and adds up their time."""

    __slots__ = ("count", "seconds")

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - start
            self.count += 1


def server_timing(count: int, seconds: float) -> str:
    """The header's value: ``db;desc="12 queries";dur=3.1``."""
    return f'db;desc="{count} {"query" if count == 1 else "queries"}";dur={seconds * 1000:.1f}'


class ServerTimingMiddleware:
    """Adds ``Server-Timing: db;...`` to every response when ``settings.STRATUS_SERVER_TIMING`` is on."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        if not settings.STRATUS_SERVER_TIMING:
            raise MiddlewareNotUsed
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        timer = _QueryTimer()
        with connection.execute_wrapper(timer):
            response = self.get_response(request)  # rendered by now (a TemplateResponse too)
        entry = server_timing(timer.count, timer.seconds)
        existing = response.get("Server-Timing")
        response["Server-Timing"] = f"{existing}, {entry}" if existing else entry
        return response
