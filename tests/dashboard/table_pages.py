"""Reading a live table (apps/dashboard/tables.py) through the Django test client: a page's rows
(their ``data-id`` and ``data-name``), its pager's links and the queries it cost; every page of a
list from one address on, through the "Next" links."""
from __future__ import annotations

import html
import re
from dataclasses import dataclass

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext


@dataclass
class TablePage:
    ids: list[str]
    names: list[str]
    next: str | None
    previous: str | None
    queries: int
    html: str


def table_page(client: Client, url: str) -> TablePage:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    body = response.content.decode()
    rows = [(html.unescape(i), html.unescape(n))
            for i, n in re.findall(r'<tr data-id="([^"]*)" data-name="([^"]*)"', body)]
    links = {kind: html.unescape(href)
             for href, kind in re.findall(r'href="([^"]+)" data-table-nav data-page="(\w+)"', body)}
    return TablePage(ids=[i for i, _ in rows], names=[n for _, n in rows], next=links.get("next"),
                     previous=links.get("previous"), queries=len(ctx.captured_queries), html=body)


def walk(client: Client, url: str | None) -> tuple[list[TablePage], set[int]]:
    """Every page from ``url`` on (through the next links) and the query counts of those read after a
    marker (a first page reads no marker row: one query less)."""
    pages: list[TablePage] = []
    counts: set[int] = set()
    while url:
        page = table_page(client, url)
        pages.append(page)
        if "marker=" in url:
            counts.add(page.queries)
        url = page.next
    return pages, counts


def walk_back(client: Client, url: str | None) -> list[TablePage]:
    """Every page before ``url`` (through the previous links), first page first."""
    pages: list[TablePage] = []
    while url:
        page = table_page(client, url)
        pages.insert(0, page)
        url = page.previous
    return pages
