"""The Ports panel's live table with 250 ports, in real Chromium on a live cloud (which runs with
STRATUS_SERVER_TIMING=1, so that every response says how many SQL queries it made): demo sorts by name
(ascending, then descending) and pages through to the last page with Next and back with Previous. The
rows are in order, every port is seen exactly once each way, the page is never reloaded (the table
fetches its part, ?partial=1), and those fetches made the same number of queries whatever the page and
the order (the server's count, read from the Server-Timing header of each response): one number for the
first pages, one for all the others, which first read their marker's row (here 14 and 15)."""
from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from playwright.sync_api import Page, Response, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.browser.conftest import signed_in

pytestmark = pytest.mark.browser

COUNT = 250
PER_PAGE = 25
ROWS_ARE = """([selector, names]) => {
  const got = Array.from(document.querySelectorAll(selector), (row) => row.dataset.name);
  return got.length === names.length && got.every((name, i) => name === names[i]);
}"""
QUERIES = re.compile(r'\bdb;desc="(\d+) quer(?:y|ies)"')


def _queries(response: Response) -> int:
    timing = response.headers.get("server-timing", "")
    match = QUERIES.search(timing)
    assert match, f"no query count in {response.url}'s Server-Timing: {timing!r}"
    return int(match.group(1))


def test_250_ports_sort_and_page_with_constant_queries(live_cloud: Any, new_page: Callable[[], Page]) -> None:
    tag = secrets.token_hex(3)
    admin = live_cloud.sdk()
    admin.set_network_quotas("demo", port=COUNT + 50)
    conn = live_cloud.sdk(user="demo", project="demo")
    network = conn.network.create_network(name=f"net-{tag}")
    conn.network.create_subnet(network_id=network.id, cidr="10.63.0.0/22", ip_version=4, name=f"sub-{tag}")
    # created in an order that is not the names' order (a stride through 0..999)
    names = [f"pt-{tag}-{(i * 7919) % 1000:03d}-{i:03d}" for i in range(COUNT)]
    ports = []
    try:
        for start in range(0, COUNT, 50):  # Neutron's bulk create, 50 ports a request
            ports += list(conn.network.create_ports(
                [{"network_id": network.id, "name": name} for name in names[start:start + 50]]))
        assert sorted(p.name for p in ports) == sorted(names)
        ascending = sorted(names)

        page = signed_in(new_page(), live_cloud, "demo", live_cloud.demo_password)
        parts: list[tuple[str, int]] = []  # (url, queries) of every table part fetched
        page.on("response", lambda r: parts.append((r.url, _queries(r)))
                if "/dashboard/networks/ports/" in r.url and "partial=1" in r.url else None)
        first = page.goto(f"{live_cloud.url}/dashboard/networks/ports/?q=pt-{tag}&sort=mac_address")
        assert first is not None and first.ok
        navigation = _queries(first)
        expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live")
        page.evaluate("window.__notReloaded = true")
        rows = page.locator("#ports-table tbody tr[data-id]")
        name_header = page.locator('#ports-table th a[data-sort-key="name"]')
        next_link = page.locator('#ports-pager [data-page="next"]')
        previous_link = page.locator('#ports-pager [data-page="previous"]')

        def shown(expected: list[str]) -> list[str]:
            """The page's rows, waited for until they are ``expected`` (in that order)."""
            try:
                page.wait_for_function(ROWS_ARE, arg=["#ports-table tbody tr[data-id]", expected], timeout=10_000)
            except PlaywrightTimeoutError:
                got = rows.evaluate_all("rows => rows.map(r => r.dataset.name)")
                raise AssertionError(f"the rows are {got}, not {expected}") from None
            return list(expected)

        def walk(order: list[str]) -> None:
            """From the first page of ``order``: Next to the last page, then Previous back to the first."""
            pages = [order[i:i + PER_PAGE] for i in range(0, len(order), PER_PAGE)]
            seen = shown(pages[0])
            for expected in pages[1:]:
                next_link.click()
                seen += shown(expected)
            expect(next_link).to_have_count(0)
            assert seen == order and len(set(seen)) == COUNT  # every port once, in order
            for expected in reversed(pages[:-1]):
                previous_link.click()
                shown(expected)
            expect(previous_link).to_have_count(0)

        name_header.click()  # by name, ascending
        expect(page.locator("#ports-table")).to_have_attribute("data-dir", "asc")
        walk(ascending)
        name_header.click()  # descending
        expect(page.locator("#ports-table")).to_have_attribute("data-dir", "desc")
        walk(ascending[::-1])

        assert page.evaluate("window.__notReloaded === true")  # the table refreshed its part, never the page
        assert re.search(r"sort=name&dir=desc", page.url) and "partial" not in page.url
        # 2 sorts + 2 x (9 Next + 9 Previous), besides any resync of the first page when the socket connected
        assert len(parts) >= 38, parts
        # One count for every first page and one for every other page (those read their marker's row
        # first: one query more), whatever the page, the order and the number of ports.
        firsts = {queries for url, queries in parts if "marker=" not in url}
        others = {queries for url, queries in parts if "marker=" in url}
        assert len(firsts) == 1 and len(others) == 1, sorted(set(parts), key=lambda p: p[1])
        assert others.pop() - firsts.pop() in (0, 1) and navigation >= 1, parts
    finally:
        with ThreadPoolExecutor(4) as pool:  # Neutron has no bulk delete; the server overlaps a few
            list(pool.map(lambda port: conn.network.delete_port(port, ignore_missing=True), ports))
        conn.network.delete_network(network, ignore_missing=True)
        admin.delete_network_quotas("demo")
