"""The dashboard's telemetry pages through Django's test client: the Usage page (figures, charts' data
and CSV from usage_summary, the session project only; every project for an admin's scope=all), its
constant query count, and the instance graphs' JSON (another project's instance is a 404)."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import uuid
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.telemetry.services import lifecycle_apply
from apps.telemetry.services.lifecycle import Record
from tests.api_client import SeededCloud
from tests.dashboard.conftest import ADMIN_PW, DEMO_PW, signed_in

pytestmark = pytest.mark.django_db

DAY = dt.datetime(2026, 3, 10, tzinfo=dt.UTC)
PERIOD = "?start=2026-03-10&end=2026-03-10"


def _server(project_id: str, *, hours: float, vcpus: int, flavor: str, memory_mb: int = 512) -> str:
    """A server that ran ``hours`` from 02:00 on DAY, as compute's lifecycle records say."""
    rid = str(uuid.uuid4())
    attributes = {"flavor_id": flavor, "flavor_name": flavor, "host": "node-u", "display_name": f"vm-{rid[:6]}",
                  "image_ref": "", "vcpus": vcpus, "memory_mb": memory_mb, "root_gb": 1, "ephemeral_gb": 0}
    start = DAY + dt.timedelta(hours=2)
    lifecycle_apply(records=[
        Record(kind="instance", resource_id=rid, project_id=project_id, user_id="", attributes=attributes,
               event="create", at=start),
        Record(kind="instance", resource_id=rid, project_id=project_id, user_id="", attributes={},
               event="delete", at=start + dt.timedelta(hours=hours))])
    return rid


def _charts(body: str) -> dict[str, Any]:
    found = re.search(r'<script id="usage-charts" type="application/json">(.*?)</script>', body, re.S)
    assert found, body[:2000]
    return json.loads(found.group(1))


def _figures(body: str) -> dict[str, str]:
    block = body[body.index('id="usage-figures"'):body.index('id="usage-top"')]
    return dict(re.findall(r'<dd data-measure="(\w+)">([^<]*)</dd>', block))


def test_usage_page_figures_charts_and_csv(cloud: SeededCloud) -> None:
    demo, other = cloud.demo_project.id, cloud.other_project.id
    _server(demo, hours=3, vcpus=2, flavor="m1.small", memory_mb=2048)
    _server(demo, hours=1.5, vcpus=1, flavor="m1.tiny")
    _server(other, hours=10, vcpus=8, flavor="m1.xlarge")
    client = signed_in("demo", DEMO_PW)
    page = client.get(f"/dashboard/telemetry/usage/{PERIOD}")
    assert page.status_code == 200
    body = page.content.decode()
    figures = _figures(body)
    assert figures["instance_hours"] == "4.5000" and figures["vcpu_hours"] == "7.5000"
    assert figures["memory_mb_hours"] == f"{3 * 2048 + 1.5 * 512:.4f}" and figures["disk_gb_hours"] == "4.5000"
    charts = _charts(body)
    assert charts["flavors"]["labels"] == ["m1.small", "m1.tiny"]
    assert charts["flavors"]["lines"][0]["values"] == [3.0, 1.5]
    assert charts["compute"]["lines"][0]["values"] == [4.5, 7.5] and "projects" not in charts
    assert "m1.xlarge" not in body  # another project's server: not counted, not named
    # the CSV: the same figures, one row for the project
    download = client.get(f"/dashboard/telemetry/usage/{PERIOD}&format=csv")
    assert download["Content-Type"].startswith("text/csv")
    assert download["Content-Disposition"] == 'attachment; filename="usage-20260310-20260311.csv"'
    rows = list(csv.DictReader(io.StringIO(download.content.decode())))
    assert len(rows) == 1 and rows[0]["project_id"] == demo
    assert {key: rows[0][key] for key in figures} == figures
    assert rows[0]["period_start"] == "2026-03-10T00:00:00+00:00"
    # the admin's scope=all: every project, a total row in the CSV
    admin = signed_in("admin", ADMIN_PW)
    every = admin.get(f"/dashboard/telemetry/usage/{PERIOD}&scope=all").content.decode()
    assert _figures(every)["instance_hours"] == "14.5000"
    assert _charts(every)["projects"]["labels"] == sorted(
        [cloud.demo_project.name, cloud.other_project.name],
        key=lambda n: {cloud.demo_project.name: demo, cloud.other_project.name: other}[n])
    rows = list(csv.DictReader(io.StringIO(admin.get(f"/dashboard/telemetry/usage/{PERIOD}&scope=all&format=csv")
                                           .content.decode())))
    assert [r["project_name"] for r in rows][-1] == "(total)" and rows[-1]["vcpu_hours"] == "87.5000"
    # scope=all is ignored for a member: its own project still
    assert _figures(client.get(f"/dashboard/telemetry/usage/{PERIOD}&scope=all").content.decode()) == figures


def test_usage_page_bad_period_and_queries(cloud: SeededCloud) -> None:
    client = signed_in("demo", DEMO_PW)
    bad = client.get("/dashboard/telemetry/usage/?start=2026-03-10&end=2026-03-01")
    assert bad.status_code == 400 and "The period ends before it starts." in bad.content.decode()
    assert "usage-charts" not in bad.content.decode()
    client.get(f"/dashboard/telemetry/usage/{PERIOD}")  # warm the session

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(f"/dashboard/telemetry/usage/{PERIOD}").status_code == 200
        return len(queries)

    _server(cloud.demo_project.id, hours=1, vcpus=1, flavor="m1.tiny")
    one = count()
    for n in range(12):
        _server(cloud.demo_project.id, hours=1 + n, vcpus=1 + n % 3, flavor=f"f{n}")
    assert count() == one


def test_graphs_json_is_the_callers_instance_only(cloud: SeededCloud) -> None:
    from apps.compute.models import Instance

    uid = str(uuid.uuid4())
    Instance.objects.create(id=uid, project=cloud.other_project, user=cloud.demo_user, name="vm-theirs",
                            flavor_ref="1", vcpus=1, memory_mb=512, host="node-u")
    demo = signed_in("demo", DEMO_PW)
    assert demo.get(f"/dashboard/telemetry/instances/{uid}/graphs").status_code == 404
    admin = signed_in("admin", ADMIN_PW)
    shown = admin.get(f"/dashboard/telemetry/instances/{uid}/graphs?window=day").json()
    assert shown["window"] == "day" and set(shown["charts"]) == {"cpu", "memory", "disk", "network"}
    bad = admin.get(f"/dashboard/telemetry/instances/{uid}/graphs?window=year")
    assert bad.status_code == 400 and "Invalid window" in bad.json()["error"]
    assert demo.get("/dashboard/telemetry/admin/capacity/").status_code == 403
