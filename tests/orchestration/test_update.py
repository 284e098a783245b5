"""Stack update (PUT: the new template replaces; PATCH: ``--existing``), its preview, the rollback of a
failed or cancelled update, the stack actions (check, suspend, resume), abandon and adopt — in process:
the API through the DRF client, the walk's steps called as the control worker calls them (run_walk)."""
from __future__ import annotations

import json
from typing import Any

import pytest

from apps.core.models import TaskRecord
from apps.orchestration import services, states
from apps.orchestration.models import Event, Stack, StackResource
from tests.orchestration.test_api import CHAIN, create, heat_error, run_walk

pytestmark = pytest.mark.django_db


@pytest.fixture
def cloud_api() -> str:
    return "orchestration"


V1 = """
heat_template_version: 2018-08-31
parameters:
  v: {type: string, default: one}
  length: {type: number, default: 8}
resources:
  keep: {type: OS::Heat::None}
  val: {type: OS::Heat::Value, properties: {value: {get_param: v}}}
  echo: {type: OS::Heat::TestResource, properties: {value: {get_param: v}}}
  pw: {type: OS::Heat::RandomString, properties: {length: {get_param: length}}}
  gone: {type: OS::Heat::None, depends_on: keep}
outputs:
  val: {value: {get_attr: [val, value]}}
  pw: {value: {get_attr: [pw, value]}}
"""

V2 = """
heat_template_version: 2018-08-31
parameters:
  v: {type: string, default: one}
  length: {type: number, default: 8}
resources:
  keep: {type: OS::Heat::None}
  val: {type: OS::Heat::Value, properties: {value: {get_param: v}}}
  echo: {type: OS::Heat::TestResource, properties: {value: {get_param: v}}}
  pw: {type: OS::Heat::RandomString, properties: {length: {get_param: length}}}
  fresh: {type: OS::Heat::Value, properties: {value: {get_attr: [pw, value]}}}
outputs:
  val: {value: {get_attr: [val, value]}}
  pw: {value: {get_attr: [pw, value]}}
  fresh: {value: {get_attr: [fresh, value]}}
"""


def physical(stack_id: str) -> dict[str, str]:
    return {r.name: r.physical_id for r in StackResource.objects.filter(stack_id=stack_id, retire="")}


def outputs(client: Any, name: str, sid: str) -> dict[str, Any]:
    shown = client.get(f"stacks/{name}/{sid}").json()["stack"]
    return {o["output_key"]: o["output_value"] for o in shown["outputs"]}


def events(sid: str, since: int = 0) -> list[tuple[str, str, str]]:
    return [(e.resource_name, e.state, e.reason) for e in Event.objects.filter(stack_id=sid, seq__gt=since)]


def last_seq(sid: str) -> int:
    return Event.objects.filter(stack_id=sid).order_by("-seq").values_list("seq", flat=True).first() or 0


def test_update_diffs_templates_in_place_replace_add_remove(cloud) -> None:
    made = create(cloud.member, "up", V1)
    sid = made["id"]
    assert run_walk(sid) == states.CREATE_COMPLETE
    before = physical(sid)
    assert outputs(cloud.member, "up", sid)["val"] == "one" and len(outputs(cloud.member, "up", sid)["pw"]) == 8

    # the preview says what the update would do, and does nothing
    r = cloud.member.put(f"stacks/up/{sid}/preview", {"template": V2, "parameters": {"v": "two", "length": 10}})
    assert r.status_code == 200, r.content
    changes = {k: sorted(i["resource_name"] for i in v) for k, v in r.json()["resource_changes"].items()}
    assert changes == {"added": ["fresh"], "deleted": ["gone"], "replaced": ["pw"], "updated": ["echo", "val"],
                       "unchanged": ["keep"]}
    assert physical(sid) == before and Stack.objects.get(pk=sid).state == states.CREATE_COMPLETE

    mark = last_seq(sid)
    r = cloud.member.put(f"stacks/up/{sid}", {"template": V2, "parameters": {"v": "two", "length": 10}})
    assert r.status_code == 202, r.content
    stack = Stack.objects.get(pk=sid)
    assert stack.state == states.UPDATE_IN_PROGRESS and stack.previous["template"]["resources"]["gone"]
    assert TaskRecord.objects.filter(resource_id=sid, action="update").exists()
    heat_error(cloud.member.put(f"stacks/up/{sid}", {"template": V2}), 409)  # busy
    assert run_walk(sid) == states.UPDATE_COMPLETE
    after = physical(sid)
    assert after["keep"] == before["keep"] and after["val"] == before["val"] and after["echo"] == before["echo"]
    assert after["pw"] != before["pw"] and len(after["pw"]) == 10
    assert "gone" not in after and "fresh" in after
    assert not StackResource.objects.filter(stack_id=sid).exclude(retire="").exists()  # the old pw is gone
    out = outputs(cloud.member, "up", sid)
    assert out == {"val": "two", "pw": after["pw"], "fresh": after["pw"]}
    flow = events(sid, mark)
    assert flow[0] == ("up", "UPDATE_IN_PROGRESS", "Stack UPDATE started")
    assert flow[-1] == ("up", "UPDATE_COMPLETE", "Stack UPDATE completed successfully")
    assert ("val", "UPDATE_IN_PROGRESS", "state changed") in flow
    assert ("val", "UPDATE_COMPLETE", "state changed") in flow
    replace = [e for e in flow if e[0] == "pw" and e[1] == "UPDATE_IN_PROGRESS"]
    assert len(replace) == 1 and replace[0][2].startswith("UpdateReplace") and "length" in replace[0][2]
    pw_flow = [e[1] for e in flow if e[0] == "pw"]
    assert pw_flow == ["UPDATE_IN_PROGRESS", "CREATE_IN_PROGRESS", "CREATE_COMPLETE", "DELETE_IN_PROGRESS",
                       "DELETE_COMPLETE"]  # the new one made first, the old one deleted at the end
    old_pw = Event.objects.filter(stack_id=sid, seq__gt=mark, resource_name="pw", state="DELETE_COMPLETE").get()
    assert old_pw.physical_id == before["pw"]
    assert [e[1] for e in flow if e[0] == "gone"] == ["DELETE_IN_PROGRESS", "DELETE_COMPLETE"]
    assert not [e for e in flow if e[0] in ("keep",)]  # unchanged: untouched
    listed = cloud.member.get(f"stacks/up/{sid}/resources").json()["resources"]
    assert sorted(r["resource_name"] for r in listed) == ["echo", "fresh", "keep", "pw", "val"]

    # PATCH (--existing): the stored template and parameters kept, one parameter changed: val in place
    mark = last_seq(sid)
    r = cloud.member.patch(f"stacks/up/{sid}", {"parameters": {"v": "three"}})
    assert r.status_code == 202, r.content
    assert run_walk(sid) == states.UPDATE_COMPLETE
    assert physical(sid) == after and outputs(cloud.member, "up", sid)["val"] == "three"
    stack = Stack.objects.get(pk=sid)
    assert stack.parameters == {"v": "three", "length": 10} and "fresh" in stack.template["resources"]
    assert sorted({e[0] for e in events(sid, mark)}) == ["echo", "up", "val"]
    # the lookup by name answers PUT/PATCH too (heatclient sends /stacks/{name or id})
    assert cloud.member.patch("stacks/up", {"parameters": {"v": "four"}}).status_code == 202
    assert run_walk(sid) == states.UPDATE_COMPLETE and outputs(cloud.member, "up", sid)["val"] == "four"


FAILING = """
heat_template_version: 2018-08-31
resources:
  pw: {type: OS::Heat::RandomString, properties: {length: 12}}
  extra: {type: OS::Heat::None}
  bad:
    type: OS::Heat::TestResource
    depends_on: [pw, extra]
    properties: {value: changed, fail: true}
outputs:
  pw: {value: {get_attr: [pw, value]}}
"""

BEFORE = """
heat_template_version: 2018-08-31
resources:
  pw: {type: OS::Heat::RandomString, properties: {length: 8}}
  bad: {type: OS::Heat::TestResource, depends_on: pw, properties: {value: first}}
outputs:
  pw: {value: {get_attr: [pw, value]}}
"""


def test_failed_update_rolls_back_to_the_previous_template(cloud) -> None:
    sid = create(cloud.member, "rb", BEFORE, disable_rollback=False)["id"]
    assert run_walk(sid) == states.CREATE_COMPLETE
    before = physical(sid)
    mark = last_seq(sid)
    assert cloud.member.put(f"stacks/rb/{sid}", {"template": FAILING}).status_code == 202
    assert run_walk(sid) == states.ROLLBACK_COMPLETE
    flow = events(sid, mark)
    stack_flow = [e[1] for e in flow if e[0] == "rb"]
    assert stack_flow == ["UPDATE_IN_PROGRESS", "UPDATE_FAILED", "ROLLBACK_IN_PROGRESS", "ROLLBACK_COMPLETE"]
    assert ("bad", "UPDATE_FAILED") in [(e[0], e[1]) for e in flow]
    # the replaced pw is back (its replacement deleted), the added resource removed, bad updated back
    assert physical(sid) == before
    assert set(physical(sid)) == {"pw", "bad"} and not StackResource.objects.filter(stack_id=sid).exclude(
        retire="").exists()
    stack = Stack.objects.get(pk=sid)
    assert "extra" not in stack.template["resources"] and stack.previous is None
    assert outputs(cloud.member, "rb", sid)["pw"] == before["pw"]
    assert StackResource.objects.get(stack_id=sid, name="bad").properties["value"] == "first"
    assert StackResource.objects.get(stack_id=sid, name="bad").attributes["output"] == "first"
    assert [e[1] for e in flow if e[0] == "extra"][-1] == "DELETE_COMPLETE"

    # disable_rollback: the update stays failed; a delete removes everything, the replaced pw too
    kept = create(cloud.member, "norb", BEFORE)["id"]
    assert run_walk(kept) == states.CREATE_COMPLETE
    old_pw = physical(kept)["pw"]
    assert cloud.member.put(f"stacks/norb/{kept}", {"template": FAILING}).status_code == 202
    assert run_walk(kept) == states.UPDATE_FAILED
    assert StackResource.objects.filter(stack_id=kept, retire="replaced", physical_id=old_pw).exists()
    heat_error(cloud.member.post(f"stacks/norb/{kept}/actions", {"cancel_update": None}), 400, "NotSupported")
    assert cloud.member.delete(f"stacks/norb/{kept}").status_code == 204
    assert run_walk(kept) == states.DELETE_COMPLETE
    deleted = {e.physical_id for e in Event.objects.filter(stack_id=kept, resource_name="pw", state="DELETE_COMPLETE")}
    assert old_pw in deleted and len(deleted) == 2


def test_cancel_update_rolls_back_and_late_reports_do_nothing(cloud) -> None:
    from workers import orchestration as tasks

    template = """
heat_template_version: 2018-08-31
parameters:
  wait: {type: number, default: 0}
  v: {type: string, default: a}
resources:
  slow:
    type: OS::Heat::TestResource
    properties: {value: {get_param: v}, action_wait_secs: {update: {get_param: wait}}}
"""
    sid = create(cloud.member, "cx", template, disable_rollback=False)["id"]
    assert run_walk(sid) == states.CREATE_COMPLETE
    heat_error(cloud.member.post(f"stacks/cx/{sid}/actions", {"cancel_update": None}), 400, "NotSupported")
    assert cloud.member.patch(f"stacks/cx/{sid}", {"parameters": {"v": "b", "wait": 600}}).status_code == 202
    services.stack_advance(stack_id=sid)
    row = StackResource.objects.get(stack_id=sid, name="slow")
    assert row.state == states.UPDATE_IN_PROGRESS
    epoch = row.data["epoch"]
    assert tasks.resource_run(row.id, epoch) == "waiting"
    assert cloud.member.post(f"stacks/cx/{sid}/actions", {"cancel_update": None}).status_code == 200
    stack = Stack.objects.get(pk=sid)
    assert stack.state == states.UPDATE_FAILED and stack.status_reason == "Stack UPDATE cancelled"
    assert TaskRecord.objects.filter(resource_id=sid, action="cancel_update").exists()
    assert run_walk(sid) == states.ROLLBACK_COMPLETE
    assert tasks.resource_run(row.id, epoch) == "skipped"  # the cancelled update's own retry: nothing
    row.refresh_from_db()
    assert row.properties["value"] == "a" and row.attributes["output"] == "a"
    assert Stack.objects.get(pk=sid).parameters == {}


def test_check_suspend_resume_walk_the_resources(cloud) -> None:
    sid = create(cloud.member, "act", CHAIN)["id"]
    assert run_walk(sid) == states.CREATE_COMPLETE
    heat_error(cloud.member.post(f"stacks/act/{sid}/actions", {"check": None, "suspend": None}), 400)
    heat_error(cloud.member.post(f"stacks/act/{sid}/actions", {"explode": None}), 400)
    heat_error(cloud.member.post(f"stacks/act/{sid}/actions", {"resume": None}), 409)  # not suspended

    assert cloud.member.post(f"stacks/act/{sid}/actions", {"check": None}).status_code == 200
    assert Stack.objects.get(pk=sid).state == states.CHECK_IN_PROGRESS
    assert run_walk(sid) == states.CHECK_COMPLETE
    assert set(StackResource.objects.filter(stack_id=sid).values_list("state", flat=True)) == {states.CHECK_COMPLETE}

    mark = last_seq(sid)
    assert cloud.member.post("stacks/act/actions", {"suspend": None}).status_code == 200  # by name too
    assert run_walk(sid) == states.SUSPEND_COMPLETE
    order = [e[0] for e in events(sid, mark) if e[1] == states.SUSPEND_IN_PROGRESS and e[0] != "act"]
    assert order == ["echo", "pw", "first"]  # dependents first
    heat_error(cloud.member.patch(f"stacks/act/{sid}", {"parameters": {"length": 5}}), 409)  # suspended
    heat_error(cloud.member.post(f"stacks/act/{sid}/actions", {"suspend": None}), 409)
    assert cloud.member.post(f"stacks/act/{sid}/actions", {"resume": None}).status_code == 200
    assert run_walk(sid) == states.RESUME_COMPLETE
    assert set(StackResource.objects.filter(stack_id=sid).values_list("state", flat=True)) == {states.RESUME_COMPLETE}
    for action in ("check", "suspend", "resume"):
        assert TaskRecord.objects.filter(resource_id=sid, action=action).exists()
    assert events(sid)[-1] == ("act", "RESUME_COMPLETE", "Stack RESUME completed successfully")
    # an update after a resume: nothing changed in its resources
    assert cloud.member.patch(f"stacks/act/{sid}", {}).status_code == 202
    assert run_walk(sid) == states.UPDATE_COMPLETE


def test_abandon_then_adopt_keeps_the_physical_resources(cloud) -> None:
    sid = create(cloud.member, "ab", CHAIN)["id"]
    assert run_walk(sid) == states.CREATE_COMPLETE
    before = physical(sid)
    outs = outputs(cloud.member, "ab", sid)
    r = cloud.member.delete(f"stacks/ab/{sid}/abandon")
    assert r.status_code == 200, r.content
    data = r.json()
    assert data["id"] == sid and data["name"] == "ab" and data["template"]["resources"]["pw"]
    assert {k: v["resource_id"] for k, v in data["resources"].items()} == before
    assert run_walk(sid) == states.DELETE_COMPLETE
    assert not StackResource.objects.filter(stack_id=sid).exists()
    assert not Event.objects.filter(stack_id=sid, state__startswith="DELETE_").exclude(resource_name="ab").exists()
    assert TaskRecord.objects.filter(resource_id=sid, action="abandon").exists()

    bad = {**data, "resources": {k: v for k, v in data["resources"].items() if k != "echo"}}
    heat_error(cloud.member.post("stacks", {"stack_name": "again", "adopt_stack_data": json.dumps(bad)}), 400)
    assert not Stack.objects.filter(name="again").exists()
    r = cloud.member.post("stacks", {"stack_name": "again", "adopt_stack_data": json.dumps(data)})
    assert r.status_code == 201, r.content
    new = r.json()["stack"]["id"]
    assert run_walk(new) == states.ADOPT_COMPLETE
    assert physical(new) == before and outputs(cloud.member, "again", new) == outs
    assert set(StackResource.objects.filter(stack_id=new).values_list("state", flat=True)) == {states.ADOPT_COMPLETE}
    assert not Event.objects.filter(stack_id=new, state__startswith="CREATE_").exists()  # nothing created
    # an adopted stack is updated like any other
    assert cloud.member.patch(f"stacks/again/{new}", {"parameters": {"length": 6}}).status_code == 202
    assert run_walk(new) == states.UPDATE_COMPLETE and len(physical(new)["pw"]) == 6


def test_another_projects_stack_and_bad_updates(cloud) -> None:
    sid = create(cloud.member, "mine", CHAIN)["id"]
    # in progress: busy
    heat_error(cloud.member.put(f"stacks/mine/{sid}", {"template": CHAIN}), 409)
    heat_error(cloud.member.post(f"stacks/mine/{sid}/actions", {"check": None}), 409)
    heat_error(cloud.member.delete(f"stacks/mine/{sid}/abandon"), 409)
    assert run_walk(sid) == states.CREATE_COMPLETE
    for call in (lambda c: c.put(f"stacks/mine/{sid}", {"template": CHAIN}),
                 lambda c: c.patch(f"stacks/{sid}", {"parameters": {"length": 3}}),
                 lambda c: c.put(f"stacks/mine/{sid}/preview", {"template": CHAIN}),
                 lambda c: c.post(f"stacks/mine/{sid}/actions", {"suspend": None}),
                 lambda c: c.post(f"stacks/{sid}/actions", {"check": None}),
                 lambda c: c.delete(f"stacks/mine/{sid}/abandon")):
        heat_error(call(cloud.other), 404)
    # bad input: a clear 400, nothing changed
    heat_error(cloud.member.put(f"stacks/mine/{sid}", {"parameters": {"length": 3}}), 400)  # PUT needs a template
    heat_error(cloud.member.patch(f"stacks/mine/{sid}", {"parameters": {"nope": 1}}), 400)
    heat_error(cloud.member.patch(f"stacks/mine/{sid}", {"template": "resources: [1"}), 400)
    heat_error(cloud.member.patch(f"stacks/mine/{sid}", {"clear_parameters": "length"}), 400)
    heat_error(cloud.member.patch(f"stacks/mine/{sid}", {"timeout_mins": -1}), 400)
    heat_error(cloud.member.patch(f"stacks/mine/{sid}", {"timeout_mins": 2 ** 70}), 400)
    stack = Stack.objects.get(pk=sid)
    assert stack.state == states.CREATE_COMPLETE and stack.previous is None and stack.template_version == 0
    assert not Event.objects.filter(stack_id=sid, state__startswith="UPDATE").exists()


def test_update_timeout_rolls_back(cloud) -> None:
    from datetime import timedelta

    from django.utils import timezone

    template = """
heat_template_version: 2018-08-31
parameters:
  wait: {type: number, default: 0}
resources:
  slow: {type: OS::Heat::TestResource, properties: {wait_secs: {get_param: wait}}}
"""
    sid = create(cloud.member, "to", template, disable_rollback=False, timeout_mins=1)["id"]
    assert run_walk(sid) == states.CREATE_COMPLETE
    assert cloud.member.patch(f"stacks/to/{sid}", {"parameters": {"wait": -1}}).status_code == 202
    services.stack_advance(stack_id=sid)
    assert services.stacks_timeout(now=timezone.now() + timedelta(minutes=2)) == 1
    stack = Stack.objects.get(pk=sid)
    assert stack.state == states.ROLLBACK_IN_PROGRESS, stack.status_reason
    assert run_walk(sid) == states.ROLLBACK_COMPLETE
    assert StackResource.objects.get(stack_id=sid).properties["wait_secs"] == 0


def test_neutron_net_renamed_in_place_and_replaced_when_its_type_changes(cloud) -> None:
    from apps.networks.models import Network

    net = "heat_template_version: 2018-08-31\nparameters:\n  n: {type: string, default: before}\n" \
          "resources:\n  net: {type: OS::Neutron::Net, properties: {name: {get_param: n}}}\n"
    sid = create(cloud.member, "nets", net)["id"]
    assert run_walk(sid) == states.CREATE_COMPLETE
    first = physical(sid)["net"]
    assert Network.objects.get(pk=first).name == "before"
    assert cloud.member.patch(f"stacks/nets/{sid}", {"parameters": {"n": "after"}}).status_code == 202
    assert run_walk(sid) == states.UPDATE_COMPLETE
    assert physical(sid)["net"] == first and Network.objects.get(pk=first).name == "after"  # in place
    assert ("net", "UPDATE_COMPLETE") in [(e[0], e[1]) for e in events(sid)]
    # the type changes: the None made first, the network deleted through the networks app at the end
    assert cloud.member.put(f"stacks/nets/{sid}", {"template": CHAIN.replace("first: {type: OS::Heat::None}",
                                                                             "net: {type: OS::Heat::None}")
                                                   .replace("depends_on: first", "depends_on: net")}).status_code == 202
    assert run_walk(sid) == states.UPDATE_COMPLETE
    assert physical(sid)["net"] != first and not Network.objects.filter(pk=first).exists()
