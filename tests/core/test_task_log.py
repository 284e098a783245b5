"""The task log in the dashboard (the project's Tasks panel, the admins' Tasks of every project, one
task's page) and in the operators' console, through Django's test client: each sees what it may, newest
first, filtered by resource and state; the admin console shows the records read-only."""
from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from apps.core import states
from apps.core.models import TaskRecord
from tests.dashboard.conftest import sign_in
from tests.identity import factories

pytestmark = pytest.mark.django_db
D = "/dashboard/tasks"


def client_for(name: str, password: str = factories.PASSWORD) -> Client:
    client = Client()
    assert sign_in(client, name, password).status_code == 302
    return client


def record(project_id: str, resource_type: str, resource_id: str, status: str = states.SENT, **kw: Any) -> TaskRecord:
    return TaskRecord.objects.create(name=f"workers.test.{resource_type}", queue="q", action=kw.pop("action", "do"),
                                     resource_type=resource_type, resource_id=resource_id, project_id=project_id,
                                     status=status, **kw)


def rows(html: str) -> list[str]:
    return re.findall(r'<tr data-id="([0-9a-f]+)"', html)


def test_the_project_panel_shows_its_records_newest_first_and_filters(cloud: Any) -> None:
    demo, other = cloud.demo_project.id, cloud.other_project.id
    boot = record(demo, "instance", "i1", states.SUCCEEDED, action="create")
    attach = record(demo, "instance", "i1", states.FAILED, action="attach_volume", error="no such device",
                    log=[{"at": "2026-12-03T10:00:00+00:00", "level": "WARNING", "message": "device busy"}])
    volume = record(demo, "volume", "v1", states.RUNNING)
    theirs = record(other, "volume", "v2")
    node = record("", "network_agent", "n1")
    alice = client_for("alice")
    page = alice.get(f"{D}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert rows(html) == [volume.id, attach.id, boot.id]  # newest first; not another project's, nor the nodes'
    assert 'data-live="task"' in html and "partial=1" in html
    assert rows(alice.get(f"{D}/?resource_type=instance").content.decode()) == [attach.id, boot.id]
    assert rows(alice.get(f"{D}/?status=failed").content.decode()) == [attach.id]
    assert rows(alice.get(f"{D}/?resource_type=instance&resource_id=i1&status=succeeded&partial=1")
                .content.decode()) == [boot.id]
    assert alice.get(f"{D}/?status=bogus").status_code == 400

    detail = alice.get(f"{D}/{attach.id}/").content.decode()
    assert "no such device" in detail and "device busy" in detail and "attach_volume" in detail
    for hidden in (theirs, node):
        assert alice.get(f"{D}/{hidden.id}/").status_code == 404
    assert alice.get(f"{D}/all").status_code == 403  # every project's log is the admins'
    assert rows(client_for("rita").get(f"{D}/").content.decode()) == [volume.id, attach.id, boot.id]  # a reader


def test_the_admins_see_every_projects_records_and_the_nodes_own_work(cloud: Any) -> None:
    mine = record(cloud.admin_project.id, "instance", "i9")
    theirs = record(cloud.other_project.id, "volume", "v2")
    node = record("", "network_agent", "n1", states.SUCCEEDED, action="sync")
    admin = client_for("admin", "admin-pw")
    assert rows(admin.get(f"{D}/").content.decode()) == [mine.id]  # its project's panel: its project's
    html = admin.get(f"{D}/all").content.decode()
    assert rows(html) == [node.id, theirs.id, mine.id]
    assert rows(admin.get(f"{D}/all?resource_type=network_agent").content.decode()) == [node.id]
    assert admin.get(f"{D}/{node.id}/").status_code == 200


def test_the_admin_console_shows_records_read_only(cloud: Any) -> None:
    done = record(cloud.demo_project.id, "volume", "v1", states.FAILED, error="disk full")
    admin = Client()
    assert admin.post("/admin/login/?next=/admin/", {"username": "admin", "password": "admin-pw"}).status_code == 302
    listing = admin.get("/admin/core/taskrecord/?status__exact=failed&q=v1")
    assert listing.status_code == 200 and done.id in listing.content.decode()
    page = admin.get(f"/admin/core/taskrecord/{done.id}/change/")
    assert page.status_code == 200 and "disk full" in page.content.decode()
    assert 'name="_save"' not in page.content.decode()  # nothing to save
    assert admin.get("/admin/core/taskrecord/add/").status_code == 403
    assert admin.post(f"/admin/core/taskrecord/{done.id}/delete/", {"post": "yes"}).status_code == 403
    assert TaskRecord.objects.filter(pk=done.pk).exists()
