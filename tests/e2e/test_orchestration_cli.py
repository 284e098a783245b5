"""Orchestration with the real python-heatclient (`openstack stack ...`) against a running cloud and a
real control worker: `stack create --wait` of chained None/RandomString/TestResource/Value resources,
`stack list`, `stack show`, `stack output show`, `stack resource list`, `stack event list`,
`stack update --existing --parameter ... --wait` (in place and replaced), `stack check --wait`, a failing
stack rolled back, a wait condition signalled by running its handle's curl_cli and by `stack resource
signal`, `stack delete --wait` of three stacks; another project's stack is not found. The breadth between
those steps (output list, resource show, template, suspend/resume, resource metadata, events of one
resource, the outsider's empty list) goes through openstacksdk's session in process: each CLI call costs a
second of start-up."""
from __future__ import annotations

import json
import secrets
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import VENV_BIN, CeleryWorker, live_control_worker, wait_for
from tests.e2e.rest import rest

pytestmark = pytest.mark.e2e

TEMPLATE = """
heat_template_version: 2018-08-31
description: e2e chain
parameters:
  length: {type: number, default: 10}
  word: {type: string, default: hello}
resources:
  root: {type: OS::Heat::None}
  pw:
    type: OS::Heat::RandomString
    depends_on: root
    properties: {length: {get_param: length}}
  echo:
    type: OS::Heat::TestResource
    properties: {value: {get_param: word}, action_wait_secs: {create: 1}}
    depends_on: root
  both:
    type: OS::Heat::Value
    properties: {value: {list_join: [':', [{get_attr: [echo, output]}, {get_resource: pw}]]}}
outputs:
  both: {value: {get_attr: [both, value]}, description: the joined value}
  password: {value: {get_attr: [pw, value]}}
"""

WAIT_TEMPLATE = """
heat_template_version: 2018-08-31
resources:
  handle: {type: OS::Heat::WaitConditionHandle}
  wait:
    type: OS::Heat::WaitCondition
    properties: {handle: {get_resource: handle}, count: 2, timeout: 60}
outputs:
  curl: {value: {get_attr: [handle, curl_cli]}}
"""


@pytest.fixture(autouse=True)
def _heatclient() -> None:
    try:
        import heatclient  # noqa: F401
    except ImportError:
        pytest.skip("python-heatclient is missing: pip install -r requirements-test.txt")


@pytest.fixture(scope="module")
def control_worker(live_cloud: Any) -> Iterator[CeleryWorker]:
    """A control-queue worker for the live cloud (orchestration's tasks run there), 4 threads."""
    with live_control_worker(live_cloud, name="heat-e2e", pool="threads", concurrency=4) as worker:
        yield worker


def stack(cloud: Any, *args: str, user: str = "demo", **kw: Any) -> Any:
    result = cloud.openstack("stack", *args, "-f", "json", user=user, check=False, **kw)
    assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-2000:])
    text = result.stdout
    if not text.strip():
        return None
    # `--wait` writes the events it followed before the JSON
    start = min((i for i in (text.find("\n{"), text.find("\n[")) if i >= 0), default=-1)
    return json.loads(text if text.lstrip()[:1] in "{[" else text[start + 1:])


def heat(conn: Any, method: str, path: str, **kw: Any) -> Any:
    """Heat's REST API through openstacksdk's session (in process, no CLI start-up): the JSON answer."""
    return rest(conn, "orchestration", method, path, **kw)


def wait_stack(conn: Any, sid: str, status: str) -> dict[str, Any]:
    """The stack once its status is ``status`` (polled every 0.2 s; a *_FAILED status fails at once)."""
    def settled() -> dict[str, Any] | None:
        row = heat(conn, "GET", f"/stacks/{sid}")["stack"]
        assert not row["stack_status"].endswith("_FAILED"), row
        return row if row["stack_status"] == status else None
    return wait_for(settled, f"stack {sid} {status}", timeout=60, interval=0.2)


def test_stack_cli(live_cloud, control_worker, tmp_path: Path) -> None:
    """The flows a user types go through the CLI (create/update/check/delete --wait, list, show, the output
    and resource and event lists, signal, the refusal another project sees, the rollback it reports); the
    breadth around them (more shows, suspend/resume, template, metadata) through openstacksdk's session."""
    cloud = live_cloud
    assert (VENV_BIN / "openstack").exists()
    demo = cloud.sdk(user="demo")
    path = tmp_path / "chain.yaml"
    path.write_text(TEMPLATE)
    name = f"e2e-{secrets.token_hex(3)}"
    made = stack(cloud, "create", "-t", str(path), "--parameter", "length=14", "--parameter", "word=hi",
                 "--wait", "--poll", "1", "--timeout", "5", "--tag", "e2e", name)
    assert made["stack_status"] == "CREATE_COMPLETE", made
    sid = f"{name}/{made['id']}"
    listed = stack(cloud, "list")
    assert [(s["Stack Name"], s["Stack Status"]) for s in listed if s["ID"] == made["id"]] == [
        (name, "CREATE_COMPLETE")]
    shown = stack(cloud, "show", name)
    assert shown["id"] == made["id"] and shown["parameters"]["length"] == "14"
    outputs = {o["output_key"]: o["output_value"] for o in shown["outputs"]}
    assert len(outputs["password"]) == 14 and outputs["both"] == f"hi:{outputs['password']}"
    both = stack(cloud, "output", "show", name, "both")
    assert both["output_value"] == outputs["both"]
    assert {o["output_key"] for o in heat(demo, "GET", f"/stacks/{sid}/outputs")["outputs"]} == {
        "both", "password"}
    resources = stack(cloud, "resource", "list", name)
    assert {r["resource_name"]: r["resource_status"] for r in resources} == {
        "root": "CREATE_COMPLETE", "pw": "CREATE_COMPLETE", "echo": "CREATE_COMPLETE", "both": "CREATE_COMPLETE"}
    pw = heat(demo, "GET", f"/stacks/{sid}/resources/pw")["resource"]
    assert pw["attributes"]["value"] == outputs["password"]
    events = stack(cloud, "event", "list", name)
    assert events[0]["resource_name"] == name and events[0]["resource_status"] == "CREATE_IN_PROGRESS"
    assert events[-1]["resource_name"] == name and events[-1]["resource_status"] == "CREATE_COMPLETE"
    assert len(events) == 10
    assert heat(demo, "GET", f"/stacks/{sid}/template")["description"] == "e2e chain"

    # update --existing: the stored template kept, two parameters changed: echo and both updated in place
    # (same physical ids), pw replaced (its length changes: the event says UpdateReplace); outputs follow
    before = {r["resource_name"]: r["physical_resource_id"] for r in resources}
    updated = stack(cloud, "update", "--existing", "--parameter", "word=bye", "--parameter", "length=16",
                    "--wait", name)
    assert updated["stack_status"] == "UPDATE_COMPLETE", updated
    after = {r["resource_name"]: r["physical_resource_id"]
             for r in heat(demo, "GET", f"/stacks/{sid}/resources")["resources"]}
    assert after["echo"] == before["echo"] and after["root"] == before["root"] and after["pw"] != before["pw"]
    shown = heat(demo, "GET", f"/stacks/{sid}")["stack"]
    outputs = {o["output_key"]: o["output_value"] for o in shown["outputs"]}
    assert len(outputs["password"]) == 16 and outputs["both"] == f"bye:{outputs['password']}"
    reasons = [e["resource_status_reason"] for e in heat(demo, "GET", f"/stacks/{sid}/resources/pw/events")["events"]]
    assert any(r.startswith("UpdateReplace") for r in reasons), reasons
    # check through the CLI (it waits for its stack event); suspend and resume through the actions API
    done = stack(cloud, "check", "--wait", name)
    assert [row["Stack Status"] for row in done] == ["CHECK_COMPLETE"], done
    for action, status in (("suspend", "SUSPEND_COMPLETE"), ("resume", "RESUME_COMPLETE")):
        heat(demo, "POST", f"/stacks/{sid}/actions", json={action: None})
        wait_stack(demo, sid, status)

    # another project's member: not found; its list is empty
    other = f"heat-{secrets.token_hex(3)}"
    password = cloud.new_member(other)
    refused = cloud.openstack("stack", "show", made["id"], user=other, project=other, password=password,
                              check=False)
    assert refused.returncode != 0 and "Stack not found" in refused.stderr, refused.stderr
    assert heat(cloud.sdk(user=other, password=password), "GET", "/stacks")["stacks"] == []

    # a failing resource: the stack rolls back (create --wait reports the failure)
    failing = tmp_path / "failing.yaml"
    failing.write_text("heat_template_version: 2016-10-14\nresources:\n  a: {type: OS::Heat::None}\n"
                       "  bad: {type: OS::Heat::TestResource, depends_on: a, properties: {fail: true}}\n")
    bad = cloud.openstack("stack", "create", "-t", str(failing), "--enable-rollback", "--wait", "--poll", "1",
                          f"{name}-bad", user="demo", check=False)
    assert bad.returncode != 0 and "CREATE_FAILED" in bad.stderr + bad.stdout, (bad.stdout, bad.stderr)
    rolled = heat(demo, "GET", f"/stacks/{name}-bad/events")["events"]
    statuses = [(e["resource_name"], e["resource_status"]) for e in rolled]
    assert (f"{name}-bad", "ROLLBACK_IN_PROGRESS") in statuses and ("a", "DELETE_COMPLETE") in statuses

    # a wait condition: signalled once by running the handle's curl_cli in a shell as a guest's user_data
    # would (no Keystone token), once by `stack resource signal`; its metadata shows both. The
    # wait then completes (tests/orchestration/test_signals.py checks that in process; the delete below
    # could not start on a stack still in progress)
    wait_id = heat(demo, "POST", "/stacks", json={"stack_name": f"{name}-wait", "template": WAIT_TEMPLATE})[
        "stack"]["id"]
    wsid = f"{name}-wait/{wait_id}"

    def curl_cli() -> str | None:
        return heat(demo, "GET", f"/stacks/{wsid}/outputs/curl")["output"].get("output_value")
    curl = wait_for(curl_cli, "the wait stack's curl output", timeout=10, interval=0.1)
    assert curl.startswith("curl -i -X POST -H 'X-Auth-Token: "), curl
    ran = subprocess.run(["sh", "-c", curl + " --data-binary '{\"status\": \"SUCCESS\", \"data\": \"booted\"}'"],
                         capture_output=True, text=True, timeout=30)
    assert ran.returncode == 0 and " 200 " in ran.stdout.splitlines()[0], (ran.stdout, ran.stderr)
    cloud.openstack("stack", "resource", "signal", f"{name}-wait", "handle", "--data",
                    '{"status": "SUCCESS", "id": "cli", "data": "from the cli"}', user="demo")
    meta = heat(demo, "GET", f"/stacks/{wsid}/resources/handle/metadata")["metadata"]
    assert meta == {"1": {"data": "booted", "reason": "Signal 1 received", "status": "SUCCESS"},
                    "cli": {"data": "from the cli", "reason": "Signal cli received", "status": "SUCCESS"}}

    gone = cloud.openstack("stack", "delete", "--yes", "--wait", name, f"{name}-bad", f"{name}-wait", user="demo",
                           check=False)
    assert gone.returncode == 0, (gone.stdout, gone.stderr)
    assert [s for s in heat(demo, "GET", "/stacks")["stacks"] if s["stack_name"].startswith(name)] == []


NESTED_TOP = """
heat_template_version: 2018-08-31
parameters:
  query: {type: string}
resources:
  pair: {type: pair.yaml, properties: {prefix: e2e}}
  asg:
    type: OS::Heat::AutoScalingGroup
    properties:
      min_size: 1
      max_size: 3
      resource: {type: OS::Heat::RandomString, properties: {length: 6}}
  up:
    type: OS::Heat::ScalingPolicy
    properties: {auto_scaling_group_id: {get_resource: asg}, adjustment_type: change_in_capacity,
                 scaling_adjustment: 1}
  busy:
    type: OS::Aodh::GnocchiAggregationByResourcesAlarm
    properties:
      metric: cpu_util
      threshold: 80
      comparison_operator: gt
      granularity: 60
      evaluation_periods: 1
      resource_type: instance
      query: {get_param: query}
      alarm_actions: [{get_attr: [up, alarm_url]}]
outputs:
  label: {value: {get_attr: [pair, label]}}
  size: {value: {get_attr: [asg, current_size]}}
"""
NESTED_PAIR = """
heat_template_version: 2018-08-31
parameters:
  prefix: {type: string}
resources:
  pw: {type: OS::Heat::RandomString, properties: {length: 5}}
  label:
    type: OS::Heat::Value
    properties: {value: {list_join: ['-', [{get_param: prefix}, {get_attr: [pw, value]}]]}}
outputs:
  label: {value: {get_attr: [label, value]}}
"""


def test_nested_stack_and_scaling_cli(live_cloud, control_worker, tmp_path: Path) -> None:
    """heatclient sends the provider template named by ``type: pair.yaml`` in ``files``; the child is in
    ``stack list --nested`` and ``resource list --nested-depth``; ``stack resource signal`` to the policy
    grows the group, and so does its alarm going to ``alarm``; ``stack delete --wait`` removes the
    children and the alarm. (The telemetry resource, its measure and the checks between the CLI steps go
    through openstacksdk's session.)"""
    cloud = live_cloud
    demo = cloud.sdk(user="demo")
    (tmp_path / "top.yaml").write_text(NESTED_TOP)
    (tmp_path / "pair.yaml").write_text(NESTED_PAIR)
    name = f"e2e-nest-{secrets.token_hex(3)}"
    host, rid = f"{name}-host", str(uuid.uuid4())  # an instance's telemetry resource the alarm watches
    rest(demo, "metric", "POST", "/v1/resource/instance", json={
        "id": rid, "flavor_id": "1", "host": host, "display_name": "busy",
        "metrics": {"cpu_util": {"archive_policy_name": "medium"}}})
    query = json.dumps({"=": {"host": host}})
    made = stack(cloud, "create", "-t", str(tmp_path / "top.yaml"), "--parameter", f"query={query}", "--wait",
                 "--poll", "1", "--timeout", "5", name)
    assert made["stack_status"] == "CREATE_COMPLETE", made
    sid = f"{name}/{made['id']}"
    label = stack(cloud, "output", "show", name, "label")["output_value"]
    assert label.startswith("e2e-") and len(label) == 9
    nested = [s for s in stack(cloud, "list", "--nested") if s["Stack Name"].startswith(f"{name}-")]
    assert len(nested) == 2 and all(s["Parent"] == made["id"] for s in nested), nested
    assert not [s for s in rest(demo, "orchestration", "GET", "/stacks")["stacks"]
                if s["stack_name"].startswith(f"{name}-")]
    deep = stack(cloud, "resource", "list", "--nested-depth", "2", name)
    assert {"pair", "asg", "up", "pw", "label"} <= {r["resource_name"] for r in deep}
    events = stack(cloud, "event", "list", "--nested-depth", "1", name)
    assert any(e["resource_name"] == "label" for e in events)

    def size_is(size: int) -> bool:
        out = rest(demo, "orchestration", "GET", f"/stacks/{sid}/outputs/size")["output"]
        return out.get("output_value") == size

    signalled = cloud.openstack("stack", "resource", "signal", name, "up", user="demo", check=False)
    assert signalled.returncode == 0, signalled.stderr
    wait_for(lambda: size_is(2), "the group at 2 after the signal", timeout=30, interval=0.2)

    # the instance is busy: the evaluator (its beat task, sent here) moves the alarm to "alarm"; its action,
    # the policy's alarm_url, is delivered in process by the notify task, and the group grows again
    from datetime import UTC, datetime

    from celery import Celery
    from django.conf import settings

    alarm_id = rest(demo, "orchestration", "GET", f"/stacks/{sid}/resources/busy")["resource"][
        "physical_resource_id"]
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    rest(demo, "metric", "POST", f"/v1/resource/generic/{rid}/metric/cpu_util/measures",
         json=[{"timestamp": now, "value": 97}])
    client = Celery("e2e-heat", broker=settings.CELERY_BROKER_URL, set_as_current=False)
    client.conf.broker_transport_options = {"global_keyprefix": cloud.env["STRATUS_CELERY_KEYPREFIX"]}
    client.send_task("workers.telemetry.evaluate_alarms", queue=control_worker.queue)
    wait_for(lambda: size_is(3), "the group at 3 after the alarm", timeout=30, interval=0.2,
             details=lambda: control_worker.log.read_text(errors="replace")[-3000:])

    gone = cloud.openstack("stack", "delete", "--yes", "--wait", name, user="demo", check=False)
    assert gone.returncode == 0, (gone.stdout, gone.stderr)
    assert not [s for s in rest(demo, "orchestration", "GET", "/stacks", params={"show_nested": True})["stacks"]
                if s["stack_name"].startswith(name)]
    rest(demo, "alarming", "GET", f"/v2/alarms/{alarm_id}", expect=404)  # deleted too
