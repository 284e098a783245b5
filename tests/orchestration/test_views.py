"""The Stacks panel through Django's test client: a stack launched from an example template with the
parameters form built from template-validate (types, constraints, hidden, defaults, groups as fieldsets;
a value the engine refuses shown on its field, nothing made), previewed, created, walked in process to
CREATE_COMPLETE, its page (outputs, hidden parameters masked, topology, resources, events, template),
deleted from the table; the list in a constant number of queries; another project's stack a 404; each
resource's report one live event."""
from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.orchestration import services, states
from apps.orchestration.models import Stack
from tests.api_client import SeededCloud
from tests.dashboard.conftest import DEMO_PW, signed_in
from tests.orchestration.test_api import run_walk

pytestmark = pytest.mark.django_db

LAUNCH = "/dashboard/orchestration/stacks/launch"
STACKS = "/dashboard/orchestration/stacks/"
TINY = "heat_template_version: 2018-08-31\nresources:\n  a: {type: OS::Heat::None}\n"


def _params(**changes: Any) -> dict[str, Any]:
    from apps.orchestration.examples import example_get

    return {"step": "parameters", "stack_name": "demo-stack", "template": example_get("random_value").text,
            "param_length": "12", "param_classes": "digits", "param_greeting": "good day", "param_pin": "4821",
            **changes}


def test_parameters_form_from_the_template(cloud: SeededCloud) -> None:
    client = signed_in("demo", DEMO_PW)
    page = client.get(LAUNCH)
    assert page.status_code == 200 and "A random string and a value" in page.content.decode()
    step = client.post(LAUNCH, {"step": "template", "source": "example", "example": "random_value"})
    html = step.content.decode()
    assert step.status_code == 200, html[:2000]
    length = re.search(r'<input[^>]*name="param_length"[^>]*>', html).group(0)
    assert 'type="number"' in length and 'min="8"' in length and 'max="64"' in length and 'value="16"' in length
    assert re.search(r'<select[^>]*name="param_classes"', html) and '<option value="hexdigits"' in html
    assert re.search(r'<input[^>]*type="password"[^>]*name="param_pin"', html)
    greeting = re.search(r'<input[^>]*name="param_greeting"[^>]*>', html).group(0)
    assert 'maxlength="40"' in greeting and 'pattern="[a-zA-Z ]+"' in greeting
    assert re.search(r'<input[^>]*type="checkbox"[^>]*name="param_repeat"', html)
    assert 'data-group="Secret"' in html and 'data-group="Greeting"' in html and 'data-group="Other parameters"' in html
    assert "Letters and spaces only." in html  # the constraint's description as help


def test_template_step_errors(cloud: SeededCloud) -> None:
    client = signed_in("demo", DEMO_PW)
    bad = client.post(LAUNCH, {"step": "template", "source": "text", "template_text": "resources: [1"})
    assert bad.status_code == 400 and 'id="template-form"' in bad.content.decode()
    unknown = client.post(LAUNCH, {"step": "template", "source": "text",
                                   "template_text": "heat_template_version: 2018-08-31\nresources:\n"
                                                    "  a: {type: OS::Nope::Nothing}\n"})
    assert unknown.status_code == 400 and "OS::Nope::Nothing" in unknown.content.decode()
    upload = SimpleUploadedFile("t.yaml", TINY.encode(), content_type="application/x-yaml")
    ok = client.post(LAUNCH, {"step": "template", "source": "file", "template_file": upload})
    assert ok.status_code == 200 and "This template has no parameters." in ok.content.decode()


def test_launch_preview_create_show_delete(cloud: SeededCloud, monkeypatch: Any,
                                           django_capture_on_commit_callbacks: Any) -> None:
    from apps.core import events

    seen: list[tuple[str, dict]] = []
    monkeypatch.setattr(events, "send_all", seen.extend)
    client = signed_in("demo", DEMO_PW)
    # a value the engine refuses: on its field, nothing made
    refused = client.post(LAUNCH, _params(param_length="4"))
    assert refused.status_code == 400 and "Between 8 and 64 characters." in refused.content.decode()
    assert not Stack.objects.exists()
    preview = client.post(LAUNCH, _params(preview="1"))
    html = preview.content.decode()
    assert preview.status_code == 200 and 'id="preview-table"' in html
    assert "OS::Heat::RandomString" in html and "OS::Heat::None" in html and not Stack.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        made = client.post(LAUNCH, _params())
    stack = Stack.objects.get()
    assert made.status_code == 302 and made["Location"] == f"/dashboard/orchestration/stacks/{stack.id}/"
    assert stack.parameters["pin"] == "4821" and stack.disable_rollback
    with django_capture_on_commit_callbacks(execute=True):
        assert run_walk(stack.id) == states.CREATE_COMPLETE
    # every resource's report is a live event of the stack's project (the page's topology follows)
    kinds = [(e["resource"], e["id"]) for _g, e in seen]
    assert kinds.count(("stack_resource", stack.id)) >= 3 and ("stack", stack.id) in kinds

    page = client.get(f"/dashboard/orchestration/stacks/{stack.id}/")
    html = page.content.decode()
    assert page.status_code == 200 and "CREATE_COMPLETE" in html
    assert "good day, your secret has 12 characters" in html  # the output
    assert "4821" not in html and "******" in html  # the hidden parameter
    assert 'data-resource="done"' in html and 'data-from="secret" data-to="done"' in html
    assert 'data-tab="template"' in html and "OS::Heat::RandomString" in html
    partial = client.get(f"/dashboard/orchestration/stacks/{stack.id}/?partial=1").content.decode()
    assert 'id="topology-svg"' in partial and 'id="template-text"' not in partial

    listed = client.get(STACKS).content.decode()
    assert 'data-name="demo-stack"' in listed and "CREATE_COMPLETE" in listed
    gone = client.post("/dashboard/orchestration/stacks/act", {"action": "delete", "ids": [stack.id]},
                       HTTP_ACCEPT="application/json")
    assert gone.json()["results"][0]["ok"], gone.json()
    assert Stack.objects.get().state == states.DELETE_IN_PROGRESS
    assert run_walk(stack.id) == states.DELETE_COMPLETE


def test_taken_name_on_its_field(cloud: SeededCloud) -> None:
    services.stack_create(actor=cloud.member_actor, name="demo-stack", template=TINY)
    client = signed_in("demo", DEMO_PW)
    taken = client.post(LAUNCH, _params())
    assert taken.status_code == 400 and "The Stack (demo-stack) already exists." in taken.content.decode()
    assert Stack.objects.count() == 1


def test_another_projects_stack_is_not_found(cloud: SeededCloud) -> None:
    theirs = services.stack_create(actor=cloud.other_actor, name="theirs", template=TINY)
    client = signed_in("demo", DEMO_PW)
    for url in (f"{STACKS}{theirs.id}/", f"{STACKS}{theirs.id}/?partial=1"):
        assert client.get(url).status_code == 404
    assert client.post(f"{STACKS}{theirs.id}/delete").status_code == 404
    bulk = client.post("/dashboard/orchestration/stacks/act", {"action": "delete", "ids": [theirs.id]},
                       HTTP_ACCEPT="application/json").json()
    assert not bulk["results"][0]["ok"]
    assert "theirs" not in client.get(STACKS).content.decode()
    assert Stack.objects.get(pk=theirs.id).state == states.CREATE_IN_PROGRESS


def test_list_filter_sort_and_constant_queries(cloud: SeededCloud) -> None:
    client = signed_in("demo", DEMO_PW)

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(STACKS + "?sort=stack_name&dir=asc").status_code == 200
        return len(ctx.captured_queries)

    for i in range(2):
        services.stack_create(actor=cloud.member_actor, name=f"s{i:02d}", template=TINY)
    few = queries()
    for i in range(2, 14):
        services.stack_create(actor=cloud.member_actor, name=f"s{i:02d}", template=TINY)
    assert queries() == few
    html = client.get(STACKS + "?sort=stack_name&dir=asc&q=s1").content.decode()
    names = re.findall(r'data-name="(s\d\d)"', html)
    assert names == [f"s{i}" for i in range(10, 14)]
    desc = re.findall(r'data-name="(s\d\d)"', client.get(STACKS + "?sort=stack_name&dir=desc").content.decode())
    assert desc[0] == "s13" and desc[-1] == "s00"


def test_every_example_validates(cloud: SeededCloud) -> None:
    """The library's templates are valid for the engine and use only resource types Stratus has."""
    from apps.orchestration.examples import EXAMPLES

    for example in EXAMPLES:
        assert example.available, (example.key, example.missing)
        shown = services.template_validate(actor=cloud.member_actor, template=example.text)
        assert shown["Parameters"], example.key


def test_required_parameters_are_asked_not_refused(cloud: SeededCloud) -> None:
    """template-validate needs no values (Heat's strict_validate=False): a parameter with no default is a
    required field of the form; an unknown resource type is still refused."""
    needs = ("heat_template_version: 2018-08-31\nparameters:\n  size: {type: number}\n"
             "resources:\n  v: {type: OS::Heat::Value, properties: {value: {get_param: size}}}\n")
    shown = services.template_validate(actor=cloud.member_actor, template=needs)
    assert shown["Parameters"]["size"]["Type"] == "Number" and "Default" not in shown["Parameters"]["size"]
    with pytest.raises(services.StackValidationFailed, match=r"OS::Nope::Thing"):
        services.template_validate(actor=cloud.member_actor,
                                   template=needs.replace("OS::Heat::Value", "OS::Nope::Thing"))
    client = signed_in("demo", DEMO_PW)
    html = client.post(LAUNCH, {"step": "template", "source": "text", "template_text": needs}).content.decode()
    assert re.search(r'<input[^>]*name="param_size"[^>]*required', html), html[:3000]
    missing = client.post(LAUNCH, {"step": "parameters", "stack_name": "needy", "template": needs})
    assert missing.status_code == 400 and not Stack.objects.exists()


def test_custom_constraints_are_selects_of_what_the_caller_may_use(cloud: SeededCloud) -> None:
    from apps.compute import services as compute
    from apps.networks import services as networks

    compute.flavor_create(actor=cloud.admin_actor, name="heat.small", ram=64, vcpus=1, disk=1)
    ours = networks.network_create(actor=cloud.member_actor, name="ours-net")
    theirs = networks.network_create(actor=cloud.other_actor, name="theirs-net")
    text = ("heat_template_version: 2018-08-31\nparameters:\n"
            "  flavor: {type: string, constraints: [{custom_constraint: nova.flavor}]}\n"
            "  net: {type: string, constraints: [{custom_constraint: neutron.network}]}\n"
            "resources:\n  a: {type: OS::Heat::None}\n")
    client = signed_in("demo", DEMO_PW)
    html = client.post(LAUNCH, {"step": "template", "source": "text", "template_text": text}).content.decode()
    flavor = re.search(r'<select[^>]*name="param_flavor".*?</select>', html, re.S).group(0)
    net = re.search(r'<select[^>]*name="param_net".*?</select>', html, re.S).group(0)
    assert '<option value="heat.small"' in flavor
    assert f'<option value="{ours.id}"' in net and theirs.id not in html and "theirs-net" not in html
    # a value not offered is refused on its field (another project's network), nothing made
    refused = client.post(LAUNCH, {"step": "parameters", "stack_name": "picky", "template": text,
                                   "param_flavor": "heat.small", "param_net": theirs.id})
    assert refused.status_code == 400 and not Stack.objects.exists()


def test_nested_stack_links_both_ways(cloud: SeededCloud) -> None:
    from tests.orchestration.test_nested import drive

    child = "heat_template_version: 2018-08-31\nresources:\n  leaf: {type: OS::Heat::None}\n"
    parent_text = ("heat_template_version: 2018-08-31\nresources:\n"
                   "  kid: {type: OS::Heat::Stack, properties: {template: {get_file: kid.yaml}}}\n")
    parent = services.stack_create(actor=cloud.member_actor, name="parent", template=parent_text,
                                   files={"kid.yaml": child})
    drive(parent.id, {states.CREATE_COMPLETE, states.CREATE_FAILED})
    kid = Stack.objects.get(parent_id=parent.id)
    client = signed_in("demo", DEMO_PW)
    html = client.get(f"{STACKS}{parent.id}/").content.decode()
    assert f'href="{STACKS}{kid.id}/" data-role="nested"' in html
    kid_page = client.get(f"{STACKS}{kid.id}/").content.decode()
    assert f'href="{STACKS}{parent.id}/" id="stack-parent"' in kid_page and 'data-resource="leaf"' in kid_page
    assert kid.name not in client.get(STACKS).content.decode()  # nested stacks are not listed


def test_environment_values_and_a_missing_name(cloud: SeededCloud, django_capture_on_commit_callbacks: Any) -> None:
    """An environment's parameters fill the form (a parameter with no default is then not required) and go
    to the stack; a missing stack name keeps the parameters' fields and values."""
    needs = ("heat_template_version: 2018-08-31\nparameters:\n  size: {type: number}\n"
             "resources:\n  v: {type: OS::Heat::Value, properties: {value: {get_param: size}}}\n"
             "outputs:\n  size: {value: {get_attr: [v, value]}}\n")
    env = "parameters:\n  size: 7\n"
    client = signed_in("demo", DEMO_PW)
    html = client.post(LAUNCH, {"step": "template", "source": "text", "template_text": needs,
                                "environment": env}).content.decode()
    size = re.search(r'<input[^>]*name="param_size"[^>]*>', html).group(0)
    assert 'value="7"' in size and "required" not in size
    unnamed = client.post(LAUNCH, {"step": "parameters", "stack_name": "", "template": needs, "environment": env,
                                   "param_size": "9"})
    html = unnamed.content.decode()
    assert unnamed.status_code == 400 and re.search(r'<input[^>]*name="param_size"[^>]*value="9"', html)
    with django_capture_on_commit_callbacks(execute=True):
        made = client.post(LAUNCH, {"step": "parameters", "stack_name": "envy", "template": needs,
                                    "environment": env})
    assert made.status_code == 302
    stack = Stack.objects.get()
    assert run_walk(stack.id) == states.CREATE_COMPLETE
    assert services.stack_outputs(Stack.objects.get())[0]["output_value"] == 7


def test_stack_page_costs_the_same_queries_for_more_resources(cloud: SeededCloud) -> None:
    def stack_of(count: int) -> Stack:
        body = "".join(f"  r{i:02d}: {{type: OS::Heat::None, depends_on: [r00]}}\n" for i in range(1, count))
        text = f"heat_template_version: 2018-08-31\nresources:\n  r00: {{type: OS::Heat::None}}\n{body}"
        stack = services.stack_create(actor=cloud.member_actor, name=f"n{count}", template=text)
        assert run_walk(stack.id) == states.CREATE_COMPLETE
        return stack

    small, big = stack_of(3), stack_of(30)
    client = signed_in("demo", DEMO_PW)

    def queries(stack: Stack) -> int:
        client.get(f"{STACKS}{stack.id}/")  # the parsed template is cached per process: count the second read
        with CaptureQueriesContext(connection) as ctx:
            page = client.get(f"{STACKS}{stack.id}/")
        assert page.status_code == 200 and page.content.decode().count('class="node ') == len(stack.resources.all())
        return len(ctx.captured_queries)

    assert queries(big) == queries(small)


def test_check_suspend_resume_buttons_follow_the_states_table(cloud: SeededCloud) -> None:
    from tests.identity.factories import PASSWORD

    stack = services.stack_create(actor=cloud.member_actor, name="acts", template=TINY)
    assert run_walk(stack.id) == states.CREATE_COMPLETE
    client = signed_in("demo", DEMO_PW)
    page = f"{STACKS}{stack.id}/"
    html = client.get(page).content.decode()
    assert 'id="stack-check"' in html and 'id="stack-suspend"' in html and 'id="stack-resume"' not in html
    reader = signed_in("rita", PASSWORD)
    assert 'id="stack-suspend"' not in reader.get(page).content.decode()
    assert reader.post(f"{page}suspend").status_code == 403
    assert Stack.objects.get(pk=stack.id).state == states.CREATE_COMPLETE
    assert client.post(f"{page}suspend").status_code == 302
    assert Stack.objects.get(pk=stack.id).state == states.SUSPEND_IN_PROGRESS
    assert run_walk(stack.id) == states.SUSPEND_COMPLETE
    html = client.get(page).content.decode()
    assert 'id="stack-resume"' in html and 'id="stack-suspend"' not in html
    client.post(f"{page}suspend")  # the table refuses it: a message, nothing changes
    assert Stack.objects.get(pk=stack.id).state == states.SUSPEND_COMPLETE
    assert client.post(f"{page}resume").status_code == 302
    assert run_walk(stack.id) == states.RESUME_COMPLETE
    assert client.post(f"{page}check").status_code == 302
    assert run_walk(stack.id) == states.CHECK_COMPLETE
    assert client.get(f"{page}check").status_code == 405
