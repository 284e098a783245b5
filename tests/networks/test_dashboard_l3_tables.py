"""The Routers, Floating IPs and Security groups panels are live tables (apps/dashboard/tables.py):
sorted and paged through the Neutron selectors at a constant number of queries, filtered, and a bulk
action answers each row's outcome as JSON."""
from __future__ import annotations

import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.identity import services as identity_services
from apps.networks import services
from apps.networks.models import FloatingIP, Router, SecurityGroup
from tests.api_client import SeededCloud
from tests.networks.test_dashboard import D, Setup

pytestmark = pytest.mark.django_db


def _page(client, url: str, attr: str = "name") -> tuple[list[str], str | None, int]:  # type: ignore[no-untyped-def]
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    names = re.findall(rf'<tr data-id="[^"]+" data-{attr}="([^"]*)"', html)
    links = {kind: href.replace("&amp;", "&")
             for href, kind in re.findall(r'href="([^"]+)" data-table-nav data-page="(\w+)"', html)}
    return names, links.get("next"), len(ctx.captured_queries)


def _walk(client, url: str, attr: str = "name") -> tuple[list[str], set[int]]:  # type: ignore[no-untyped-def]
    names, counts = [], set()
    first = True
    while url:
        page, url, queries = _page(client, url, attr)
        names += page
        if not first:
            counts.add(queries)
        first = False
    return names, counts


def _bulk(client, url: str, action: str, ids: list[str]) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    answer = client.post(url, {"action": action, "ids": ids}, HTTP_ACCEPT="application/json")
    assert answer.status_code == 200
    return {r["id"]: r for r in json.loads(answer.content)["results"]}


def test_routers_table(cloud: SeededCloud) -> None:
    env = Setup(cloud)
    identity_services.quota_set(actor=env.admin, project_id=env.demo_project.id, limits={"router": 100})
    for i in range(60):
        services.router_create(actor=env.demo, name=f"r-{(i * 37) % 60:02d}")
    demo = env.client("demo")
    names, counts = _walk(demo, f"{D}/routers/?sort=name&dir=desc")
    assert names == sorted((f"r-{i:02d}" for i in range(60)), reverse=True)
    assert len(counts) == 1  # pages 2 and 3 cost the same
    assert _page(demo, f"{D}/routers/?q=r-5")[0] == [f"r-5{i}" for i in range(10)]
    gone, other = Router.objects.get(name="r-00"), services.router_create(actor=env.other, name="olga-r")
    results = _bulk(demo, f"{D}/routers/act", "delete", [gone.id, other.id])
    assert results[gone.id]["ok"] and results[gone.id]["message"] == "Deleted router r-00."
    assert not results[other.id]["ok"] and Router.objects.filter(pk=other.id).exists()
    assert not Router.objects.filter(pk=gone.id).exists()
    html = demo.get(f"{D}/routers/").content.decode()
    assert 'data-confirm="Delete router r-01?"' in html


def test_floatingips_table(cloud: SeededCloud) -> None:
    env = Setup(cloud)
    identity_services.quota_set(actor=env.admin, project_id=env.demo_project.id, limits={"floatingip": 100})
    fips = [services.floatingip_create(actor=env.demo, floating_network_id=env.public.id) for _ in range(30)]
    demo = env.client("demo")
    addresses, counts = _walk(demo, f"{D}/floating-ips/?sort=floating_ip_address&dir=asc")
    assert addresses == sorted(f.floating_ip_address for f in fips) and len(counts) == 1
    some = fips[3].floating_ip_address
    assert _page(demo, f"{D}/floating-ips/?q={some}")[0] == [some]
    other = services.floatingip_create(actor=env.other, floating_network_id=env.public.id)
    results = _bulk(demo, f"{D}/floating-ips/act", "release", [fips[0].id, other.id])
    assert results[fips[0].id] == {"id": fips[0].id, "ok": True,
                                   "message": f"Released floating IP {fips[0].floating_ip_address}."}
    assert not results[other.id]["ok"]
    assert not FloatingIP.objects.filter(pk=fips[0].id).exists() and FloatingIP.objects.filter(pk=other.id).exists()
    html = demo.get(f"{D}/floating-ips/?q={some}").content.decode()
    assert f'data-confirm="Release {some}?"' in html and "Associate</a>" in html


def test_security_groups_table(cloud: SeededCloud) -> None:
    env = Setup(cloud)
    identity_services.quota_set(actor=env.admin, project_id=env.demo_project.id, limits={"security_group": 100})
    for i in range(40):
        services.security_group_create(actor=env.demo, name=f"sg-{(i * 17) % 40:02d}")
    demo = env.client("demo")
    names, counts = _walk(demo, f"{D}/security-groups/?sort=name&dir=asc")
    assert names == ["default"] + [f"sg-{i:02d}" for i in range(40)] and len(counts) == 1
    assert _page(demo, f"{D}/security-groups/?q=sg-3")[0] == [f"sg-3{i}" for i in range(10)]
    gone = SecurityGroup.objects.get(name="sg-00", project_id=env.demo_project.id)
    default = SecurityGroup.objects.get(is_default=True, project_id=env.demo_project.id)
    results = _bulk(demo, f"{D}/security-groups/act", "delete", [gone.id, default.id])
    assert results[gone.id] == {"id": gone.id, "ok": True, "message": "Deleted security group sg-00."}
    assert not results[default.id]["ok"] and SecurityGroup.objects.filter(pk=default.id).exists()
    html = demo.get(f"{D}/security-groups/?q=sg-01").content.decode()
    assert 'data-confirm="Delete security group sg-01?"' in html
    listing = demo.get(f"{D}/security-groups/?q=default").content.decode()
    assert "Manage rules" in listing and 'data-action="delete"' not in listing  # the default group stays
