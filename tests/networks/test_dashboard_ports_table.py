"""The port table (a live table, apps/dashboard/tables.py) with 250 ports: sorted by name and by MAC
address, both ways, and paged through to the end and back, every page costs the same number of
queries whatever the number of ports, and the pages together are every port once, in order."""
from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.identity import services as identity_services
from apps.networks import services
from apps.networks.models import Port
from tests.api_client import SeededCloud
from tests.networks.test_dashboard import D, Setup

pytestmark = pytest.mark.django_db


def _page(client, url: str) -> tuple[list[str], str | None, str | None, int]:  # type: ignore[no-untyped-def]
    """A page's port names, its next and previous links, and the queries it cost."""
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    names = re.findall(r'<tr data-id="[^"]+" data-name="([^"]*)"', html)
    links = {kind: href.replace("&amp;", "&")
             for href, kind in re.findall(r'href="([^"]+)" data-table-nav data-page="(\w+)"', html)}
    return names, links.get("next"), links.get("previous"), len(ctx.captured_queries)


def _walk(client, url: str) -> tuple[list[str], set[int]]:  # type: ignore[no-untyped-def]
    """Every page from ``url`` on through the next links: the names in order and the query counts."""
    names, counts = [], set()
    while url:
        page, url, _previous, queries = _page(client, url)
        names += page
        counts.add(queries)
    return names, counts


def test_250_ports_sort_and_page_with_constant_queries(cloud: SeededCloud) -> None:
    env = Setup(cloud)
    identity_services.quota_set(actor=env.admin, project_id=env.demo_project.id, limits={"port": 1000})
    network, _subnet = env.network(env.demo, "many", "10.60.0.0/16")
    demo = env.client("demo")

    def grow(count: int) -> None:
        start = Port.objects.filter(network=network, name__startswith="port-").count()
        for i in range(start, start + count):
            services.port_create(actor=env.demo, network_id=network.id, name=f"port-{(i * 7919) % 1000:03d}-{i}")

    grow(30)
    demo.get(f"{D}/ports/")  # warm up (the session)
    first_small = _page(demo, f"{D}/ports/?sort=name&dir=asc")[3]
    names, small = _walk(demo, _page(demo, f"{D}/ports/?sort=name&dir=asc")[1])
    grow(220)
    assert Port.objects.filter(project_id=env.demo_project.id, name__startswith="port-").count() == 250

    first, next_url, previous, first_large = _page(demo, f"{D}/ports/?sort=name&dir=asc")
    assert first_large == first_small and previous is None and len(first) == 25
    rest, large = _walk(demo, next_url)
    every = sorted(Port.objects.filter(project_id=env.demo_project.id).values_list("name", flat=True))
    assert first + rest == every and len(every) == 251  # and the network's DHCP port: every port once, in order
    assert len(large) == 1 and large == small, (small, large)  # page 2..10: one count, as with 30 ports

    # backwards from the last page, by the previous links, to the first
    last = f"{D}/ports/?sort=name&dir=asc&marker={Port.objects.get(name=every[-26]).id}"
    names, _next, previous, _queries = _page(demo, last)
    assert names == every[-25:]
    back: list[str] = []
    counts = set()
    while previous:
        page, _next, previous, queries = _page(demo, previous)
        back = page + back
        counts.add(queries)
    assert back + names == every and counts == large

    # by MAC address, descending; the filter narrows through the same selector
    by_mac, counts = _walk(demo, f"{D}/ports/?sort=mac_address&dir=desc")
    macs = dict(Port.objects.values_list("name", "mac_address"))
    assert [macs[n] for n in by_mac] == sorted(macs.values(), reverse=True) and len(by_mac) == len(every)
    filtered = _page(demo, f"{D}/ports/?q=port-00")[0]
    assert filtered and all(n.startswith("port-00") for n in filtered)
