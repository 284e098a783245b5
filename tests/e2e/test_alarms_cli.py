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
    cloud = live_cloud
    rid = str(uuid.uuid4())
    run(cloud, "metric", "resource", "create", "--type", "instance", "-a", "flavor_id:1", "-a", "host:alarm-node",
        "-a", "display_name:hot", "-n", "cpu_util:medium", rid)
    metric_id = run(cloud, "metric", "show", "--resource-id", rid, "cpu_util")["id"]
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
    queried = run(cloud, "alarm", "list", "--query", f"name='{name}-m'")
    assert [a["alarm_id"] for a in queried] == [by_metrics["alarm_id"]]
    assert run(cloud, "alarm", "show", aid)["name"] == name
    assert run(cloud, "alarm", "show", "--name", name)["alarm_id"] == aid

    updated = run(cloud, "alarm", "update", "--threshold", "90", "--severity", "moderate", aid)
    assert updated["threshold"] == 90.0 and updated["severity"] == "moderate" and updated["resource_id"] == rid
    assert run(cloud, "alarm", "state", "get", aid) == {"state": "insufficient data"}
    assert run(cloud, "alarm", "state", "set", "--state", "alarm", aid) == {"state": "alarm"}
    assert run(cloud, "alarm", "state", "get", "--name", name) == {"state": "alarm"}
    history = run(cloud, "alarm-history", "show", aid)
    assert [h["type"] for h in history] == ["state transition", "rule change", "creation"]
    assert json.loads(history[0]["detail"])["state"] == "alarm"
    assert json.loads(history[1]["detail"])["rule"]["threshold"] == 90.0
    assert all(h["event_id"] and h["timestamp"] for h in history)
    searched = run(cloud, "alarm-history", "search", "--query", f"alarm_id='{aid}'")
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
    assert "ssrf" not in {a["name"] for a in run(cloud, "alarm", "list")}

    # another project's member: not found, lists nothing; the admin sees it with all_projects
    other = f"alarms-{uuid.uuid4().hex[:6]}"
    cloud.openstack("project", "create", other)
    cloud.openstack("user", "create", "--project", other, "--password", "pw-" + other, other)
    cloud.openstack("role", "add", "--project", other, "--user", other, "member")
    outsider = {"user": other, "project": other, "password": "pw-" + other}
    for args in (("alarm", "show", aid), ("alarm", "state", "get", aid), ("alarm", "delete", aid),
                 ("alarm-history", "show", aid), ("alarm", "state", "set", "--state", "ok", aid)):
        result = cloud.openstack(*args, check=False, **outsider)
        assert result.returncode != 0 and ("not found" in result.stderr or "Not found" in result.stderr), (
            args, result.stderr)
    assert json.loads(cloud.openstack("alarm", "list", "-f", "json", check=False, **outsider).stdout) == []
    assert run(cloud, "alarm", "state", "get", aid) == {"state": "alarm"}
    everyone = run(cloud, "alarm", "list", "--filter", "all_projects=true", user="admin")
    assert aid in {a["alarm_id"] for a in everyone}

    for alarm_id in (aid, by_metrics["alarm_id"], by_resources["alarm_id"]):
        run(cloud, "alarm", "delete", alarm_id, fmt=False)
    gone = cloud.openstack("alarm", "show", aid, user="demo", check=False)
    assert gone.returncode != 0 and "not found" in gone.stderr.lower()
