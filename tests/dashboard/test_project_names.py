"""The admins' Project columns name the project and link to its page in Identity (issue 11, item 3), with one
query for the page's projects (apps/dashboard/tables.with_project_names): the same number of queries whatever
the rows and the projects they belong to; members have no such column and no project is read for them."""
from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.identity import services as identity_services
from apps.networks import services
from tests.api_client import SeededCloud
from tests.networks.test_dashboard import Setup

pytestmark = pytest.mark.django_db

PAGES = ["/dashboard/networks/", "/dashboard/networks/routers/", "/dashboard/networks/security-groups/"]


def _get(client: Client, url: str) -> tuple[str, int]:
    with CaptureQueriesContext(connection) as seen:
        response = client.get(url)
    assert response.status_code == 200, url
    return response.content.decode(), len(seen.captured_queries)


def _link(project: object) -> str:
    return (f'<a href="/dashboard/identity/projects/{project.id}/members" '  # type: ignore[attr-defined]
            f'data-project="{project.id}">{project.name}</a>')  # type: ignore[attr-defined]


def test_admin_project_columns_name_and_link_the_project(cloud: SeededCloud) -> None:
    env = Setup(cloud)
    for project in (env.demo_project, env.other_project):
        identity_services.quota_set(actor=env.admin, project_id=project.id, limits={"router": 100, "network": 100})
    services.router_create(actor=env.demo, name="demo-r0")
    services.router_create(actor=env.other, name="other-r0")
    env.network(env.demo, "demo-n0")
    env.network(env.other, "other-n0", cidr="10.2.0.0/24")
    services.security_group_create(actor=env.demo, name="demo-g0")
    services.security_group_create(actor=env.other, name="other-g0")
    admin = env.client("admin")
    before = {}
    for url in PAGES:
        _get(admin, url)  # the first visit makes the admin project's default security group
        page, before[url] = _get(admin, url)
        assert _link(env.demo_project) in page and _link(env.other_project) in page, url
        row = re.search(r'<tr data-id="[^"]+" data-name="other-\w+".*?</tr>', page, re.S)
        assert row is not None and f'<code class="id">{env.other_project.id[:8]}' not in row.group(0), url

    for i in range(1, 12):
        services.router_create(actor=env.demo if i % 2 else env.other, name=f"r{i:02d}")
        env.network(env.demo if i % 2 else env.other, f"n{i:02d}", cidr=f"10.3.{i}.0/24")
        services.security_group_create(actor=env.demo if i % 2 else env.other, name=f"g{i:02d}")
    assert {url: _get(admin, url)[1] for url in PAGES} == before

    demo = env.client("demo")
    for url in PAGES:  # a member's pages have no Project column
        page, _ = _get(demo, url)
        assert "/dashboard/identity/projects/" not in page, url


def test_the_task_log_and_the_detail_pages_name_the_project(cloud: SeededCloud) -> None:
    from apps.core.models import TaskRecord

    env = Setup(cloud)
    record = TaskRecord.objects.create(name="workers.network.sync", queue="network.n1", action="sync",
                                       resource_type="network", resource_id="x", project_id=env.demo_project.id)
    network, _ = env.network(env.demo, "named-net")
    port = services.port_create(actor=env.demo, network_id=network.id, name="named-p")
    admin = env.client("admin")
    for url in ("/dashboard/tasks/all", f"/dashboard/tasks/{record.id}/", f"/dashboard/networks/{network.id}/",
                f"/dashboard/networks/ports/{port.id}/"):
        assert _link(env.demo_project) in _get(admin, url)[0], url
