"""Signals and the data-only resource types, in process: OS::Heat::WaitCondition(Handle) completing after
``count`` signals sent through the token-free URL with the real Django test client (and failing on a
FAILURE signal or its timeout), the CloudFormation pair with its presigned URL and PUT, the signal and
metadata API (``openstack stack resource signal`` / ``metadata``), and the software configs. The walk
runs as the worker would (tests/orchestration/test_api.py's helpers)."""
from __future__ import annotations

import json
import shlex
import time
from email import message_from_string
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from django.core.cache import cache
from django.test import Client

from apps.orchestration import services, states
from apps.orchestration.models import Event, SoftwareConfig, Stack, StackResource
from tests.orchestration.test_api import create, heat_error, run_walk

pytestmark = pytest.mark.django_db
GUEST = "192.0.2.10"


@pytest.fixture
def cloud_api() -> str:
    return "orchestration"


@pytest.fixture(autouse=True)
def _fresh_guess_counter() -> None:
    cache.delete(f"heat-signal-guess:{GUEST}")


def step(stack_id: str) -> str:
    """One round of the worker: each resource task in progress runs once."""
    from workers import orchestration as tasks

    services.stack_advance(stack_id=stack_id)
    for row in StackResource.objects.filter(stack_id=stack_id, state__endswith="_IN_PROGRESS"):
        tasks.resource_run(row.id)
    return Stack.objects.get(pk=stack_id).state


def row(stack_id: str, name: str) -> StackResource:
    return StackResource.objects.get(stack_id=stack_id, name=name)


def guest(url: str, body: Any = None, *, method: str = "POST", headers: dict[str, str] | None = None,
          content_type: str = "application/json", raw: str | None = None) -> Any:
    """What a guest's curl does: a request with no Keystone token to a full URL (host ignored)."""
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in (headers or {}).items()}
    data = raw if raw is not None else (json.dumps(body) if body is not None else "")
    return Client(REMOTE_ADDR=GUEST).generic(method, path, data=data, content_type=content_type, **extra)


WAIT = """
heat_template_version: 2018-08-31
parameters:
  count: {type: number, default: 2}
  timeout: {type: number, default: 60}
resources:
  handle: {type: OS::Heat::WaitConditionHandle}
  wait:
    type: OS::Heat::WaitCondition
    properties: {handle: {get_resource: handle}, count: {get_param: count}, timeout: {get_param: timeout}}
  after:
    type: OS::Heat::TestResource
    properties: {value: {get_attr: [wait, data]}}
outputs:
  curl: {value: {get_attr: [handle, curl_cli]}}
  data: {value: {get_attr: [wait, data]}}
"""


def test_wait_condition_completes_after_count_signals_through_the_token_free_url(cloud) -> None:
    made = create(cloud.member, "waiting", WAIT)
    sid = made["id"]
    assert step(sid) == states.CREATE_IN_PROGRESS
    handle = row(sid, "handle")
    assert handle.state == states.CREATE_COMPLETE
    attrs = handle.attributes
    secret, endpoint = attrs["token"], attrs["endpoint"]
    assert len(secret) >= 40 and secret not in json.dumps(handle.data)  # only its hash is kept
    assert endpoint.endswith(f"/orchestration/v1/signal/{sid}/handle")
    # curl_cli is a command a guest runs as is (appending its --data-binary)
    words = shlex.split(attrs["curl_cli"])
    assert words[:4] == ["curl", "-i", "-X", "POST"] and f"X-Auth-Token: {secret}" in words and words[-1] == endpoint
    assert attrs["signal"] == {"endpoint": endpoint, "token": secret, "url": f"{endpoint}?token={secret}"}

    for _ in range(3):
        assert step(sid) == states.CREATE_IN_PROGRESS  # no signal yet: it waits
    assert row(sid, "wait").state == states.CREATE_IN_PROGRESS

    # the first signal: the URL with ?token=, as an alarm or a guest without headers calls it
    r = guest(attrs["signal"]["url"], {"status": "SUCCESS", "reason": "first boot", "data": "one", "id": "a"})
    assert r.status_code == 200, r.content
    assert step(sid) == states.CREATE_IN_PROGRESS and row(sid, "wait").state == states.CREATE_IN_PROGRESS
    # the second: exactly what curl_cli sends (the secret in X-Auth-Token), with no body at all
    r = guest(endpoint, headers={"X-Auth-Token": secret, "Accept": "application/json"})
    assert r.status_code == 200, r.content
    assert run_walk(sid) == states.CREATE_COMPLETE
    data = json.loads(row(sid, "wait").attributes["data"])
    assert data == {"a": "one", "2": None}
    shown = cloud.member.get(f"stacks/waiting/{sid}").json()["stack"]
    assert json.loads({o["output_key"]: o["output_value"] for o in shown["outputs"]}["data"]) == data
    assert row(sid, "after").attributes["output"] == row(sid, "wait").attributes["data"]

    # each signal is an event of the handle; the handle's metadata holds them
    signals = Event.objects.filter(stack_id=sid, resource_name="handle", state="SIGNAL_COMPLETE")
    assert [e.reason for e in signals] == ["Signal: status:SUCCESS reason:first boot",
                                           "Signal: status:SUCCESS reason:Signal 2 received"]
    events = cloud.member.get(f"stacks/waiting/{sid}/resources/handle/events").json()["events"]
    assert [e["resource_status"] for e in events][-2:] == ["SIGNAL_COMPLETE", "SIGNAL_COMPLETE"]
    meta = cloud.member.get(f"stacks/waiting/{sid}/resources/handle/metadata")
    assert meta.status_code == 200 and meta.json()["metadata"] == {
        "a": {"data": "one", "reason": "first boot", "status": "SUCCESS"},
        "2": {"data": None, "reason": "Signal 2 received", "status": "SUCCESS"}}


def test_a_failure_signal_fails_the_wait(cloud) -> None:
    made = create(cloud.member, "failing", WAIT)
    sid = made["id"]
    step(sid)
    url = row(sid, "handle").attributes["signal"]["url"]
    assert guest(url, {"status": "SUCCESS"}).status_code == 200
    assert guest(url, {"status": "FAILURE", "reason": "apt-get failed"}).status_code == 200
    assert run_walk(sid) == states.CREATE_FAILED
    wait = row(sid, "wait")
    assert wait.state == states.CREATE_FAILED and "WaitConditionFailure" in wait.status_reason
    assert "apt-get failed" in wait.status_reason
    assert "apt-get failed" in Stack.objects.get(pk=sid).status_reason
    assert row(sid, "after").state == states.INIT_COMPLETE
    # a status that is neither: refused, nothing recorded
    before = list(row(sid, "handle").data["signals"])
    heat_error(guest(url, {"status": "MAYBE"}), 400, "SignalFailed")
    assert row(sid, "handle").data["signals"] == before


def test_the_wait_times_out(cloud) -> None:
    made = create(cloud.member, "late", WAIT, parameters={"timeout": 1, "count": 1})
    sid = made["id"]
    step(sid)
    step(sid)
    assert row(sid, "wait").state == states.CREATE_IN_PROGRESS
    time.sleep(1.1)
    assert run_walk(sid) == states.CREATE_FAILED
    wait = row(sid, "wait")
    assert wait.state == states.CREATE_FAILED
    assert wait.status_reason.startswith("WaitConditionTimeout: resources.wait: 0 of 1 received")


CFN = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Resources": {
        "Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"},
        "Wait": {"Type": "AWS::CloudFormation::WaitCondition",
                 "Properties": {"Handle": {"Ref": "Handle"}, "Timeout": "120", "Count": "1"}},
    },
    "Outputs": {"Url": {"Value": {"Ref": "Handle"}}, "Data": {"Value": {"Fn::GetAtt": ["Wait", "Data"]}}},
}


def test_cloudformation_wait_condition_with_its_presigned_url(cloud) -> None:
    made = create(cloud.member, "cfn", CFN)
    sid = made["id"]
    step(sid)
    url = row(sid, "Handle").physical_id
    assert "/orchestration/v1/signal/" in url and "?token=" in url and len(url) <= 255
    assert step(sid) == states.CREATE_IN_PROGRESS
    # cfn-signal's request: a PUT with an empty Content-Type and the four keys
    body = json.dumps({"Status": "SUCCESS", "Reason": "Configuration complete", "UniqueId": "ID1",
                       "Data": "Application has completed configuration."})
    heat_error(guest(url, raw=json.dumps({"status": "SUCCESS"}), method="PUT", content_type=""), 400)
    r = guest(url, raw=body, method="PUT", content_type="")
    assert r.status_code == 200, r.content
    assert run_walk(sid) == states.CREATE_COMPLETE
    outputs = {o["output_key"]: o["output_value"]
               for o in cloud.member.get(f"stacks/cfn/{sid}").json()["stack"]["outputs"]}
    assert outputs["Url"] == url
    assert json.loads(outputs["Data"]) == {"ID1": "Application has completed configuration."}
    meta = cloud.member.get(f"stacks/cfn/{sid}/resources/Handle/metadata").json()["metadata"]
    assert meta == {"ID1": {"Data": "Application has completed configuration.", "Reason": "Configuration complete",
                            "Status": "SUCCESS", "UniqueId": "ID1"}}


def test_signal_and_metadata_api(cloud) -> None:
    made = create(cloud.member, "api", """
heat_template_version: 2018-08-31
parameters:
  colour: {type: string, default: blue}
resources:
  handle:
    type: OS::Heat::WaitConditionHandle
    metadata: {role: {get_param: colour}}
  plain: {type: OS::Heat::None}
""")
    sid = made["id"]
    assert run_walk(sid) == states.CREATE_COMPLETE
    base = f"stacks/api/{sid}/resources"
    # the template's metadata, resolved, until a signal records its own
    assert cloud.member.get(f"{base}/handle/metadata").json() == {"metadata": {"role": "blue"}}
    assert cloud.member.get("stacks/api/resources/plain/metadata").json() == {"metadata": {}}
    # heatclient's signal: POST the details (--data) with the user's token
    r = cloud.member.post(f"{base}/handle/signal", {"status": "SUCCESS", "data": {"k": "v"}, "id": "x"})
    assert r.status_code == 200, r.content
    assert cloud.member.get(f"{base}/handle/metadata").json()["metadata"] == {
        "x": {"data": {"k": "v"}, "reason": "Signal x received", "status": "SUCCESS"}}
    assert cloud.member.post("stacks/api/resources/handle/signal").status_code == 200  # no --data
    assert len(row(sid, "handle").data["signals"]) == 2
    before = Event.objects.count()
    # a resource that takes no signal: Heat's 400; bad details: 400; nothing changes
    heat_error(cloud.member.post(f"{base}/plain/signal", {}), 400, "ResourceActionNotSupported")
    heat_error(cloud.member.post(f"{base}/handle/signal", raw=b"{not json"), 400)
    heat_error(cloud.member.post(f"{base}/handle/signal", ["a"]), 400, "SignalFailed")
    heat_error(cloud.member.post(f"{base}/handle/signal", {"colour": "red"}), 400, "SignalFailed")
    heat_error(cloud.member.post(f"{base}/nope/signal", {}), 404)
    heat_error(cloud.member.get(f"{base}/nope/metadata"), 404)
    # a reader may not signal; another project sees no such stack
    heat_error(cloud.reader.post(f"{base}/handle/signal", {}), 403)
    other = f"/orchestration/v1/{cloud.other_project.id}/stacks/api/{sid}/resources/handle"
    heat_error(cloud.other.post(f"{other}/signal", {}), 404)
    heat_error(cloud.other.get(f"{other}/metadata"), 404)
    assert Event.objects.count() == before and len(row(sid, "handle").data["signals"]) == 2


def test_software_configs_are_the_owners_software_configs(cloud) -> None:
    made = create(cloud.member, "configs", """
heat_template_version: 2018-08-31
resources:
  script:
    type: OS::Heat::SoftwareConfig
    properties:
      group: script
      config: |
        #!/bin/sh
        echo hello > /tmp/hello
      inputs: [{name: who, default: world}]
      outputs: [{name: result}]
  structured:
    type: OS::Heat::StructuredConfig
    properties: {config: {packages: [nginx], port: 80}}
  cloudinit:
    type: OS::Heat::CloudConfig
    properties:
      cloud_config:
        packages: [nginx]
        runcmd: [[systemctl, start, nginx]]
  mime:
    type: OS::Heat::MultipartMime
    properties:
      parts:
        - config: {get_resource: cloudinit}
        - config: {get_resource: script}
          filename: hello.sh
        - config: "just some text"
          subtype: plain
outputs:
  mime: {value: {get_attr: [mime, config]}}
  script_id: {value: {get_resource: script}}
""")
    sid = made["id"]
    assert run_walk(sid) == states.CREATE_COMPLETE
    script = row(sid, "script")
    assert script.attributes["config"].startswith("#!/bin/sh") and script.attributes["group"] == "script"
    assert script.attributes["inputs"] == [{"name": "who", "type": "String", "default": "world",
                                           "replace_on_change": False}]
    assert row(sid, "structured").attributes["config"] == {"packages": ["nginx"], "port": 80}
    cloud_config = row(sid, "cloudinit").attributes["config"]
    assert cloud_config.startswith("#cloud-config\n")
    assert yaml.safe_load(cloud_config) == {"packages": ["nginx"], "runcmd": [["systemctl", "start", "nginx"]]}

    outputs = {o["output_key"]: o["output_value"]
               for o in cloud.member.get(f"stacks/configs/{sid}").json()["stack"]["outputs"]}
    message = message_from_string(outputs["mime"])
    assert message.is_multipart()
    parts = message.get_payload()
    assert [p.get_content_type() for p in parts] == ["text/cloud-config", "text/x-shellscript", "text/plain"]
    assert parts[0].get_payload(decode=True).decode() == cloud_config
    assert parts[1].get_filename() == "hello.sh" and "echo hello" in parts[1].get_payload(decode=True).decode()
    assert parts[2].get_payload(decode=True).decode() == "just some text"

    # each is a software config of the owner's project (what a server's SOFTWARE_CONFIG user_data reads)
    shown = cloud.member.get(f"software_configs/{outputs['script_id']}")
    assert shown.status_code == 200, shown.content
    config = shown.json()["software_config"]
    assert config["config"] == script.attributes["config"] and config["group"] == "script"
    assert config["inputs"][0]["name"] == "who" and config["outputs"] == [{"name": "result", "type": "String",
                                                                         "error_output": False}]
    structured = cloud.member.get(f"software_configs/{row(sid, 'structured').physical_id}").json()
    assert json.loads(structured["software_config"]["config"]) == {"packages": ["nginx"], "port": 80}
    heat_error(cloud.other.get(f"/orchestration/v1/{cloud.other_project.id}/software_configs/"
                               f"{outputs['script_id']}"), 404)
    # a server given the MultipartMime's id as user_data (SOFTWARE_CONFIG or RAW) boots with the message
    from apps.orchestration.plugins.nova import software_config_text

    mime_id = row(sid, "mime").physical_id
    assert software_config_text(cloud.member_actor, mime_id, "SOFTWARE_CONFIG") == outputs["mime"]
    assert software_config_text(cloud.other_actor, mime_id, "RAW") == mime_id
    ids = [r.physical_id for r in StackResource.objects.filter(stack_id=sid)]
    assert SoftwareConfig.objects.filter(pk__in=ids).count() == 4
    # the stack's delete deletes them (one already gone is fine)
    SoftwareConfig.objects.filter(pk=row(sid, "structured").physical_id).delete()
    assert cloud.member.delete(f"stacks/configs/{sid}").status_code == 204
    assert run_walk(sid) == states.DELETE_COMPLETE
    assert not SoftwareConfig.objects.filter(pk__in=ids).exists()


def test_multipart_refuses_a_subtype_that_could_inject_headers(cloud) -> None:
    made = create(cloud.member, "inject", {
        "heat_template_version": "2018-08-31",
        "resources": {"mime": {"type": "OS::Heat::MultipartMime", "properties": {
            "parts": [{"config": "x", "subtype": "plain\nX-Evil: 1"}]}}}})
    assert run_walk(made["id"]) == states.CREATE_FAILED
    assert "Invalid MIME subtype" in row(made["id"], "mime").status_reason
