"""Alarms with the real aodhclient (`openstack alarm ...`) against a running cloud: create (the three gnocchi
rule types), list (with --filter), show (by id and by --name, which aodhclient answers with a complex query),
update, state get/set, history show, delete; a refused action URL and a bad operator come back with Aodh's
message; another project's member does not find the alarm and lists nothing."""
from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.conftest import VENV_BIN
from tests.e2e.rest import rest

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def _aodhclient() -> None:
    try:
        import aodhclient  # noqa: F401
    except ImportError:
        pytest.skip("aodhclient is missing: pip install -r requirements-test.txt")
    assert (VENV_BIN / "openstack").exists()


def run(cloud: Any, *args: str, user: str = "demo", fmt: bool = True, **kw: Any) -> Any:
    result = cloud.openstack(*args, *(("-f", "json") if fmt else ()), user=user, check=False, **kw)
    assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-2000:])
    return json.loads(result.stdout) if fmt and result.stdout.strip() else result.stdout


def test_alarm_cli(live_cloud) -> None:
    """The CLI for what a user types (the three creates, list with --filter, show --name, update, state set,
    history show, the refusals, an outsider's show, delete); openstacksdk's session in process for the checks
    between them (each CLI call costs a second of start-up)."""
    cloud = live_cloud
    demo = cloud.sdk(user="demo")

    def aodh(method: str, path: str, **kw: Any) -> Any:
        return rest(demo, "alarming", method, path, **kw)

    rid = str(uuid.uuid4())
    made_resource = rest(demo, "metric", "POST", "/v1/resource/instance", json={
        "id": rid, "flavor_id": "1", "host": "alarm-node", "display_name": "hot",
        "metrics": {"cpu_util": {"archive_policy_name": "medium"}}})
    metric_id = made_resource["metrics"]["cpu_util"]
    name = f"cpu-hot-{uuid.uuid4().hex[:6]}"
    made = run(cloud, "alarm", "create", "--name", name, "--type", "gnocchi_resources_threshold",
               "--metric", "cpu_util", "--resource-id", rid, "--resource-type", "instance",
               "--aggregation-method", "mean", "--threshold", "80", "--comparison-operator", "gt",
               "--granularity", "60", "--evaluation-periods", "2", "--severity", "critical",
               "--alarm-action", "log://", "--ok-action", "https://hooks.example.com/ok",
               "--time-constraint", "name=office;start=0 9 * * 1-5;duration=28800;timezone=Europe/Paris")
    aid = made["alarm_id"]
    assert made["state"] == "insufficient data" and made["severity"] == "critical" and made["threshold"] == 80.0
    assert made["resource_id"] == rid and made["metric"] == "cpu_util" and made["alarm_actions"] == ["log://"]
    assert json.loads(made["time_constraints"])[0]["duration"] == 28800
    by_metrics = run(cloud, "alarm", "create", "--name", f"{name}-m", "--type",
                     "gnocchi_aggregation_by_metrics_threshold", "--metric", metric_id, "--threshold", "5",
                     "--aggregation-method", "max", "--comparison-operator", "lt")
    by_resources = run(cloud, "alarm", "create", "--name", f"{name}-r", "--type",
                       "gnocchi_aggregation_by_resources_threshold", "--metric", "cpu_util", "--threshold", "5",
                       "--aggregation-method", "mean", "--resource-type", "instance",
                       "--query", json.dumps({"=": {"host": "alarm-node"}}))
    assert by_metrics["metrics"] == [metric_id] and json.loads(by_resources["query"]) == {"=": {"host": "alarm-node"}}

    listed = {a["alarm_id"]: a for a in run(cloud, "alarm", "list")}
    assert {aid, by_metrics["alarm_id"], by_resources["alarm_id"]} <= set(listed)
    assert listed[aid]["name"] == name and listed[aid]["state"] == "insufficient data"
    critical = run(cloud, "alarm", "list", "--filter", "severity=critical", "--filter", f"name={name}")
    assert [a["alarm_id"] for a in critical] == [aid]
    # `alarm list --query name='...'` is this complex query
    queried = aodh("POST", "/v2/query/alarms", json={"filter": json.dumps({"=": {"name": f"{name}-m"}})})
    assert [a["alarm_id"] for a in queried] == [by_metrics["alarm_id"]]
    assert aodh("GET", f"/v2/alarms/{aid}")["name"] == name
    assert run(cloud, "alarm", "show", "--name", name)["alarm_id"] == aid

    updated = run(cloud, "alarm", "update", "--threshold", "90", "--severity", "moderate", aid)
    assert updated["threshold"] == 90.0 and updated["severity"] == "moderate" and updated["resource_id"] == rid
    assert aodh("GET", f"/v2/alarms/{aid}/state") == "insufficient data"
    assert run(cloud, "alarm", "state", "set", "--state", "alarm", aid) == {"state": "alarm"}
    assert aodh("GET", f"/v2/alarms/{aid}/state") == "alarm"
    history = run(cloud, "alarm-history", "show", aid)
    assert [h["type"] for h in history] == ["state transition", "rule change", "creation"]
    assert json.loads(history[0]["detail"])["state"] == "alarm"
    assert json.loads(history[1]["detail"])["rule"]["threshold"] == 90.0
    assert all(h["event_id"] and h["timestamp"] for h in history)
    # `alarm-history search --query alarm_id='...'` is this complex query
    searched = aodh("POST", "/v2/query/alarms/history", json={"filter": json.dumps({"=": {"alarm_id": aid}})})
    assert len(searched) == 3

    # refusals come back with Aodh's message, nothing made
    refused = cloud.openstack("alarm", "create", "--name", "ssrf", "--type", "gnocchi_resources_threshold",
                              "--metric", "cpu_util", "--resource-id", rid, "--resource-type", "instance",
                              "--aggregation-method", "mean", "--threshold", "1",
                              "--alarm-action", "http://169.254.169.254/latest/meta-data/", user="demo", check=False)
    assert refused.returncode != 0 and "not an address alarms may send to" in refused.stderr, refused.stderr
    missing = cloud.openstack("alarm", "create", "--name", "nores", "--type", "gnocchi_resources_threshold",
                              "--metric", "cpu_util", "--resource-id", str(uuid.uuid4()), "--resource-type",
                              "instance", "--aggregation-method", "mean", "--threshold", "1", user="demo", check=False)
    assert missing.returncode != 0 and "does not exist" in missing.stderr, missing.stderr
    assert "ssrf" not in {a["name"] for a in aodh("GET", "/v2/alarms")}

    # another project's member: not found (the CLI's message for show; the API's 404 for the rest), lists
    # nothing; the admin sees it with all_projects
    other = f"alarms-{uuid.uuid4().hex[:6]}"
    password = cloud.new_member(other)
    result = cloud.openstack("alarm", "show", aid, check=False, user=other, project=other, password=password)
    assert result.returncode != 0 and ("not found" in result.stderr or "Not found" in result.stderr), result.stderr
    outsider = cloud.sdk(user=other, password=password)
    for method, path, body in (("GET", f"/v2/alarms/{aid}/state", None), ("DELETE", f"/v2/alarms/{aid}", None),
                               ("GET", f"/v2/alarms/{aid}/history", None),
                               ("PUT", f"/v2/alarms/{aid}/state", "ok")):
        rest(outsider, "alarming", method, path, json=body, expect=404)
    assert rest(outsider, "alarming", "GET", "/v2/alarms") == []
    assert aodh("GET", f"/v2/alarms/{aid}/state") == "alarm"
    everyone = rest(cloud.sdk(), "alarming", "GET", "/v2/alarms?q.field=all_projects&q.op=eq&q.value=true")
    assert aid in {a["alarm_id"] for a in everyone}

    run(cloud, "alarm", "delete", aid, fmt=False)
    for alarm_id in (by_metrics["alarm_id"], by_resources["alarm_id"]):
        aodh("DELETE", f"/v2/alarms/{alarm_id}")
    gone = cloud.openstack("alarm", "show", aid, user="demo", check=False)
    assert gone.returncode != 0 and "not found" in gone.stderr.lower()
