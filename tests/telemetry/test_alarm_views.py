"""The Alarms panel through Django's test client: a threshold alarm on the project's instance's metric
created from the form (a resource the project cannot see is refused on the form, nothing made), listed
with its state in a constant number of queries, edited, shown with its history, deleted; another
project's alarm is a 404; every change is one live event to the alarm's project."""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.telemetry import services
from apps.telemetry.models import Alarm
from apps.telemetry.services import samples_from_node
from tests.api_client import SeededCloud
from tests.dashboard.conftest import DEMO_PW, signed_in

pytestmark = pytest.mark.django_db


def _measured(cloud: SeededCloud, project: Any) -> str:
    from apps.compute.models import Instance

    uid = str(uuid.uuid4())
    Instance.objects.create(id=uid, project=project, user=cloud.demo_user, name="vm-alarmed", flavor_ref="1",
                            vcpus=1, memory_mb=512, host="node-a")
    samples_from_node(host="node-a", domains=[{"uuid": uid, "timestamp": dt.datetime.now(dt.UTC).timestamp(),
                                               "cpu_time_ns": 1e9, "vcpus": 1, "memory_mb": 512.0,
                                               "disks": [], "nics": []}])
    return uid


def _form(uid: str, **changes: Any) -> dict[str, Any]:
    return {"name": "cpu-high", "description": "", "resource_type": "instance", "resource_id": uid,
            "metric": "cpu_util", "aggregation_method": "mean", "comparison_operator": "gt", "threshold": "80",
            "granularity": "300", "evaluation_periods": "2", "severity": "moderate", "alarm_action": "log://",
            "enabled": "on", **changes}


def test_create_list_edit_history_delete(cloud: SeededCloud, monkeypatch: Any,
                                         django_capture_on_commit_callbacks: Any) -> None:
    from apps.core import events

    seen: list[tuple[str, dict]] = []
    monkeypatch.setattr(events, "send_all", seen.extend)
    uid = _measured(cloud, cloud.demo_project)
    theirs = _measured(cloud, cloud.other_project)
    client = signed_in("demo", DEMO_PW)
    # a resource of another project: refused on the form, nothing made
    refused = client.post("/dashboard/telemetry/alarms/", _form(theirs))
    assert refused.status_code == 400 and f"Resource {theirs} does not exist" in refused.content.decode()
    assert not Alarm.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        made = client.post("/dashboard/telemetry/alarms/", _form(uid))
    assert made.status_code == 302
    alarm = Alarm.objects.get()
    assert alarm.project_id == cloud.demo_project.id and alarm.rule["threshold"] == 80.0
    assert alarm.rule["evaluation_periods"] == 2 and alarm.alarm_actions == ["log://"]
    group = f"project.{cloud.demo_project.id}"
    assert [(g, e["kind"]) for g, e in seen if e["resource"] == "alarm"] == [(group, "created")]
    listing = client.get("/dashboard/telemetry/alarms/").content.decode()
    assert f'data-id="{alarm.id}"' in listing and 'data-state="insufficient data"' in listing
    assert "<code>cpu_util</code> mean &gt; 80.0 over 2 \u00d7 300 s" in listing
    # a state transition (as the evaluator or the API makes it) is a live event
    seen.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.alarm_state_set(actor=cloud.member_actor, alarm_id=str(alarm.id), state="alarm")
    assert [(e["kind"], e["data"]["state"]) for _, e in seen if e["resource"] == "alarm"] == [("state", "alarm")]
    # edit from its page's form
    page = client.get(f"/dashboard/telemetry/alarms/{alarm.id}/edit")
    assert page.status_code == 200 and 'value="cpu-high"' in page.content.decode()
    saved = client.post(f"/dashboard/telemetry/alarms/{alarm.id}/edit", _form(uid, threshold="95", name="cpu-hot"))
    assert saved.status_code == 302
    alarm.refresh_from_db()
    assert alarm.name == "cpu-hot" and alarm.rule["threshold"] == 95.0 and alarm.state == "alarm"
    detail = client.get(f"/dashboard/telemetry/alarms/{alarm.id}/").content.decode()
    assert 'id="alarm-state">alarm<' in detail
    assert [t for t in ("creation", "state transition", "rule change") if f'data-type="{t}"' in detail] == \
        ["creation", "state transition", "rule change"]
    partial = client.get(f"/dashboard/telemetry/alarms/{alarm.id}/?partial=1").content.decode()
    assert partial.lstrip().startswith('<section class="card" id="alarm-overview"')
    # another project's user: a 404 for its page, its edit and its delete
    other = _other_client(cloud)
    assert other.get(f"/dashboard/telemetry/alarms/{alarm.id}/").status_code == 404
    assert other.post(f"/dashboard/telemetry/alarms/{alarm.id}/delete").status_code == 404
    assert Alarm.objects.filter(pk=alarm.pk).exists()
    deleted = client.post(f"/dashboard/telemetry/alarms/{alarm.id}/delete")
    assert deleted.status_code == 302 and not Alarm.objects.exists()


def _other_client(cloud: SeededCloud) -> Any:
    from tests.dashboard.conftest import make_user

    make_user(cloud, "otto", role="member", project="other")
    return signed_in("otto", "pw-12345678")


def test_alarm_list_constant_queries(cloud: SeededCloud) -> None:
    uid = _measured(cloud, cloud.demo_project)
    client = signed_in("demo", DEMO_PW)

    def count() -> int:
        client.get("/dashboard/telemetry/alarms/?partial=1")
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/dashboard/telemetry/alarms/?partial=1").status_code == 200
        return len(queries)

    rule = {"resource_type": "instance", "resource_id": uid, "metric": "cpu_util", "aggregation_method": "mean",
            "comparison_operator": "gt", "threshold": 80.0, "granularity": 300, "evaluation_periods": 1}
    services.alarm_create(actor=cloud.member_actor, name="a0", alarm_type="gnocchi_resources_threshold", rule=rule)
    one = count()
    for n in range(1, 15):
        services.alarm_create(actor=cloud.member_actor, name=f"a{n}", alarm_type="gnocchi_resources_threshold",
                              rule=rule)
    assert count() == one
