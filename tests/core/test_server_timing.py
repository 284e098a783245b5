"""The Server-Timing header (apps/core/servertiming.py): with STRATUS_SERVER_TIMING on, every response
says how many SQL queries its request made and how long they took; off, no header, and the middleware
is not in the handler's chain."""
from __future__ import annotations

import re

import pytest
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import path

from apps.core.servertiming import ServerTimingMiddleware, server_timing

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


def three_queries(request: HttpRequest) -> HttpResponse:
    with connection.cursor() as cursor:
        for i in range(3):
            cursor.execute("SELECT %s", [i])
    return HttpResponse("three")


def no_query(request: HttpRequest) -> HttpResponse:
    return HttpResponse("none")


urlpatterns = [path("three", three_queries), path("none", no_query)]

def _in_chain(client: Client) -> bool:
    """Whether the client's handler has the middleware: each handler of the chain is wrapped by
    convert_exception_to_response (``__wrapped__``) and holds the next one as ``get_response``."""
    handler = client.handler._middleware_chain
    while handler is not None:
        handler = getattr(handler, "__wrapped__", handler)
        if isinstance(handler, ServerTimingMiddleware):
            return True
        handler = getattr(handler, "get_response", None)
    return False


HEADER = re.compile(r'^db;desc="(\d+) quer(?:y|ies)";dur=(\d+\.\d)$')


def test_on_the_header_counts_the_requests_queries(settings) -> None:  # type: ignore[no-untyped-def]
    settings.STRATUS_SERVER_TIMING = True
    client = Client()  # builds its handler (and so its middleware chain) on its first request
    response = client.get("/three")
    assert response.status_code == 200 and response.content == b"three"  # the body as it was
    match = HEADER.match(response["Server-Timing"])
    assert match and match.group(1) == "3" and float(match.group(2)) >= 0, response["Server-Timing"]
    assert client.get("/none")["Server-Timing"] == 'db;desc="0 queries";dur=0.0'
    assert client.get("/three")["Server-Timing"].startswith('db;desc="3 queries";')  # per request, not cumulative
    assert _in_chain(client)


def test_off_no_header_and_not_in_the_chain(settings) -> None:  # type: ignore[no-untyped-def]
    settings.STRATUS_SERVER_TIMING = False
    client = Client()
    response = client.get("/three")
    assert response.status_code == 200 and "Server-Timing" not in response
    assert not _in_chain(client)


def test_the_value() -> None:
    assert server_timing(12, 0.00312) == 'db;desc="12 queries";dur=3.1'
    assert server_timing(1, 0) == 'db;desc="1 query";dur=0.0'
