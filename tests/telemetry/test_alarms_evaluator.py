"""The alarm evaluator against measures posted through the Gnocchi API: a threshold crossed over the last
N periods → alarm (history, the alarm actions' tasks with Aodh's payload), back under → ok, no points →
insufficient data; a mix keeps the state; repeat_actions; disabled alarms and time constraints; the three
rule types read through the aggregates selector."""
from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from apps.core.models import TaskRecord
from apps.telemetry import services
from apps.telemetry.models import Alarm, AlarmChange
from tests.api_client import SeededCloud

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)


def _vm(cloud: SeededCloud, host: str = "n1") -> tuple[str, str]:
    rid = str(uuid.uuid4())
    made = cloud.member.post("resource/instance", {"id": rid, "flavor_id": "1", "host": host, "display_name": "vm",
                                                   "metrics": {"cpu_util": {"archive_policy_name": "medium"}}})
    assert made.status_code == 201, made.content
    return rid, made.json()["metrics"]["cpu_util"]


def _post(cloud: SeededCloud, rid: str, start: dt.datetime, values: list[float]) -> None:
    measures = [{"timestamp": (start + dt.timedelta(minutes=i, seconds=10)).isoformat(), "value": v}
                for i, v in enumerate(values)]
    response = cloud.member.post(f"resource/instance/{rid}/metric/cpu_util/measures", measures)
    assert response.status_code == 202, response.content


def _notifications(alarm: Alarm) -> list[dict]:
    rows = TaskRecord.objects.filter(resource_id=str(alarm.id), name="workers.telemetry.alarm_notify")
    return [r.kwargs for r in rows.order_by("created_at")]


def _alarm(cloud: SeededCloud, alarm_type: str, rule: dict, **extra) -> Alarm:
    base = {"threshold": 50, "comparison_operator": "gt", "aggregation_method": "mean", "granularity": 60,
            "evaluation_periods": 3}
    return services.alarm_create(actor=cloud.member_actor, name=f"a-{uuid.uuid4().hex[:6]}", alarm_type=alarm_type,
                                 rule={**base, **rule}, alarm_actions=["https://hooks.example.com/a", "log://"],
                                 ok_actions=["https://hooks.example.com/ok"],
                                 insufficient_data_actions=["mailto:ops@example.com"], **extra)


def test_threshold_alarm_ok_insufficient(cloud: SeededCloud) -> None:
    rid, _ = _vm(cloud)
    alarm = _alarm(cloud, "gnocchi_resources_threshold", {"metric": "cpu_util", "resource_type": "instance",
                                                           "resource_id": rid})
    now = T0 + dt.timedelta(minutes=3)
    assert services.alarm_evaluate(alarm=alarm, now=now) == "insufficient data"  # no points yet
    assert _notifications(alarm) == []  # (no transition: created in insufficient data)

    _post(cloud, rid, T0, [70, 95, 90])
    assert services.alarm_evaluate(alarm=alarm, now=now) == "alarm"
    alarm.refresh_from_db()
    assert alarm.state == "alarm" and alarm.state_changed_at == now
    assert alarm.state_reason == "Transition to alarm due to 3 samples outside threshold, most recent: 90.0"
    sent = _notifications(alarm)
    assert [n["action"] for n in sent] == ["https://hooks.example.com/a", "log://"]
    assert sent[0]["payload"] == {
        "alarm_id": str(alarm.id), "alarm_name": alarm.name, "severity": "low", "previous": "insufficient data",
        "current": "alarm", "reason": alarm.state_reason,
        "reason_data": {"type": "threshold", "disposition": "outside", "count": 3, "most_recent": 90.0}}
    change = AlarmChange.objects.get(alarm_id=alarm.id, type="state transition")
    assert json.loads(change.detail) == {"state": "alarm", "transition_reason": alarm.state_reason}
    assert change.timestamp == now

    # still beyond: no new transition, no actions (repeat_actions is off) ...
    assert services.alarm_evaluate(alarm=alarm, now=now) == "alarm"
    assert len(_notifications(alarm)) == 2
    # ... a mix of points keeps the state
    _post(cloud, rid, T0 + dt.timedelta(minutes=3), [10, 80, 10])
    assert services.alarm_evaluate(alarm=alarm, now=now + dt.timedelta(minutes=3)) == "alarm"
    # all under: ok, with the ok actions
    _post(cloud, rid, T0 + dt.timedelta(minutes=6), [10, 20, 30])
    assert services.alarm_evaluate(alarm=alarm, now=now + dt.timedelta(minutes=6)) == "ok"
    ok = _notifications(alarm)[-1]
    assert ok["action"] == "https://hooks.example.com/ok" and ok["payload"]["previous"] == "alarm"
    assert ok["payload"]["reason_data"]["disposition"] == "inside"
    # no points in the window any more: insufficient data, and the mail action
    assert services.alarm_evaluate(alarm=alarm, now=now + dt.timedelta(hours=2)) == "insufficient data"
    alarm.refresh_from_db()
    assert alarm.state_reason == "3 datapoints are unknown"
    assert _notifications(alarm)[-1]["action"] == "mailto:ops@example.com"
    assert sorted(AlarmChange.objects.filter(alarm_id=alarm.id).values_list("type", flat=True)) \
        == ["creation", "state transition", "state transition", "state transition"]


def test_repeat_actions_disabled_and_time_constraints(cloud: SeededCloud) -> None:
    rid, _ = _vm(cloud)
    rule = {"metric": "cpu_util", "resource_type": "instance", "resource_id": rid, "evaluation_periods": 1}
    repeat = _alarm(cloud, "gnocchi_resources_threshold", rule, repeat_actions=True)
    _post(cloud, rid, T0, [99])
    at = T0 + dt.timedelta(seconds=30)
    services.alarm_evaluate(alarm=repeat, now=at)
    services.alarm_evaluate(alarm=repeat, now=at)
    sent = _notifications(repeat)
    assert len(sent) == 4 and sent[2]["payload"]["reason"].startswith("Remaining as alarm")

    off = _alarm(cloud, "gnocchi_resources_threshold", rule, enabled=False)
    weekend = _alarm(cloud, "gnocchi_resources_threshold", rule,
                     time_constraints=[{"name": "weekend", "start": "0 0 * * 6", "duration": 2 * 86400}])
    office = _alarm(cloud, "gnocchi_resources_threshold", rule,  # 2026-01-05 is a Monday; 12:00 UTC = 13:00 Paris
                    time_constraints=[{"name": "office", "start": "0 9 * * 1-5", "duration": 8 * 3600,
                                       "timezone": "Europe/Paris"}])
    counts = services.alarms_evaluate(now=at)
    assert counts["errors"] == 0
    for alarm, state in ((off, "insufficient data"), (weekend, "insufficient data"), (office, "alarm")):
        alarm.refresh_from_db()
        assert alarm.state == state, alarm.name
    assert Alarm.objects.get(pk=off.pk).evaluated_at is None


def test_aggregation_rule_types(cloud: SeededCloud) -> None:
    first, m1 = _vm(cloud, host="agg")
    second, m2 = _vm(cloud, host="agg")
    _post(cloud, first, T0, [40, 40])
    _post(cloud, second, T0, [80, 80])
    now = T0 + dt.timedelta(minutes=2)
    rule = {"evaluation_periods": 2, "threshold": 70}
    by_metrics_max = _alarm(cloud, "gnocchi_aggregation_by_metrics_threshold",
                            {**rule, "metrics": [m1, m2], "aggregation_method": "max"})
    by_metrics_mean = _alarm(cloud, "gnocchi_aggregation_by_metrics_threshold", {**rule, "metrics": [m1, m2]})
    query = json.dumps({"=": {"host": "agg"}})
    by_resources = _alarm(cloud, "gnocchi_aggregation_by_resources_threshold",
                          {**rule, "metric": "cpu_util", "resource_type": "instance", "query": query,
                           "aggregation_method": "max"})
    lonely = _alarm(cloud, "gnocchi_aggregation_by_resources_threshold",
                    {**rule, "metric": "cpu_util", "resource_type": "instance",
                     "query": json.dumps({"=": {"host": "nowhere"}})})
    assert services.alarm_evaluate(alarm=by_metrics_max, now=now) == "alarm"   # max(40, 80) > 70
    assert services.alarm_evaluate(alarm=by_metrics_mean, now=now) == "ok"     # mean 60
    assert services.alarm_evaluate(alarm=by_resources, now=now) == "alarm"
    assert services.alarm_evaluate(alarm=lonely, now=now) == "insufficient data"
    # a granularity the metrics do not keep: nothing to compare
    wrong = _alarm(cloud, "gnocchi_aggregation_by_metrics_threshold", {**rule, "metrics": [m1], "granularity": 17})
    services.alarm_state_set(actor=cloud.member_actor, alarm_id=str(wrong.id), state="ok")
    wrong.refresh_from_db()
    assert services.alarm_evaluate(alarm=wrong, now=now) == "insufficient data"


def test_decide_table() -> None:
    rule = {"evaluation_periods": 2, "threshold": 5.0, "comparison_operator": "le"}
    assert services.alarm_decide(rule=rule, values=[1, 2, 9], current="ok")[0] == "ok"  # last two: 2 ≤ 5, 9 > 5
    assert services.alarm_decide(rule=rule, values=[5, 4], current="ok")[0] == "alarm"
    assert services.alarm_decide(rule=rule, values=[9, 9], current="alarm")[0] == "ok"
    assert services.alarm_decide(rule=rule, values=[9, 1], current="insufficient data")[0] == "alarm"
    assert services.alarm_decide(rule=rule, values=[1], current="ok")[:2] == ("insufficient data",
                                                                             "1 datapoints are unknown")
    for op, value, breach in (("lt", 4.9, True), ("eq", 5.0, True), ("ne", 5.0, False), ("ge", 5.0, True),
                              ("gt", 5.0, False)):
        state = services.alarm_decide(rule={**rule, "comparison_operator": op, "evaluation_periods": 1},
                                      values=[value], current="ok")[0]
        assert state == ("alarm" if breach else "ok"), op


def test_history_retention(cloud: SeededCloud, settings) -> None:
    rid, _ = _vm(cloud)
    alarm = _alarm(cloud, "gnocchi_resources_threshold", {"metric": "cpu_util", "resource_type": "instance",
                                                           "resource_id": rid, "evaluation_periods": 1})
    _post(cloud, rid, T0, [99])
    services.alarm_evaluate(alarm=alarm, now=T0 + dt.timedelta(seconds=30))  # a transition dated T0
    settings.STRATUS_ALARM_HISTORY_DAYS = 0
    assert services.alarm_history_sweep() == 0
    settings.STRATUS_ALARM_HISTORY_DAYS = 30
    assert services.alarm_history_sweep() == 1  # the January transition, not today's creation
    assert list(AlarmChange.objects.filter(alarm_id=alarm.id).values_list("type", flat=True)) == ["creation"]


def test_evaluation_cost_is_bounded_per_alarm(cloud: SeededCloud, django_assert_max_num_queries) -> None:
    import time

    rid, _ = _vm(cloud)
    _post(cloud, rid, T0, [99, 98, 97])
    rule = {"metric": "cpu_util", "resource_type": "instance", "resource_id": rid}
    alarms = [_alarm(cloud, "gnocchi_resources_threshold", rule) for _ in range(50)]
    now = T0 + dt.timedelta(minutes=3)
    with django_assert_max_num_queries(12):  # read the points, lock, record, enqueue 2 actions
        assert services.alarm_evaluate(alarm=alarms[0], now=now) == "alarm"
    started = time.perf_counter()
    counts = services.alarms_evaluate(now=now)
    elapsed = time.perf_counter() - started
    assert counts == {"evaluated": 50, "changed": 49, "errors": 0}
    print(f"\nalarms_evaluate: 50 alarms in {elapsed * 1000:.0f} ms ({elapsed * 20:.1f} ms per alarm)")


def test_a_disabled_or_deleted_projects_alarms_are_not_evaluated(cloud: SeededCloud) -> None:
    from apps.identity.models import Project

    rid, _ = _vm(cloud)
    rule = {"metric": "cpu_util", "resource_type": "instance", "resource_id": rid, "evaluation_periods": 1}
    alarm = _alarm(cloud, "gnocchi_resources_threshold", rule)
    _post(cloud, rid, T0, [99])
    at = T0 + dt.timedelta(seconds=30)
    Project.objects.filter(pk=cloud.demo_project.id).update(enabled=False)
    assert services.alarms_evaluate(now=at)["evaluated"] == 0
    Alarm.objects.filter(pk=alarm.pk).update(project_id="gone-project")
    Project.objects.filter(pk=cloud.demo_project.id).update(enabled=True)
    assert services.alarms_evaluate(now=at)["evaluated"] == 0
    assert _notifications(alarm) == []
    Alarm.objects.filter(pk=alarm.pk).update(project_id=cloud.demo_project.id)
    assert services.alarms_evaluate(now=at) == {"evaluated": 1, "changed": 1, "errors": 0}


def test_mail_and_log_actions(caplog) -> None:
    from django.core import mail

    from workers.telemetry import alarm_notify

    payload = {"alarm_id": "a1", "alarm_name": "cpu-hot", "severity": "critical", "previous": "ok",
               "current": "alarm", "reason": "Transition to alarm due to 1 samples outside threshold, most recent: 9.0",
               "reason_data": {"type": "threshold"}}
    assert alarm_notify.apply(kwargs={"action": "mailto:ops@example.com", "payload": payload}).result == "mailed"
    (sent,) = mail.outbox
    assert sent.to == ["ops@example.com"] and sent.subject == "[critical] Alarm cpu-hot is alarm"
    assert payload["reason"] in sent.body and '"alarm_id": "a1"' in sent.body
    with caplog.at_level("INFO", logger="apps.telemetry.services.alarms"):
        assert alarm_notify.apply(kwargs={"action": "log://", "payload": payload}).result == "logged"
    assert "alarm cpu-hot (a1) ok -> alarm" in caplog.text
