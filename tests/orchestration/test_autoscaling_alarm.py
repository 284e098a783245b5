"""An AutoScalingGroup driven by telemetry alarms, in process: OS::Aodh::GnocchiAggregationByResourcesAlarm
made through the telemetry app's alarm services, its alarm_actions the ScalingPolicy's alarm_url (this
cloud's token-free signal URL); measures posted through the Gnocchi API; the evaluator's transition to
``alarm`` sends the notify task, which delivers the URL in process: the group scales out on the high
alarm and in on the low one. The policy also scales through ``resource signal`` (the native API); a
signal URL with a wrong secret scales nothing; deleting the stack deletes the alarms."""
from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from apps.core.models import TaskRecord
from apps.orchestration import nested, states
from apps.orchestration.models import Event, StackResource
from apps.telemetry import services as telemetry
from apps.telemetry.models import Alarm
from tests.orchestration.test_api import create
from tests.orchestration.test_nested import drive, outputs_of

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def cloud_api() -> str:
    return "orchestration"


TEMPLATE = """
heat_template_version: 2018-08-31
parameters:
  query: {type: string}
resources:
  asg:
    type: OS::Heat::AutoScalingGroup
    properties:
      min_size: 1
      max_size: 3
      resource: {type: OS::Heat::RandomString, properties: {length: 8}}
  up:
    type: OS::Heat::ScalingPolicy
    properties: {auto_scaling_group_id: {get_resource: asg}, adjustment_type: change_in_capacity,
                 scaling_adjustment: 1}
  down:
    type: OS::Heat::ScalingPolicy
    properties: {auto_scaling_group_id: {get_resource: asg}, adjustment_type: change_in_capacity,
                 scaling_adjustment: -1}
  high:
    type: OS::Aodh::GnocchiAggregationByResourcesAlarm
    properties:
      metric: cpu_util
      aggregation_method: mean
      granularity: 60
      evaluation_periods: 2
      threshold: 70
      comparison_operator: gt
      resource_type: instance
      query: {get_param: query}
      alarm_actions: [{get_attr: [up, alarm_url]}]
      repeat_actions: false
  low:
    type: OS::Aodh::GnocchiAggregationByResourcesAlarm
    properties:
      metric: cpu_util
      aggregation_method: mean
      granularity: 60
      evaluation_periods: 2
      threshold: 20
      comparison_operator: lt
      resource_type: instance
      query: {get_param: query}
      alarm_actions: [{get_attr: [down, alarm_url]}]
      repeat_actions: false
outputs:
  size: {value: {get_attr: [asg, current_size]}}
  up_url: {value: {get_attr: [up, alarm_url]}}
"""


def _vm(cloud, host: str) -> str:
    rid = str(uuid.uuid4())
    made = cloud.member.to("metric").post("resource/instance", {
        "id": rid, "flavor_id": "1", "host": host, "display_name": "vm",
        "metrics": {"cpu_util": {"archive_policy_name": "medium"}}})
    assert made.status_code == 201, made.content
    return rid


def _post(cloud, rid: str, start: dt.datetime, values: list[float]) -> None:
    measures = [{"timestamp": (start + dt.timedelta(minutes=i, seconds=10)).isoformat(), "value": v}
                for i, v in enumerate(values)]
    response = cloud.member.to("metric").post(f"resource/instance/{rid}/metric/cpu_util/measures", measures)
    assert response.status_code == 202, response.content


def _notify(alarm: Alarm) -> list[str]:
    """Run the notify tasks the alarm's transitions sent (the worker's task, called in process)."""
    from workers.telemetry import alarm_notify

    done = []
    for record in TaskRecord.objects.filter(resource_id=str(alarm.id), name="workers.telemetry.alarm_notify",
                                            status="pending").order_by("created_at"):
        done.append(alarm_notify(**record.kwargs))
        TaskRecord.objects.filter(pk=record.pk).update(status="succeeded")
    return done


def test_alarms_scale_the_group_out_and_in_through_the_policies_alarm_urls(cloud) -> None:
    host = f"asg-{uuid.uuid4().hex[:6]}"
    rid = _vm(cloud, host)
    made = create(cloud.member, "auto", TEMPLATE, parameters={"query": json.dumps({"=": {"host": host}})})
    stack = drive(made["id"], {states.CREATE_COMPLETE, states.CREATE_FAILED})
    assert stack.state == states.CREATE_COMPLETE, stack.status_reason
    assert outputs_of(stack)["size"] == 1
    rows = {r.name: r for r in StackResource.objects.filter(stack=stack)}
    high, low = Alarm.objects.get(pk=rows["high"].physical_id), Alarm.objects.get(pk=rows["low"].physical_id)
    up_url = outputs_of(stack)["up_url"]
    assert high.alarm_actions == [up_url] and "/orchestration/v1/signal/" in up_url and "token=" in up_url
    assert high.project_id == stack.project_id and high.type == "gnocchi_aggregation_by_resources_threshold"

    # busy: the high alarm fires, its action (the up policy's URL) delivered in process → 2 members
    _post(cloud, rid, T0, [90, 95])
    assert telemetry.alarm_evaluate(alarm=high, now=T0 + dt.timedelta(minutes=2)) == "alarm"
    assert _notify(high) == ["signalled"]
    drive(stack.id, {states.CREATE_COMPLETE})
    assert outputs_of(stack)["size"] == 2
    reason = Event.objects.filter(stack=stack, resource_name="up", state="SIGNAL_COMPLETE").get().reason
    assert "from 1 to 2" in reason

    # idle: the high alarm clears (ok: no action), the low one fires → back to 1
    _post(cloud, rid, T0 + dt.timedelta(minutes=3), [5, 4])
    later = T0 + dt.timedelta(minutes=5)
    assert telemetry.alarm_evaluate(alarm=high, now=later) == "ok"
    assert telemetry.alarm_evaluate(alarm=low, now=later) == "alarm"
    assert _notify(high) == [] and _notify(low) == ["signalled"]
    drive(stack.id, {states.CREATE_COMPLETE})
    assert outputs_of(stack)["size"] == 1

    # the native API: resource signal with a token scales too (no details: Heat's "alarm")
    r = cloud.member.post(f"stacks/auto/{stack.id}/resources/up/signal", {})
    assert r.status_code == 200, r.content
    drive(stack.id, {states.CREATE_COMPLETE})
    assert outputs_of(stack)["size"] == 2

    # a wrong secret in the URL scales nothing
    forged = up_url.split("token=")[0] + "token=" + "x" * 43
    assert nested.signal_in_cloud(url=forged, details={"current": "alarm"}).startswith("error")
    assert outputs_of(stack)["size"] == 2

    assert cloud.member.delete(f"stacks/auto/{stack.id}").status_code == 204
    assert drive(stack.id, {states.DELETE_COMPLETE, states.DELETE_FAILED}).state == states.DELETE_COMPLETE
    assert not Alarm.objects.filter(pk__in=[high.pk, low.pk]).exists()


def test_only_this_clouds_signal_urls_are_delivered_in_process(settings) -> None:
    settings.STRATUS_PUBLIC_URL = "https://cloud.example.com:8443"
    sid = str(uuid.uuid4())
    good = f"https://cloud.example.com:8443/orchestration/v1/signal/{sid}/up?token=abc"
    assert nested.in_cloud_signal(good) == (sid, "up", "abc")
    for url in (f"https://evil.example.com/orchestration/v1/signal/{sid}/up?token=abc",
                f"http://cloud.example.com:8443/orchestration/v1/signal/{sid}/up?token=abc",
                f"https://cloud.example.com:8443/orchestration/v1/other/{sid}/up?token=abc",
                f"https://cloud.example.com:8443/orchestration/v1/signal/{sid}/up",
                "https://cloud.example.com:8443/orchestration/v1/signal/not-an-id/up?token=abc"):
        assert nested.in_cloud_signal(url) is None, url
    assert telemetry.alarm_notify_signal(action="https://hooks.example.com/a", payload={}) is None
