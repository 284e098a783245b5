"""Nested stacks in-process (the walk's steps called as the control worker would): provider templates
from ``files`` and from the environment's resource_registry, OS::Heat::Stack with get_file, the child a
real Stack row with its parent (``stack list --nested``, ``resource list --nested-depth``), its outputs
the resource's attributes, deleted with its parent; the depth limit and the tree's resource limit are
400s; a failing child fails (and rolls back) its parent."""
from __future__ import annotations

from typing import Any

import pytest

from apps.orchestration import nested, services, states
from apps.orchestration.models import Event, Stack, StackResource
from tests.orchestration.test_api import create, heat_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def cloud_api() -> str:
    return "orchestration"


def drive(stack_id: str, until: set[str], rounds: int = 60) -> Stack:
    """What the control worker does, in process, for a stack and every stack nested in it: start the
    walks with nothing pending, run every resource task in progress (a nested resource's check included),
    until ``stack_id`` is in one of ``until`` (and nothing of its tree is in progress)."""
    from workers import orchestration as tasks

    for _ in range(rounds):
        for sid in Stack.objects.filter(pending=0, state__endswith="_IN_PROGRESS").values_list("pk", flat=True):
            services.stack_advance(stack_id=sid)
        busy = list(StackResource.objects.filter(state__endswith="_IN_PROGRESS").values_list("pk", flat=True))
        for rid in busy:
            tasks.resource_run(rid)
        stack = Stack.objects.get(pk=stack_id)
        if stack.state in until and not busy and not Stack.objects.filter(state__endswith="_IN_PROGRESS").exists():
            return stack
    raise AssertionError(f"stack {stack_id} is {Stack.objects.get(pk=stack_id).state}")


PAIR = """
heat_template_version: 2018-08-31
parameters:
  prefix: {type: string}
  length: {type: number, default: 6}
resources:
  pw: {type: OS::Heat::RandomString, properties: {length: {get_param: length}}}
  label:
    type: OS::Heat::Value
    properties: {value: {list_join: ['-', [{get_param: prefix}, {get_attr: [pw, value]}]]}}
outputs:
  label: {value: {get_attr: [label, value]}}
  size: {value: {get_param: length}}
"""

PARENT = """
heat_template_version: 2018-08-31
resources:
  pair: {type: pair.yaml, properties: {prefix: web, length: 9}}
  after:
    type: OS::Heat::Value
    properties: {value: {get_attr: [pair, label]}}
outputs:
  label: {value: {get_attr: [pair, label]}}
  all: {value: {get_attr: [pair, outputs]}}
  size: {value: {get_attr: [pair, outputs, size]}}
  after: {value: {get_attr: [after, value]}}
"""


def outputs_of(stack: Stack) -> dict[str, Any]:
    stack.refresh_from_db()
    return {o["output_key"]: o["output_value"] for o in services.stack_outputs(stack)}


def test_provider_template_from_files_outputs_nested_lists_and_delete(cloud) -> None:
    made = create(cloud.member, "outer", PARENT, files={"pair.yaml": PAIR})
    done = drive(made["id"], {states.CREATE_COMPLETE, states.CREATE_FAILED})
    assert done.state == states.CREATE_COMPLETE, done.status_reason
    row = StackResource.objects.get(stack=done, name="pair")
    child = Stack.objects.get(pk=row.physical_id)
    assert child.parent_id == done.id and child.state == states.CREATE_COMPLETE
    assert child.parameters == {"prefix": "web", "length": 9} and row.type == "pair.yaml"
    label = StackResource.objects.get(stack=child, name="label").attributes["value"]
    assert label.startswith("web-") and len(label) == 4 + 9
    values = outputs_of(done)
    assert values == {"label": label, "all": {"label": label, "size": 9}, "size": 9, "after": label}

    # the child is in `stack list --nested` only, and in `resource list --nested-depth`
    listed = [s["id"] for s in cloud.member.get("stacks").json()["stacks"]]
    assert done.id in listed and child.id not in listed
    with_nested = {s["id"]: s for s in cloud.member.get("stacks?show_nested=true").json()["stacks"]}
    assert with_nested[child.id]["parent"] == done.id
    flat = cloud.member.get(f"stacks/outer/{done.id}/resources").json()["resources"]
    assert {r["resource_name"] for r in flat} == {"pair", "after"}
    deep = cloud.member.get(f"stacks/outer/{done.id}/resources?nested_depth=2").json()["resources"]
    assert {r["resource_name"] for r in deep} == {"pair", "after", "pw", "label"}
    inner = next(r for r in deep if r["resource_name"] == "pw")
    assert inner["parent_resource"] == "pair" and inner["stack_name"] == child.name
    shown = cloud.member.get(f"stacks/outer/{done.id}/resources/pair").json()["resource"]
    assert shown["attributes"] == {"label": label, "size": 9}  # a provider template's outputs
    assert any(link["rel"] == "nested" and link["href"].endswith(f"/stacks/{child.id}") for link in shown["links"])
    events = cloud.member.get(f"stacks/outer/{done.id}/events?nested_depth=1").json()["events"]
    assert any(e["resource_name"] == "pw" and e["resource_status"] == "CREATE_COMPLETE" for e in events)

    assert cloud.member.delete(f"stacks/outer/{done.id}").status_code == 204
    gone = drive(done.id, {states.DELETE_COMPLETE, states.DELETE_FAILED})
    assert gone.state == states.DELETE_COMPLETE
    child.refresh_from_db()
    assert child.state == states.DELETE_COMPLETE and child.deleted_at is not None
    assert set(StackResource.objects.filter(stack=child).values_list("state", flat=True)) == {states.DELETE_COMPLETE}


def test_provider_template_from_resource_registry_and_stack_with_get_file(cloud) -> None:
    template = """
heat_template_version: 2018-08-31
resources:
  mapped: {type: My::Pair, properties: {prefix: reg}}
  inline:
    type: OS::Heat::Stack
    properties:
      template: {get_file: pair.yaml}
      parameters: {prefix: inl, length: 4}
      timeout: 7
outputs:
  mapped: {value: {get_attr: [mapped, label]}}
  inline: {value: {get_attr: [inline, outputs, label]}}
  inline_id: {value: {get_resource: inline}}
"""
    made = create(cloud.member, "reg", template, files={"pair.yaml": PAIR},
                  environment={"resource_registry": {"My::Pair": "pair.yaml"}})
    done = drive(made["id"], {states.CREATE_COMPLETE, states.CREATE_FAILED})
    assert done.state == states.CREATE_COMPLETE, done.status_reason
    values = outputs_of(done)
    assert values["mapped"].startswith("reg-") and len(values["mapped"]) == 4 + 6
    assert values["inline"].startswith("inl-") and len(values["inline"]) == 4 + 4
    inline = Stack.objects.get(pk=values["inline_id"])
    assert inline.parent_id == done.id and inline.timeout_mins == 7
    mapped = StackResource.objects.get(stack=done, name="mapped")
    assert mapped.type == "My::Pair" and Stack.objects.get(pk=mapped.physical_id).parent_id == done.id
    # the child inherits the registry (a provider template may use the mapped type itself)
    assert Stack.objects.get(pk=mapped.physical_id).environment == {"resource_registry": {"My::Pair": "pair.yaml"}}


def test_unknown_property_of_a_provider_template_fails_the_parent(cloud) -> None:
    made = create(cloud.member, "badprop", """
heat_template_version: 2018-08-31
resources:
  pair: {type: pair.yaml, properties: {prefix: x, colour: red}}
""", files={"pair.yaml": PAIR}, disable_rollback=False)
    done = drive(made["id"], {states.ROLLBACK_COMPLETE, states.ROLLBACK_FAILED, states.CREATE_COMPLETE,
                              states.CREATE_FAILED})
    assert done.state == states.ROLLBACK_COMPLETE
    failed = Event.objects.get(stack=done, resource_name="pair", state="CREATE_FAILED").reason
    assert "colour" in failed


def test_failing_child_fails_the_parent_which_rolls_back_the_child(cloud) -> None:
    bad = """
heat_template_version: 2018-08-31
resources:
  ok: {type: OS::Heat::None}
  boom: {type: OS::Heat::TestResource, depends_on: ok, properties: {fail: true}}
"""
    made = create(cloud.member, "parentfail", """
heat_template_version: 2018-08-31
resources:
  kid: {type: OS::Heat::Stack, properties: {template: {get_file: bad.yaml}}}
""", files={"bad.yaml": bad}, disable_rollback=False)
    done = drive(made["id"], {states.ROLLBACK_COMPLETE, states.ROLLBACK_FAILED, states.CREATE_COMPLETE})
    assert done.state == states.ROLLBACK_COMPLETE
    reason = Event.objects.get(stack=done, resource_name="kid", state="CREATE_FAILED").reason
    assert "resources.kid" in reason and "boom" in reason
    child = Stack.objects.get(parent=done)
    assert child.state == states.DELETE_COMPLETE  # the rollback deleted the failed child


def test_recursion_past_the_depth_limit_is_a_400_and_nothing_is_made(cloud) -> None:
    loop = """
heat_template_version: 2018-08-31
resources:
  again: {type: loop.yaml}
"""
    before = Stack.objects.count()
    r = cloud.member.post("stacks", {"stack_name": "loop", "template": loop, "files": {"loop.yaml": loop}})
    body = heat_error(r, 400, "RequestLimitExceeded")
    assert "Recursion depth exceeds 5" in body["error"]["message"]
    assert Stack.objects.count() == before

    # five levels are allowed: a chain of files l1 -> l2 -> ... -> l5
    files = {f"l{i}.yaml": f"heat_template_version: 2018-08-31\nresources:\n  next: {{type: l{i + 1}.yaml}}\n"
             for i in range(1, 5)}
    files["l5.yaml"] = "heat_template_version: 2018-08-31\nresources:\n  leaf: {type: OS::Heat::None}\n"
    top = "heat_template_version: 2018-08-31\nresources:\n  first: {type: l1.yaml}\n"
    made = create(cloud.member, "deep", top, files=files)
    done = drive(made["id"], {states.CREATE_COMPLETE, states.CREATE_FAILED})
    assert done.state == states.CREATE_COMPLETE, done.status_reason
    leaf = StackResource.objects.get(name="leaf", stack__deleted_at__isnull=True)
    assert nested.depth_of(leaf.stack) == 5
    # six are not
    files["l5.yaml"] = "heat_template_version: 2018-08-31\nresources:\n  next: {type: l6.yaml}\n"
    files["l6.yaml"] = "heat_template_version: 2018-08-31\nresources:\n  leaf: {type: OS::Heat::None}\n"
    heat_error(cloud.member.post("stacks", {"stack_name": "deeper", "template": top, "files": files}), 400,
               "RequestLimitExceeded")


def test_nested_resources_count_toward_the_per_stack_limit(cloud, settings) -> None:
    settings.STRATUS_MAX_RESOURCES_PER_STACK = 4
    r = cloud.member.post("stacks", {"stack_name": "many", "files": {"pair.yaml": PAIR}, "template": """
heat_template_version: 2018-08-31
resources:
  a: {type: pair.yaml, properties: {prefix: a}}
  b: {type: pair.yaml, properties: {prefix: b}}
"""})
    body = heat_error(r, 400, "RequestLimitExceeded")
    assert "Maximum resources per stack exceeded" in body["error"]["message"]
    made = create(cloud.member, "few", """
heat_template_version: 2018-08-31
resources:
  a: {type: pair.yaml, properties: {prefix: a}}
""", files={"pair.yaml": PAIR})
    assert drive(made["id"], {states.CREATE_COMPLETE, states.CREATE_FAILED}).state == states.CREATE_COMPLETE


def test_missing_provider_file_is_a_400(cloud) -> None:
    r = cloud.member.post("stacks", {"stack_name": "nofile", "template": """
heat_template_version: 2018-08-31
resources:
  a: {type: missing.yaml}
"""})
    assert "missing.yaml" in heat_error(r, 400)["error"]["message"]


def _group_of_pairs(count: int) -> str:
    return f"""
heat_template_version: 2018-08-31
resources:
  pairs:
    type: OS::Heat::ResourceGroup
    properties: {{count: {count}, resource_def: {{type: pair.yaml, properties: {{prefix: p%index%}}}}}}
"""


def test_nested_lists_cost_a_constant_number_of_queries(cloud) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts = {}
    for count in (1, 4):
        made = create(cloud.member, f"q{count}", _group_of_pairs(count), files={"pair.yaml": PAIR})
        done = drive(made["id"], {states.CREATE_COMPLETE})
        queries = []
        for url in (f"stacks/q{count}/{done.id}/resources?nested_depth=3",
                    f"stacks/q{count}/{done.id}/events?nested_depth=3", "stacks?show_nested=true"):
            with CaptureQueriesContext(connection) as ctx:
                r = cloud.member.get(url)
            assert r.status_code == 200, r.content
            queries.append(len(ctx.captured_queries))
        rows = cloud.member.get(f"stacks/q{count}/{done.id}/resources?nested_depth=3").json()["resources"]
        assert len(rows) == 1 + count + 2 * count
        counts[count] = queries
    assert counts[1] == counts[4], counts


def test_check_of_a_nested_resource_looks_into_the_child(cloud) -> None:
    from apps.orchestration.plugins.base import PluginContext, ResourceFailed
    from apps.orchestration.plugins.stacks import TemplateResource

    made = create(cloud.member, "checked", PARENT, files={"pair.yaml": PAIR})
    done = drive(made["id"], {states.CREATE_COMPLETE})
    row = StackResource.objects.get(stack=done, name="pair")
    plugin = TemplateResource(PluginContext(stack_id=done.id, stack_name=done.name, resource_name="pair",
                                            project_id=done.project_id))
    plugin.check_resource(row.physical_id, row.data)  # healthy
    StackResource.objects.filter(stack_id=row.physical_id, name="pw").update(state=states.DELETE_COMPLETE)
    with pytest.raises(ResourceFailed, match="Resource pw is DELETE_COMPLETE"):
        plugin.check_resource(row.physical_id, row.data)
    Stack.objects.filter(pk=row.physical_id).update(state=states.DELETE_COMPLETE)
    with pytest.raises(ResourceFailed, match="gone"):
        plugin.check_resource(row.physical_id, row.data)
