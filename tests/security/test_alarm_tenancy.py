"""An alarm reads only its own project's measures: even a rule naming another project's resource or
metric (which the API refuses; here written into the row directly, as a stale or forged rule would be)
evaluates to insufficient data, never to the other project's figures."""
from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from apps.telemetry import services
from apps.telemetry.models import Alarm
from tests.api_client import SeededCloud

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def cloud_api() -> str:
    return "metric"


def test_an_alarm_never_reads_another_projects_data(cloud: SeededCloud) -> None:
    rid = str(uuid.uuid4())
    made = cloud.other.post("resource/instance", {"id": rid, "flavor_id": "1", "host": "theirs", "display_name": "x",
                                                  "metrics": {"cpu_util": {"archive_policy_name": "medium"}}})
    assert made.status_code == 201, made.content
    metric_id = made.json()["metrics"]["cpu_util"]
    posted = cloud.other.post(f"resource/instance/{rid}/metric/cpu_util/measures",
                              [{"timestamp": T0.isoformat(), "value": 99.0}])
    assert posted.status_code == 202
    mine = str(uuid.uuid4())
    assert cloud.member.post("resource/instance", {"id": mine, "flavor_id": "1", "host": "theirs",
                                                   "display_name": "y", "metrics": {"cpu_util": {}}}).status_code == 201
    base = {"threshold": 50, "comparison_operator": "gt", "aggregation_method": "mean", "granularity": 60,
            "evaluation_periods": 1}
    alarms = [
        services.alarm_create(actor=cloud.member_actor, name="res", alarm_type="gnocchi_resources_threshold",
                              rule={**base, "metric": "cpu_util", "resource_type": "instance", "resource_id": mine},
                              state="ok"),
        services.alarm_create(actor=cloud.member_actor, name="agg",
                              alarm_type="gnocchi_aggregation_by_resources_threshold",
                              rule={**base, "metric": "cpu_util", "resource_type": "instance",
                                    "query": json.dumps({"=": {"host": "theirs"}})}, state="ok"),
    ]
    # the rules now name the other project's resource and metric
    Alarm.objects.filter(pk=alarms[0].pk).update(rule={**alarms[0].rule, "resource_id": rid})
    forged = services.alarm_create(actor=cloud.member_actor, name="met",
                                   alarm_type="gnocchi_aggregation_by_metrics_threshold",
                                   rule={**base, "metrics": [_own_metric(cloud, mine)]}, state="ok")
    Alarm.objects.filter(pk=forged.pk).update(rule={**forged.rule, "metrics": [metric_id]})
    at = T0 + dt.timedelta(seconds=30)
    for alarm in Alarm.objects.filter(pk__in=[a.pk for a in (*alarms, forged)]):
        assert services.alarm_evaluate(alarm=alarm, now=at) == "insufficient data", alarm.name
    # the control: the other project's own alarm on the same data goes to alarm
    theirs = services.alarm_create(actor=cloud.other_actor, name="theirs", alarm_type="gnocchi_resources_threshold",
                                   rule={**base, "metric": "cpu_util", "resource_type": "instance", "resource_id": rid})
    assert services.alarm_evaluate(alarm=theirs, now=at) == "alarm"


def _own_metric(cloud: SeededCloud, rid: str) -> str:
    return cloud.member.get(f"resource/instance/{rid}").json()["metrics"]["cpu_util"]
