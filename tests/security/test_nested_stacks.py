"""Attacks through nested stacks (issue 15): a template and its files are the attacker's text.

- Recursion: a provider template that includes itself (directly, through another file, through the
  resource_registry, or as OS::Heat::Stack's get_file) is a 400 at create, nothing made.
- Fan-out: files of 10 resources of 10 resources of ... (10^5 below the top) are refused after at most
  the per-stack limit's worth of parses, in well under a second, not after walking the whole tree.
- Size: a ResourceGroup or AutoScalingGroup asking for 10^9 members fails its resource without building
  anything that large; the members of the whole tree count against the per-stack limit.
- A provider type that looks like a path or a URL is only a key into ``files``: never read or fetched.
- Another project's nested stacks are not listed (show_nested) and are 404 by id."""
from __future__ import annotations

import time

import pytest

from apps.orchestration import states
from apps.orchestration.models import Event, Stack, StackResource
from tests.orchestration.test_api import create, heat_error
from tests.orchestration.test_nested import PAIR, drive

pytestmark = pytest.mark.django_db


@pytest.fixture
def cloud_api() -> str:
    return "orchestration"


def _refused(cloud, name: str, template: str, **extra) -> dict:
    before = Stack.objects.count()
    body = heat_error(cloud.member.post("stacks", {"stack_name": name, "template": template, **extra}), 400)
    assert Stack.objects.count() == before
    return body


@pytest.mark.parametrize("case", ["self", "mutual", "registry", "get_file"])
def test_recursive_templates_are_refused_at_create(cloud, case: str) -> None:
    top = "heat_template_version: 2018-08-31\nresources:\n  r: {type: a.yaml}\n"
    files = {"a.yaml": "heat_template_version: 2018-08-31\nresources:\n  r: {type: a.yaml}\n"}
    extra: dict = {}
    if case == "mutual":
        files = {"a.yaml": "heat_template_version: 2018-08-31\nresources:\n  r: {type: b.yaml}\n",
                 "b.yaml": "heat_template_version: 2018-08-31\nresources:\n  r: {type: a.yaml}\n"}
    elif case == "registry":
        top = "heat_template_version: 2018-08-31\nresources:\n  r: {type: My::Loop}\n"
        files = {"a.yaml": "heat_template_version: 2018-08-31\nresources:\n  r: {type: My::Loop}\n"}
        extra = {"environment": {"resource_registry": {"My::Loop": "a.yaml"}}}
    elif case == "get_file":
        loop = ("heat_template_version: 2018-08-31\nresources:\n"
                "  r: {type: OS::Heat::Stack, properties: {template: {get_file: a.yaml}}}\n")
        top, files = loop, {"a.yaml": loop}
    body = _refused(cloud, f"loop-{case.replace('_', '-')}", top, files=files, **extra)
    assert body["error"]["type"] == "RequestLimitExceeded"
    assert "Recursion depth exceeds 5" in body["error"]["message"]


def test_a_fan_out_of_files_is_refused_without_walking_the_tree(cloud) -> None:
    files = {}
    for level in range(1, 6):
        child = f"l{level + 1}.yaml" if level < 5 else None
        lines = [f"  r{i}: {{type: {child}}}" if child else f"  r{i}: {{type: OS::Heat::None}}" for i in range(10)]
        files[f"l{level}.yaml"] = "heat_template_version: 2018-08-31\nresources:\n" + "\n".join(lines) + "\n"
    top = "heat_template_version: 2018-08-31\nresources:\n" + "\n".join(
        f"  r{i}: {{type: l1.yaml}}" for i in range(10)) + "\n"
    started = time.monotonic()
    body = _refused(cloud, "fanout", top, files=files)
    assert "Maximum resources per stack exceeded" in body["error"]["message"]
    assert time.monotonic() - started < 5  # ~100 parses, not 10^5


@pytest.mark.parametrize("resource", [
    "{type: OS::Heat::ResourceGroup, properties: {count: 1000000000, resource_def: {type: OS::Heat::None}}}",
    "{type: OS::Heat::AutoScalingGroup, properties: {min_size: 1000000000, max_size: 1000000000, "
    "resource: {type: OS::Heat::None}}}",
])
def test_a_huge_group_fails_its_resource_and_builds_nothing(cloud, resource: str) -> None:
    made = create(cloud.member, "huge", f"heat_template_version: 2018-08-31\nresources:\n  g: {resource}\n")
    started = time.monotonic()
    done = drive(made["id"], {states.CREATE_FAILED, states.CREATE_COMPLETE})
    assert time.monotonic() - started < 10
    assert done.state == states.CREATE_FAILED
    reason = Event.objects.get(stack=done, resource_name="g", state="CREATE_FAILED").reason
    assert "Maximum resources per stack exceeded" in reason
    assert not Stack.objects.filter(parent=done).exists()


def test_group_members_count_against_the_tree_limit(cloud, settings) -> None:
    settings.STRATUS_MAX_RESOURCES_PER_STACK = 6
    made = create(cloud.member, "wide", """
heat_template_version: 2018-08-31
resources:
  g:
    type: OS::Heat::ResourceGroup
    properties: {count: 3, resource_def: {type: pair.yaml, properties: {prefix: x}}}
""", files={"pair.yaml": PAIR})
    done = drive(made["id"], {states.CREATE_FAILED, states.CREATE_COMPLETE})
    # 1 group + 3 members + 2 resources in each member's own stack = 10 > 6: a member's child is refused
    assert done.state == states.CREATE_FAILED
    assert "Maximum resources per stack exceeded" in Event.objects.get(
        stack=done, resource_name="g", state="CREATE_FAILED").reason
    assert StackResource.objects.exclude(state=states.DELETE_COMPLETE).filter(
        stack__in=Stack.objects.filter(parent__parent=done)).count() <= 2


@pytest.mark.parametrize("rtype", ["../../../../etc/passwd.yaml", "/etc/hosts.yaml", "file:///etc/passwd",
                                   "http://169.254.169.254/latest/meta-data.yaml"])
def test_a_provider_type_is_only_a_key_into_files(cloud, rtype: str) -> None:
    body = _refused(cloud, "paths", f"heat_template_version: 2018-08-31\nresources:\n  r: {{type: '{rtype}'}}\n")
    assert "not found in the files section" in body["error"]["message"]


def test_another_projects_nested_stacks_are_not_listed_nor_shown(cloud) -> None:
    made = create(cloud.member, "mine", "heat_template_version: 2018-08-31\nresources:\n  p: {type: pair.yaml, "
                  "properties: {prefix: a}}\n", files={"pair.yaml": PAIR})
    done = drive(made["id"], {states.CREATE_COMPLETE})
    child = Stack.objects.get(parent=done)
    olga = cloud.other
    listed = [s["id"] for s in olga.get("stacks?show_nested=true").json()["stacks"]]
    assert child.id not in listed and done.id not in listed
    assert olga.get(f"stacks/{child.name}/{child.id}").status_code == 404
    assert olga.get(f"stacks/{child.name}/{child.id}/resources").status_code == 404
    assert olga.get(f"stacks/mine/{done.id}/resources?nested_depth=3").status_code == 404
