"""Aodh v2 at /alarming/v2 with the in-process client: alarms CRUD for the three gnocchi rule types, the
simple (q.field/q.op/q.value) and complex query filters aodhclient sends, state get/set, history,
capabilities, Aodh's error format; validation refuses with nothing changed; another project's alarm is
404; an admin lists all projects only when asking; lists cost constant queries."""
from __future__ import annotations

import json
import uuid

import pytest

from apps.telemetry.models import Alarm, AlarmChange
from tests.api_client import SeededCloud

pytestmark = pytest.mark.django_db


@pytest.fixture
def cloud_api() -> str:
    return "alarming"


def aodh_error(response, status: int, text: str = "") -> dict:
    assert response.status_code == status, (response.status_code, response.content[:400])
    body = response.json()
    assert set(body) == {"error_message"} and body["error_message"]["faultstring"], body
    assert text in body["error_message"]["faultstring"], body
    return body


def _vm(cloud: SeededCloud, client=None) -> str:
    rid = str(uuid.uuid4())
    made = (client or cloud.member).post("/metric/v1/resource/instance", {
        "id": rid, "flavor_id": "1", "host": "n1", "display_name": "vm", "metrics": {"cpu_util": {
            "archive_policy_name": "medium"}}})
    assert made.status_code == 201, made.content
    return rid


def _alarm(cloud: SeededCloud, rid: str, client=None, **extra) -> dict:
    body = {"name": f"cpu-{uuid.uuid4().hex[:6]}", "type": "gnocchi_resources_threshold",
            "gnocchi_resources_threshold_rule": {"metric": "cpu_util", "resource_type": "instance",
                                                 "resource_id": rid, "threshold": 80, "comparison_operator": "gt",
                                                 "aggregation_method": "mean", "granularity": 60,
                                                 "evaluation_periods": 2},
            "alarm_actions": ["log://"], **extra}
    made = (client or cloud.member).post("alarms", body)
    assert made.status_code == 201, made.content
    return made.json()


def test_versions_capabilities_catalog(cloud: SeededCloud) -> None:
    versions = cloud.anonymous.get("/alarming").json()
    assert versions["versions"]["values"][0]["id"] == "v2"
    caps = cloud.member.get("capabilities").json()
    assert caps["alarms"]["query"]["complex"] is True
    from apps.identity.models import Service

    assert Service.objects.filter(type="alarming", name="aodh").exists()
    aodh_error(cloud.anonymous.get("alarms"), 401)


def test_crud_state_history(cloud: SeededCloud) -> None:
    rid = _vm(cloud)
    made = _alarm(cloud, rid, severity="critical", ok_actions=["mailto:ops@example.com"],
                  time_constraints=[{"name": "day", "start": "0 8 * * 1-5", "duration": 36000,
                                     "timezone": "Europe/Paris"}])
    aid = made["alarm_id"]
    assert made["state"] == "insufficient data" and made["enabled"] is True and made["severity"] == "critical"
    rule = made["gnocchi_resources_threshold_rule"]
    assert rule == {"metric": "cpu_util", "resource_type": "instance", "resource_id": rid, "threshold": 80.0,
                    "comparison_operator": "gt", "aggregation_method": "mean", "granularity": 60,
                    "evaluation_periods": 2}
    assert made["project_id"] == cloud.demo_project.id and made["time_constraints"][0]["duration"] == 36000
    shown = cloud.member.get(f"alarms/{aid}").json()
    assert shown == made
    assert cloud.member.get(f"alarms/{aid}/state").json() == "insufficient data"

    # aodhclient's update: the alarm as shown, changed, PUT back
    body = dict(shown, severity="low", name="renamed")
    body["gnocchi_resources_threshold_rule"] = dict(rule, threshold=90)
    updated = cloud.member.put(f"alarms/{aid}", body)
    assert updated.status_code == 200, updated.content
    assert updated.json()["name"] == "renamed" and updated.json()["gnocchi_resources_threshold_rule"]["threshold"] == 90
    assert cloud.member.put(f"alarms/{aid}/state", "alarm").json() == "alarm"
    assert cloud.member.get(f"alarms/{aid}").json()["state_reason"] == "Manually set via API"

    history = cloud.member.get(f"alarms/{aid}/history").json()
    assert [h["type"] for h in history] == ["state transition", "rule change", "creation"]
    assert json.loads(history[0]["detail"])["state"] == "alarm"
    assert json.loads(history[1]["detail"])["rule"]["threshold"] == 90.0
    assert json.loads(history[1]["detail"])["name"] == "renamed"
    assert all(h["alarm_id"] == aid and h["timestamp"] and h["on_behalf_of"] == cloud.demo_project.id
               for h in history)
    assert history[0]["severity"] == "low" and history[2]["severity"] == "critical"
    assert [h["type"] for h in cloud.member.get(f"alarms/{aid}/history?sort=timestamp:asc&limit=2").json()] == [
        "creation", "rule change"]

    # complex queries (aodhclient's `alarm show --name`, `alarm-history search`)
    found = cloud.member.post("query/alarms", {"filter": json.dumps({"=": {"name": "renamed"}})}).json()
    assert [a["alarm_id"] for a in found] == [aid]
    changes = cloud.member.post("query/alarms/history", {"filter": json.dumps(
        {"and": [{"=": {"alarm_id": aid}}, {"=": {"type": "creation"}}]})}).json()
    assert len(changes) == 1

    assert cloud.member.delete(f"alarms/{aid}").status_code == 204
    aodh_error(cloud.member.get(f"alarms/{aid}"), 404, f"Alarm {aid} not found")
    assert AlarmChange.objects.filter(alarm_id=aid, type="deletion").count() == 1


def test_the_other_rule_types(cloud: SeededCloud) -> None:
    rid = _vm(cloud)
    metric_id = cloud.member.get(f"/metric/v1/resource/instance/{rid}").json()["metrics"]["cpu_util"]
    by_metrics = cloud.member.post("alarms", {
        "name": "m", "type": "gnocchi_aggregation_by_metrics_threshold",
        "gnocchi_aggregation_by_metrics_threshold_rule": {"metrics": [metric_id], "threshold": 1,
                                                          "aggregation_method": "max"}})
    assert by_metrics.status_code == 201, by_metrics.content
    assert by_metrics.json()["gnocchi_aggregation_by_metrics_threshold_rule"]["metrics"] == [metric_id]
    by_resources = cloud.member.post("alarms", {
        "name": "r", "type": "gnocchi_aggregation_by_resources_threshold",
        "gnocchi_aggregation_by_resources_threshold_rule": {
            "metric": "cpu_util", "resource_type": "instance", "threshold": 1, "aggregation_method": "mean",
            "query": json.dumps({"and": [{"=": {"host": "n1"}}, {"=": {"ended_at": None}}]})}})
    assert by_resources.status_code == 201, by_resources.content


@pytest.mark.parametrize(("change", "text"), [
    ({"type": "threshold"}, "type"),
    ({"name": ""}, "name"),
    ({"severity": "huge"}, "severity"),
    ({"state": "broken"}, "state"),
    ({"enabled": "yes"}, "enabled"),
    ({"rule": {"threshold": None}}, "threshold"),
    ({"rule": {"threshold": "a lot"}}, "threshold"),
    ({"rule": {"comparison_operator": "gte"}}, "comparison_operator"),
    ({"rule": {"evaluation_periods": 0}}, "evaluation_periods"),
    ({"rule": {"granularity": -60}}, "granularity"),
    ({"rule": {"aggregation_method": "rate:mean:x"}}, "aggregation_method"),
    ({"rule": {"resource_type": "nope"}}, "Resource type nope does not exist"),
    ({"rule": {"resource_id": "ffffffff-0000-0000-0000-000000000000"}}, "does not exist"),
    ({"rule": {"bogus": 1}}, "Unknown attribute"),
    ({"alarm_actions": ["file:///etc/passwd"]}, "Unsupported action"),
    ({"alarm_actions": ["gopher://x"]}, "Unsupported action"),
    ({"alarm_actions": "http://example.com"}, "alarm_actions"),
    ({"ok_actions": ["mailto:not-an-address"]}, "e-mail"),
    ({"time_constraints": [{"name": "x", "start": "every day", "duration": 60}]}, "cron"),
    ({"time_constraints": [{"name": "x", "start": "* * * * *", "duration": 60, "timezone": "Mars/Base"}]},
     "Timezone"),
    ({"project_id": "someone-else"}, "Not Authorized"),
    ({"gnocchi_aggregation_by_metrics_threshold_rule": {"metrics": ["x"]}}, "Unknown attribute"),
])
def test_validation_refuses_and_changes_nothing(cloud: SeededCloud, change: dict, text: str) -> None:
    rid = _vm(cloud)
    rule = {"metric": "cpu_util", "resource_type": "instance", "resource_id": rid, "threshold": 5,
            "aggregation_method": "mean"}
    body = {"name": "v", "type": "gnocchi_resources_threshold"}
    body.update({k: v for k, v in change.items() if k != "rule"})
    rule.update(change.get("rule", {}))
    body["gnocchi_resources_threshold_rule"] = {k: v for k, v in rule.items() if v is not None}
    if body["type"] != "gnocchi_resources_threshold":
        body[f"{body['type']}_rule"] = body.pop("gnocchi_resources_threshold_rule")
    response = cloud.member.post("alarms", body)
    aodh_error(response, 403 if "project_id" in change else 400, text)
    assert Alarm.objects.count() == 0 and AlarmChange.objects.count() == 0


def test_update_validation_and_duplicates(cloud: SeededCloud) -> None:
    rid = _vm(cloud)
    first = _alarm(cloud, rid)
    aodh_error(cloud.member.post("alarms", {**{k: v for k, v in first.items() if k in (
        "name", "type", "gnocchi_resources_threshold_rule")}}), 409, "exists")
    before = Alarm.objects.get(pk=first["alarm_id"]).rule
    aodh_error(cloud.member.put(f"alarms/{first['alarm_id']}", dict(
        first, gnocchi_resources_threshold_rule=dict(first["gnocchi_resources_threshold_rule"],
                                                     comparison_operator="nope"))), 400)
    aodh_error(cloud.member.put(f"alarms/{first['alarm_id']}/state", "sideways"), 400, "state")
    aodh_error(cloud.member.put(f"alarms/{first['alarm_id']}/state", {"state": "ok"}), 400)
    alarm = Alarm.objects.get(pk=first["alarm_id"])
    assert alarm.rule == before and alarm.state == "insufficient data"
    assert AlarmChange.objects.filter(alarm_id=first["alarm_id"]).count() == 1
    aodh_error(cloud.member.post("alarms", "not an object"), 400)
    aodh_error(cloud.member.post("query/alarms", {"filter": "{not json"}), 400, "JSON")
    aodh_error(cloud.member.post("query/alarms", {"filter": json.dumps({"=": {"secret": 1}})}), 400, "Unknown")
    aodh_error(cloud.member.post("query/alarms", {"filter": json.dumps({"=~": {"name": ".*"}})}), 400)
    deep: dict = {"=": {"name": "x"}}
    for _ in range(40):
        deep = {"not": deep}
    aodh_error(cloud.member.post("query/alarms", {"filter": json.dumps(deep)}), 400, "too deep")


def test_list_filters_pagination_and_projects(cloud: SeededCloud, django_assert_max_num_queries) -> None:
    rid = _vm(cloud)
    made = [_alarm(cloud, rid, severity=sev) for sev in ("low", "moderate", "critical", "low")]
    olga_rid = _vm(cloud, cloud.other.to("metric"))
    theirs = _alarm(cloud, olga_rid, client=cloud.other)

    def ids(path: str, client=None) -> list[str]:
        response = (client or cloud.member).get(path)
        assert response.status_code == 200, response.content
        return [a["alarm_id"] for a in response.json()]

    everything = ids("alarms")
    assert sorted(everything) == sorted(a["alarm_id"] for a in made)
    assert set(ids("alarms?q.field=severity&q.op=eq&q.value=low")) == {made[0]["alarm_id"], made[3]["alarm_id"]}
    assert ids("alarms?q.field=severity&q.op=eq&q.value=low&q.field=type&q.op=eq&q.value=gnocchi_resources_threshold"
               "&sort=severity:asc&limit=1") in ([made[0]["alarm_id"]], [made[3]["alarm_id"]])
    assert ids(f"alarms?q.field=name&q.op=eq&q.value={made[1]['name']}") == [made[1]["alarm_id"]]
    assert ids("alarms?q.field=enabled&q.op=eq&q.value=true") == everything
    page = ids("alarms?limit=2")
    assert ids(f"alarms?limit=2&marker={page[-1]}") == everything[2:4]
    aodh_error(cloud.member.get(f"alarms?marker={theirs['alarm_id']}"), 400, "marker")
    aodh_error(cloud.member.get("alarms?q.field=password&q.op=eq&q.value=x"), 400, "Unknown argument")
    aodh_error(cloud.member.get("alarms?q.field=severity&q.op=like&q.value=x"), 400)
    aodh_error(cloud.member.get("alarms?limit=0"), 400)

    # another project's alarm: not found, not listed, not queried; the admin sees it when asking
    aid = theirs["alarm_id"]
    for method, path, body in (("GET", f"alarms/{aid}", None), ("PUT", f"alarms/{aid}", theirs),
                               ("DELETE", f"alarms/{aid}", None), ("GET", f"alarms/{aid}/state", None),
                               ("PUT", f"alarms/{aid}/state", "ok"), ("GET", f"alarms/{aid}/history", None)):
        aodh_error(cloud.member.call(method, path, body), 404, "not found")
    assert Alarm.objects.get(pk=aid).state == "insufficient data"
    assert ids(f"alarms?q.field=alarm_id&q.op=eq&q.value={aid}") == []
    assert ids("alarms?q.field=all_projects&q.op=eq&q.value=true") == everything  # (no admin: its own)
    assert cloud.member.post("query/alarms", {"filter": json.dumps({"=": {"alarm_id": aid}})}).json() == []
    assert cloud.member.post("query/alarms/history", {"filter": json.dumps({"=": {"alarm_id": aid}})}).json() == []
    assert ids("alarms", cloud.admin) == []
    assert set(ids("alarms?q.field=all_projects&q.op=eq&q.value=true", cloud.admin)) == {*everything, aid}
    assert cloud.admin.get(f"alarms/{aid}").status_code == 200
    # a reader of the project reads but changes nothing
    assert cloud.reader.get(f"alarms/{made[0]['alarm_id']}").status_code == 200
    aodh_error(cloud.reader.put(f"alarms/{made[0]['alarm_id']}/state", "ok"), 403)
    aodh_error(cloud.reader.delete(f"alarms/{made[0]['alarm_id']}"), 403)
    aodh_error(cloud.reader.post("alarms", {"name": "r", "type": "gnocchi_resources_threshold",
                                            "gnocchi_resources_threshold_rule": made[0][
                                                "gnocchi_resources_threshold_rule"]}), 403)

    # lists cost a constant number of queries, whatever their length
    with django_assert_max_num_queries(4):
        assert len(ids("alarms")) == 4
    for _ in range(6):
        _alarm(cloud, rid)
    with django_assert_max_num_queries(4):
        assert len(ids("alarms")) == 10
    with django_assert_max_num_queries(4):
        cloud.member.get(f"alarms/{made[0]['alarm_id']}/history")
    with django_assert_max_num_queries(4):
        cloud.member.post("query/alarms", {"filter": json.dumps({"!=": {"severity": "critical"}})})


def test_alarm_quota(cloud: SeededCloud) -> None:
    from apps.identity import services as identity

    rid = _vm(cloud)
    identity.quota_set(actor=cloud.admin_actor, project_id=cloud.demo_project.id, limits={"alarms": 2})
    first, _ = _alarm(cloud, rid), _alarm(cloud, rid)
    aodh_error(cloud.member.post("alarms", {"name": "third", "type": "gnocchi_resources_threshold",
                                            "gnocchi_resources_threshold_rule": first[
                                                "gnocchi_resources_threshold_rule"]}), 403, "quota exceeded")
    assert Alarm.objects.count() == 2
    assert cloud.member.delete(f"alarms/{first['alarm_id']}").status_code == 204
    _alarm(cloud, rid)  # the deleted one's place
    assert Alarm.objects.count() == 2
