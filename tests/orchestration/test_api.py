"""Heat v1 API in-process (DRF client): stacks create/list/show/lookup/delete/preview, template,
environment, outputs, resources, events; validate; resource types; template versions; Heat's error
format for bad input; another project's stack answers 404; lists cost a constant number of queries.
The engine's walk itself runs in a real worker (tests/workers/test_orchestration.py); here the steps
are called as the worker would, through the services."""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from apps.orchestration import services, states
from apps.orchestration.models import Event, Stack, StackResource

pytestmark = pytest.mark.django_db


@pytest.fixture
def cloud_api() -> str:
    return "orchestration"


CHAIN = """
heat_template_version: 2018-08-31
description: a chain
parameters:
  length: {type: number, default: 12}
  secret: {type: string, hidden: true, default: s3cret}
resources:
  first: {type: OS::Heat::None}
  pw:
    type: OS::Heat::RandomString
    depends_on: first
    properties: {length: {get_param: length}}
  echo:
    type: OS::Heat::TestResource
    properties: {value: {get_attr: [pw, value]}}
outputs:
  password: {value: {get_attr: [pw, value]}, description: the password}
  echoed: {value: {get_attr: [echo, output]}}
"""


def run_walk(stack_id: str) -> str:
    """What the control worker does, in process: each level's resource tasks, until nothing is pending."""
    from workers import orchestration as tasks

    state = services.stack_advance(stack_id=stack_id)
    for _ in range(100):
        todo = StackResource.objects.filter(stack_id=stack_id, state__endswith="_IN_PROGRESS")
        if not todo.exists():
            break
        for row in todo:
            tasks.resource_run(row.id)
        state = Stack.objects.get(pk=stack_id).state
    return state


def heat_error(response: Any, status: int, kind: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:500])
    body = response.json()
    assert body["code"] == status and body["title"] and body["explanation"]
    assert set(body["error"]) == {"type", "message", "traceback"} and body["error"]["traceback"] is None
    if kind is not None:
        assert body["error"]["type"] == kind, body
    return body


def delete_by_name(client: Any, name: str) -> None:
    """``DELETE /stacks/{name}``: Heat's lookup answers 302 to /stacks/{name}/{id}, which deletes."""
    r = client.delete(f"stacks/{name}")
    assert r.status_code == 302 and f"/stacks/{name}/" in r["Location"], (r.status_code, r.content[:300])
    assert client.delete(urlsplit(r["Location"]).path).status_code == 204


def create(client: Any, name: str = "web", template: Any = CHAIN, **extra: Any) -> dict:
    r = client.post("stacks", {"stack_name": name, "template": template, **extra})
    assert r.status_code == 201, r.content[:800]
    return r.json()["stack"]


def test_create_walk_show_outputs_resources_events(cloud, django_capture_on_commit_callbacks) -> None:
    made = create(cloud.member, parameters={"length": 20}, timeout_mins=5, disable_rollback=False, tags="a,b")
    assert made["links"][0]["href"].endswith(f"/stacks/web/{made['id']}")
    stack = Stack.objects.get(pk=made["id"])
    assert stack.state == states.CREATE_IN_PROGRESS and stack.tags == ["a", "b"]
    assert [(r.name, r.level) for r in stack.resources.order_by("level")] == [("first", 0), ("pw", 1), ("echo", 2)]
    assert run_walk(stack.id) == states.CREATE_COMPLETE

    # the lookup: by name or id, a 302 to /stacks/{name}/{id}
    for ref in ("web", made["id"]):
        r = cloud.member.get(f"stacks/{ref}")
        assert r.status_code == 302 and r["Location"].endswith(f"/stacks/web/{made['id']}")
    shown = cloud.member.get(f"stacks/web/{made['id']}").json()["stack"]
    assert shown["stack_status"] == "CREATE_COMPLETE" and shown["disable_rollback"] is False
    assert shown["parameters"]["length"] == "20" and shown["parameters"]["secret"] == "******"
    assert shown["parameters"]["OS::stack_id"] == made["id"]
    outputs = {o["output_key"]: o["output_value"] for o in shown["outputs"]}
    assert len(outputs["password"]) == 20 and outputs["echoed"] == outputs["password"]
    assert cloud.member.get(f"stacks/web/{made['id']}/outputs/password").json()["output"]["output_value"] == \
        outputs["password"]
    assert sorted(o["output_key"] for o in cloud.member.get("stacks/web/outputs").json()["outputs"]) == \
        ["echoed", "password"]
    heat_error(cloud.member.get(f"stacks/web/{made['id']}/outputs/nope"), 404)
    assert cloud.member.get("stacks/web/template").json()["resources"]["pw"]["type"] == "OS::Heat::RandomString"
    assert cloud.member.get("stacks/web/environment").json()["parameters"] == {}

    resources = cloud.member.get("stacks/web/resources").json()["resources"]
    assert {r["resource_name"]: r["resource_status"] for r in resources} == {
        "first": "CREATE_COMPLETE", "pw": "CREATE_COMPLETE", "echo": "CREATE_COMPLETE"}
    pw = cloud.member.get(f"stacks/web/{made['id']}/resources/pw").json()["resource"]
    assert pw["physical_resource_id"] == outputs["password"] and pw["required_by"] == ["echo"]
    assert pw["attributes"]["value"] == outputs["password"]

    events = cloud.member.get("stacks/web/events?sort_dir=asc").json()["events"]
    flow = [(e["resource_name"], e["resource_status"]) for e in events]
    assert flow[0] == ("web", "CREATE_IN_PROGRESS") and flow[-1] == ("web", "CREATE_COMPLETE")
    assert ("pw", "CREATE_IN_PROGRESS") in flow and flow.index(("first", "CREATE_COMPLETE")) < flow.index(
        ("pw", "CREATE_IN_PROGRESS"))
    assert events[-1]["physical_resource_id"] == made["id"]
    after = cloud.member.get(f"stacks/web/events?sort_dir=asc&marker={events[2]['id']}&limit=2").json()["events"]
    assert [e["id"] for e in after] == [e["id"] for e in events[3:5]]
    latest = cloud.member.get("stacks/web/events?sort_dir=desc&limit=1").json()["events"]
    assert latest[0]["id"] == events[-1]["id"]
    only_pw = cloud.member.get("stacks/web/resources/pw/events").json()["events"]
    assert {e["resource_name"] for e in only_pw} == {"pw"} and len(only_pw) == 2
    one = cloud.member.get(f"stacks/web/{made['id']}/resources/pw/events/{only_pw[0]['id']}").json()["event"]
    assert one["resource_type"] == "OS::Heat::RandomString"

    # delete: reverse order, then the stack is gone by name (shown by id as DELETE_COMPLETE)
    assert cloud.member.delete(f"stacks/web/{made['id']}").status_code == 204
    assert run_walk(stack.id) == states.DELETE_COMPLETE
    deletes = [e.resource_name for e in Event.objects.filter(stack_id=stack.id, state="DELETE_IN_PROGRESS")]
    assert deletes == ["web", "echo", "pw", "first"]
    heat_error(cloud.member.get("stacks/web"), 404, "EntityNotFound")
    assert cloud.member.get(f"stacks/web/{made['id']}").json()["stack"]["stack_status"] == "DELETE_COMPLETE"
    assert cloud.member.get("stacks").json()["stacks"] == []
    create(cloud.member)  # the name is free again


def test_failure_rolls_back_unless_disabled(cloud) -> None:
    failing = """
heat_template_version: 2016-10-14
resources:
  ok: {type: OS::Heat::None}
  bad: {type: OS::Heat::TestResource, properties: {fail: true}, depends_on: ok}
  never: {type: OS::Heat::None, depends_on: bad}
"""
    rolled = create(cloud.member, "rolled", failing, disable_rollback=False)
    assert run_walk(rolled["id"]) == states.ROLLBACK_COMPLETE
    flow = [(e.resource_name, e.state) for e in Event.objects.filter(stack_id=rolled["id"])]
    assert ("bad", "CREATE_FAILED") in flow and ("rolled", "CREATE_FAILED") in flow
    assert ("ok", "DELETE_COMPLETE") in flow and ("never", "CREATE_IN_PROGRESS") not in flow
    assert flow[-1] == ("rolled", "ROLLBACK_COMPLETE")
    assert not StackResource.objects.filter(stack_id=rolled["id"]).exists()

    kept = create(cloud.member, "kept", failing)  # disable_rollback defaults to true (heatclient's default)
    assert run_walk(kept["id"]) == states.CREATE_FAILED
    shown = cloud.member.get(f"stacks/kept/{kept['id']}").json()["stack"]
    assert "Test Resource failed bad" in shown["stack_status_reason"]
    rows = {r.name: r.state for r in StackResource.objects.filter(stack_id=kept["id"])}
    assert rows == {"ok": "CREATE_COMPLETE", "bad": "CREATE_FAILED", "never": "INIT_COMPLETE"}
    delete_by_name(cloud.member, "kept")
    assert run_walk(kept["id"]) == states.DELETE_COMPLETE


def test_timeout_fails_a_stuck_stack(cloud) -> None:
    from datetime import timedelta

    from django.utils import timezone

    made = create(cloud.member, "slow", """
heat_template_version: 2016-10-14
resources:
  wait: {type: OS::Heat::TestResource, properties: {wait_secs: -1}}
""", timeout_mins=1)
    services.stack_advance(stack_id=made["id"])
    assert services.stacks_timeout() == 0
    assert services.stacks_timeout(now=timezone.now() + timedelta(minutes=2)) == 1
    stack = Stack.objects.get(pk=made["id"])
    assert stack.state == states.CREATE_FAILED and stack.status_reason == "Create timed out"
    row = stack.resources.get()
    assert row.state == states.CREATE_FAILED and "timed out" in row.status_reason
    assert services.resource_done(resource_id=row.id, ok=True) == states.CREATE_FAILED  # a late report: nothing
    assert Stack.objects.get(pk=made["id"]).pending == 0


@pytest.mark.parametrize(("body", "kind", "words"), [
    ({"stack_name": "1bad", "template": CHAIN}, "StackValidationFailed", "Invalid stack name"),
    ({"template": CHAIN}, "BadRequest", "No stack name"),
    ({"stack_name": "x"}, "InvalidTemplateFormat", "No template"),
    ({"stack_name": "x", "template": "heat_template_version: 2099-01-01\n"}, "InvalidTemplateVersion", "version"),
    ({"stack_name": "x", "template": "{bad"}, None, ""),
    ({"stack_name": "x", "template": {"heat_template_version": "2016-10-14",
                                      "resources": {"a": {"type": "OS::Nope::Thing"}}}},
     "ResourceTypeNotFound", "OS::Nope::Thing"),
    ({"stack_name": "x", "template": {"heat_template_version": "2016-10-14",
                                      "resources": {"a": {"type": "OS::Heat::RandomString",
                                                          "properties": {"length": "many"}}}}},
     "StackValidationFailed", "length"),
    ({"stack_name": "x", "template": {"heat_template_version": "2016-10-14",
                                      "resources": {"a": {"type": "OS::Heat::Value", "properties": {"colour": 1}}}}},
     "StackValidationFailed", "Unknown Property colour"),
    ({"stack_name": "x", "template": CHAIN, "parameters": {"nope": 1}}, "UnknownUserParameter", "nope"),
    ({"stack_name": "x", "template": CHAIN, "parameters": {"length": "abc"}}, "InvalidParameterValue", "length"),
    ({"stack_name": "x", "template": {"heat_template_version": "2016-10-14", "resources": {
        "a": {"type": "OS::Heat::None", "depends_on": "b"}, "b": {"type": "OS::Heat::None", "depends_on": "a"}}}},
     "CircularDependency", "Circular"),
    ({"stack_name": "x", "template": CHAIN, "timeout_mins": -3}, "BadRequest", "timeout"),
])
def test_bad_input_in_heats_format_changes_nothing(cloud, body: dict, kind: str | None, words: str) -> None:
    r = cloud.member.post("stacks", body)
    error = heat_error(r, 400, kind)
    assert words.lower() in error["error"]["message"].lower()
    assert not Stack.objects.exists() and not Event.objects.exists()


def test_duplicate_name_quota_and_roles(cloud) -> None:
    from apps.identity import services as identity

    create(cloud.member, "dup")
    heat_error(cloud.member.post("stacks", {"stack_name": "dup", "template": CHAIN}), 409, "StackExists")
    create(cloud.other, "dup")  # another project may use the name
    identity.quota_set(actor=cloud.admin_actor, project_id=cloud.demo_project.id, limits={"stacks": 1})
    error = heat_error(cloud.member.post("stacks", {"stack_name": "more", "template": CHAIN}), 400,
                       "RequestLimitExceeded")
    assert "maximum stacks" in error["error"]["message"]
    heat_error(cloud.reader.post("stacks", {"stack_name": "r", "template": CHAIN}), 403)
    assert Stack.objects.filter(project=cloud.demo_project).count() == 1


def test_another_projects_stack_is_not_found(cloud) -> None:
    made = create(cloud.member, "mine")
    sid = made["id"]
    for path in (f"stacks/mine/{sid}", f"stacks/{sid}", "stacks/mine", f"stacks/mine/{sid}/resources",
                 f"stacks/mine/{sid}/events", f"stacks/{sid}/template", f"stacks/{sid}/outputs",
                 f"stacks/mine/{sid}/resources/pw", f"stacks/{sid}/environment"):
        heat_error(cloud.other.get(path), 404)
    heat_error(cloud.other.delete(f"stacks/mine/{sid}"), 404)
    heat_error(cloud.other.delete(f"stacks/{sid}"), 404)
    assert cloud.other.get("stacks").json()["stacks"] == []
    assert cloud.other.get(f"stacks?id={sid}").json()["stacks"] == []
    heat_error(cloud.other.get(f"stacks?marker={sid}"), 404)
    # the URL's project must be the token's
    heat_error(cloud.other.get(f"/orchestration/v1/{cloud.demo_project.id}/stacks"), 404)
    assert Stack.objects.get(pk=sid).state == states.CREATE_IN_PROGRESS
    assert cloud.admin.get(f"stacks?global_tenant=true&id={sid}").json()["stacks"][0]["id"] == sid
    heat_error(cloud.member.get("stacks?global_tenant=true"), 400)


def test_list_filters_sort_page_and_constant_queries(cloud, django_assert_max_num_queries) -> None:
    ids = [create(cloud.member, f"s{i}", tags="even" if i % 2 == 0 else "odd")["id"] for i in range(6)]
    with django_assert_max_num_queries(8):
        everything = cloud.member.get("stacks").json()["stacks"]
    assert [s["id"] for s in everything] == ids[::-1]  # newest first
    with django_assert_max_num_queries(8):
        assert len(cloud.member.get("stacks?limit=30").json()["stacks"]) == 6
    asc = cloud.member.get("stacks?sort_keys=stack_name&sort_dir=asc").json()["stacks"]
    assert [s["stack_name"] for s in asc] == [f"s{i}" for i in range(6)]
    page = cloud.member.get(f"stacks?sort_keys=stack_name&sort_dir=asc&limit=2&marker={ids[1]}").json()["stacks"]
    assert [s["stack_name"] for s in page] == ["s2", "s3"]
    assert [s["stack_name"] for s in cloud.member.get("stacks?name=s3").json()["stacks"]] == ["s3"]
    assert len(cloud.member.get("stacks?tags=even").json()["stacks"]) == 3
    assert len(cloud.member.get("stacks?not_tags=even").json()["stacks"]) == 3
    assert len(cloud.member.get("stacks?status=IN_PROGRESS&action=CREATE").json()["stacks"]) == 6
    assert cloud.member.get("stacks?status=COMPLETE").json()["stacks"] == []
    heat_error(cloud.member.get("stacks?sort_keys=password"), 400)
    heat_error(cloud.member.get("stacks?sort_dir=up"), 400)
    heat_error(cloud.member.get("stacks?limit=x"), 400)
    heat_error(cloud.member.get("stacks?marker=nothing"), 404)
    run_walk(ids[0])
    with django_assert_max_num_queries(8):
        events = cloud.member.get("stacks/s0/events").json()["events"]
    assert len(events) == 8  # the stack's 2 and 2 for each of its 3 resources
    with django_assert_max_num_queries(8):
        assert len(cloud.member.get("stacks/s0/resources").json()["resources"]) == 3


def test_preview_validate_types_versions(cloud) -> None:
    preview = cloud.member.post("stacks/preview", {"stack_name": "p", "template": CHAIN}).json()["stack"]
    assert [r["resource_name"] for r in preview["resources"]] == ["first", "pw", "echo"]
    assert preview["resources"][1]["properties"]["length"] == 12
    assert not Stack.objects.exists()

    valid = cloud.member.post("validate", {"template": CHAIN}).json()
    assert valid["Description"] == "a chain"
    assert valid["Parameters"]["length"]["Type"] == "Number" and valid["Parameters"]["secret"]["NoEcho"] == "true"
    heat_error(cloud.member.post("validate", {"template": {"heat_template_version": "2016-10-14",
                                                           "resources": {"a": {"type": "OS::Heat::None",
                                                                               "depends_on": "zz"}}}}),
               400, "InvalidTemplateReference")
    heat_error(cloud.member.post("validate", {}), 400)

    types = cloud.member.get("resource_types").json()["resource_types"]
    assert {"OS::Heat::None", "OS::Heat::RandomString", "OS::Heat::TestResource", "OS::Heat::Value"} <= set(types)
    schema = cloud.member.get("resource_types/OS::Heat::RandomString").json()
    assert schema["properties"]["length"]["default"] == 32 and "value" in schema["attributes"]
    assert schema["properties"]["salt"]["update_allowed"] is False  # Heat: a changed salt replaces it
    heat_error(cloud.member.get("resource_types/OS::Nope::X"), 404)
    tmpl = cloud.member.get("resource_types/OS::Heat::Value/template").json()
    assert "value" in tmpl["parameters"]

    versions = {v["version"] for v in cloud.member.get("template_versions").json()["template_versions"]}
    assert "heat_template_version.2018-08-31" in versions and "AWSTemplateFormatVersion.2010-09-09" in versions
    functions = cloud.member.get("template_versions/heat_template_version.2016-10-14/functions").json()
    assert "get_attr" in {f["functions"] for f in functions["template_functions"]}
    heat_error(cloud.member.get("template_versions/heat_template_version.1999-01-01/functions"), 404)
    heat_error(cloud.anonymous.get("stacks"), 401)
    r = cloud.member.get("/orchestration")
    assert r.status_code == 300 and r.json()["versions"][0]["id"] == "v1.0"


def test_body_limit_is_heats(cloud) -> None:
    """A template of 300 KiB is taken (over the other APIs' 112 KiB); a body over 1 MiB is Heat's 413."""
    big = {"heat_template_version": "2016-10-14", "description": "x" * (300 * 1024),
           "resources": {"n": {"type": "OS::Heat::None"}}}
    assert cloud.member.post("validate", {"template": big}).status_code == 200
    big["description"] = "x" * (1 << 20)
    heat_error(cloud.member.post("stacks", {"stack_name": "big", "template": big}), 413)
    assert not Stack.objects.exists()


def test_validate_needs_no_parameter_values_and_create_says_where(cloud) -> None:
    """Heat's template-validate checks a template whose parameters have no value yet (a create still
    needs them); a create's 201 carries the stack's address in Location (heat-tempest-plugin polls it)."""
    template = {"heat_template_version": "2016-04-08", "parameters": {"test_val": {"type": "string"}},
                "resources": {"test": {"type": "OS::Heat::TestResource", "properties": {
                    "value": {"get_param": "test_val"}}}},
                "outputs": {"output_value": {"value": {"get_attr": ["test", "output"]}}}}
    r = cloud.member.post("validate", {"template": template})
    assert r.status_code == 200, r.content[:500]
    assert r.json()["Parameters"]["test_val"]["Type"] == "String" and "Value" not in r.json()["Parameters"]["test_val"]
    heat_error(cloud.member.post("stacks", {"stack_name": "novalue", "template": template}), 400,
               "UserParameterMissing")
    r = cloud.member.post("stacks", {"stack_name": "valued", "template": template, "parameters": {"test_val": "x"}})
    assert r.status_code == 201 and r["Location"].endswith(f"/stacks/valued/{r.json()['stack']['id']}")


def test_mark_unhealthy_then_the_update_replaces_it(cloud) -> None:
    """Heat's resource mark-unhealthy: CHECK_FAILED with the caller's reason and an event; marked healthy
    again; bad input a 400, a reader 403, another project 404; the next update replaces what is unhealthy."""
    template = {"heat_template_version": "2016-04-08", "resources": {"pw": {"type": "OS::Heat::RandomString"}}}
    made = create(cloud.member, "marked", template)
    assert run_walk(made["id"]) == states.CREATE_COMPLETE
    url = f"stacks/marked/{made['id']}/resources/pw"
    before = cloud.member.get(url).json()["resource"]["physical_resource_id"]
    heat_error(cloud.member.patch(url, {"resource_status_reason": "x"}), 400)
    heat_error(cloud.member.patch(url, {"mark_unhealthy": "maybe"}), 400)
    heat_error(cloud.reader.patch(url, {"mark_unhealthy": True}), 403)
    heat_error(cloud.other.patch(url, {"mark_unhealthy": True}), 404)
    assert StackResource.objects.get(stack_id=made["id"], name="pw").state == states.CREATE_COMPLETE
    assert cloud.member.patch(url, {"mark_unhealthy": True, "resource_status_reason": "disk gone"}).status_code == 200
    shown = cloud.member.get(url).json()["resource"]
    assert (shown["resource_status"], shown["resource_status_reason"]) == ("CHECK_FAILED", "disk gone")
    assert cloud.member.get(f"stacks/marked/{made['id']}/resources/pw/events").json()["events"][-1][
        "resource_status"] == "CHECK_FAILED"
    assert cloud.member.patch(url, {"mark_unhealthy": False}).status_code == 200
    assert cloud.member.get(url).json()["resource"]["resource_status"] == "CHECK_COMPLETE"
    assert cloud.member.patch(url, {"mark_unhealthy": True}).status_code == 200
    # the next update (nothing changed in the template) replaces the unhealthy resource
    r = cloud.member.patch(f"stacks/marked/{made['id']}", {})
    assert r.status_code == 202, r.content[:300]
    assert run_walk(made["id"]) == states.UPDATE_COMPLETE
    after = cloud.member.get(url).json()["resource"]
    assert after["resource_status"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE")
    assert after["physical_resource_id"] != before
