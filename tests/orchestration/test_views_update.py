"""Update Stack in the Stacks panel through Django's test client: the form keeps the current template (Heat's
``existing``) or takes a new one from text or a file; the parameters form is filled with the stack's
current values (a hidden one blank, kept when left blank); Preview shows what services.stack_preview_update
reports (added, deleted, replaced, updated, unchanged) and changes nothing; Update calls services.stack_update
and the walk (as the control worker runs it) takes the stack to UPDATE_COMPLETE; a bad template, a value the
engine refuses, or a stack in progress is a form error and nothing changes."""
from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.orchestration import services, states
from apps.orchestration.models import Stack
from tests.api_client import SeededCloud
from tests.dashboard.conftest import DEMO_PW, signed_in
from tests.orchestration.test_api import run_walk

pytestmark = pytest.mark.django_db

STACKS = "/dashboard/orchestration/stacks/"
V1 = """heat_template_version: 2018-08-31
description: Before the update
parameter_groups:
  - {label: Secret, parameters: [pin]}
parameters:
  greeting: {type: string, default: hello}
  length: {type: number, default: 8, constraints: [{range: {min: 6, max: 32}}]}
  pin: {type: string, hidden: true}
  extra: {type: string, default: x}
resources:
  keep: {type: OS::Heat::None}
  val: {type: OS::Heat::Value, properties: {value: {get_param: greeting}}}
  pw: {type: OS::Heat::RandomString, properties: {length: {get_param: length}}}
  secret: {type: OS::Heat::Value, properties: {value: {get_param: pin}}}
  gone: {type: OS::Heat::None}
outputs:
  val: {value: {get_attr: [val, value]}}
"""
V2 = """heat_template_version: 2018-08-31
description: After the update
parameters:
  greeting: {type: string, default: hello}
  length: {type: number, default: 8, constraints: [{range: {min: 6, max: 32}}]}
  pin: {type: string, hidden: true}
resources:
  keep: {type: OS::Heat::None}
  val: {type: OS::Heat::Value, properties: {value: {get_param: greeting}}}
  pw: {type: OS::Heat::RandomString, properties: {length: {get_param: length}}}
  secret: {type: OS::Heat::Value, properties: {value: {get_param: pin}}}
  fresh: {type: OS::Heat::None, depends_on: keep}
outputs:
  val: {value: {get_attr: [val, value]}}
"""


def _stack(cloud: SeededCloud) -> Stack:
    stack = services.stack_create(actor=cloud.member_actor, name="upd", template=V1,
                                  parameters={"greeting": "hello", "pin": "4821", "extra": "e1"})
    assert run_walk(stack.id) == states.CREATE_COMPLETE
    return Stack.objects.get(pk=stack.id)


def _params(**changes: Any) -> dict[str, Any]:
    data = {"step": "parameters", "existing": "True", "template": "", "environment": "",
            "param_greeting": "hello", "param_length": "8", "param_pin": "", "param_extra": "e1",
            "rollback": "on", **changes}
    return {k: v for k, v in data.items() if v is not None}


def _changes(html: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, kind in re.findall(r'<tr data-id="([^"]+)" data-change="(\w+)">', html):
        out.setdefault(kind, []).append(name)
    return {k: sorted(v) for k, v in out.items()}


def _unchanged(stack: Stack) -> None:
    now = Stack.objects.get(pk=stack.id)
    assert (now.state, now.template_version, now.template, now.parameters) == (
        stack.state, stack.template_version, stack.template, stack.parameters)


def test_form_filled_with_the_current_values_and_preview(cloud: SeededCloud) -> None:
    stack = _stack(cloud)
    client = signed_in("demo", DEMO_PW)
    detail = client.get(f"{STACKS}{stack.id}/").content.decode()
    assert f'href="{STACKS}{stack.id}/update" id="stack-update"' in detail
    url = f"{STACKS}{stack.id}/update"
    page = client.get(url)
    html = page.content.decode()
    assert page.status_code == 200 and 'id="template-form"' in html
    assert re.search(r'<input[^>]*value="existing"[^>]*checked', html) and 'name="example"' not in html

    step = client.post(url, {"step": "template", "source": "existing"})
    html = step.content.decode()
    assert step.status_code == 200, html[:2000]
    assert "Before the update" in html and "the current template" in html
    assert re.search(r'<input[^>]*name="param_greeting"[^>]*value="hello"', html)
    assert re.search(r'<input[^>]*name="param_extra"[^>]*value="e1"', html)
    length = re.search(r'<input[^>]*name="param_length"[^>]*>', html).group(0)
    assert 'value="8"' in length and 'min="6"' in length
    pin = re.search(r'<input[^>]*name="param_pin"[^>]*>', html).group(0)
    assert 'type="password"' in pin and "required" not in pin and "4821" not in html
    assert re.search(r'name="param_pin".*?Leave blank to keep the current value\.', html, re.S)
    assert re.search(r'<input[^>]*type="checkbox"[^>]*name="rollback"[^>]*checked', html) is None  # rollback off

    # the current template, one value changed: val updated in place, the rest unchanged
    preview = client.post(url, _params(param_greeting="bonjour", preview="1"))
    html = preview.content.decode()
    assert preview.status_code == 200, html[:3000]
    assert _changes(html) == {"updated": ["val"], "unchanged": ["gone", "keep", "pw", "secret"]}
    assert 'id="update-preview-table"' in html and "4821" not in html
    # a new template: fresh added, gone deleted, pw replaced (its length), val updated
    preview = client.post(url, _params(existing="", template=V2, param_greeting="bonjour", param_length="12",
                                       preview="1"))
    html = preview.content.decode()
    assert preview.status_code == 200, html[:3000]
    assert _changes(html) == {"added": ["fresh"], "deleted": ["gone"], "replaced": ["pw"], "updated": ["val"],
                              "unchanged": ["keep", "secret"]}
    assert re.search(r'<input[^>]*name="param_greeting"[^>]*value="bonjour"', html)  # the form as given
    _unchanged(stack)


def test_update_applied_and_walked_to_complete(cloud: SeededCloud, django_capture_on_commit_callbacks: Any) -> None:
    stack = _stack(cloud)
    client = signed_in("demo", DEMO_PW)
    url = f"{STACKS}{stack.id}/update"
    upload = SimpleUploadedFile("v2.yaml", V2.encode(), content_type="application/x-yaml")
    step = client.post(url, {"step": "template", "source": "file", "template_file": upload})
    html = step.content.decode()
    assert step.status_code == 200 and "After the update" in html and 'name="param_extra"' not in html
    assert re.search(r'<input[^>]*name="param_greeting"[^>]*value="hello"', html)

    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(url, _params(existing="", template=V2, param_greeting="bonjour", param_extra=None,
                                        timeout_mins="30"))
    assert done.status_code == 302 and done["Location"] == f"{STACKS}{stack.id}/", done.content.decode()[:2000]
    now = Stack.objects.get(pk=stack.id)
    assert now.state == states.UPDATE_IN_PROGRESS and "fresh" in now.template["resources"]
    assert now.template_version == stack.template_version + 1 and now.timeout_mins == 30
    assert not now.disable_rollback
    # the hidden value kept though left blank, the dropped parameter gone, the new value given
    assert now.parameters == {"greeting": "bonjour", "length": "8", "pin": "4821"}
    with django_capture_on_commit_callbacks(execute=True):
        assert run_walk(stack.id) == states.UPDATE_COMPLETE
    now = Stack.objects.get(pk=stack.id)
    assert {r.name for r in now.resources.filter(retire="")} == {"keep", "val", "pw", "secret", "fresh"}
    assert services.stack_outputs(now)[0]["output_value"] == "bonjour"
    page = client.get(f"{STACKS}{stack.id}/").content.decode()
    assert "UPDATE_COMPLETE" in page and "After the update" in page and "4821" not in page

    # the current template kept (Heat's existing), a value changed
    with django_capture_on_commit_callbacks(execute=True):
        again = client.post(url, _params(param_greeting="salut", param_extra=None))
    assert again.status_code == 302
    assert run_walk(stack.id) == states.UPDATE_COMPLETE
    now = Stack.objects.get(pk=stack.id)
    assert "fresh" in now.template["resources"] and now.parameters["pin"] == "4821"
    assert services.stack_outputs(now)[0]["output_value"] == "salut"


def test_bad_template_refused_nothing_changed(cloud: SeededCloud) -> None:
    stack = _stack(cloud)
    client = signed_in("demo", DEMO_PW)
    url = f"{STACKS}{stack.id}/update"
    bad = client.post(url, {"step": "template", "source": "text", "template_text": "resources: [1"})
    assert bad.status_code == 400 and 'id="template-form"' in bad.content.decode()
    empty = client.post(url, {"step": "template", "source": "text", "template_text": ""})
    assert empty.status_code == 400 and "Paste a template." in empty.content.decode()
    unknown = V2.replace("fresh: {type: OS::Heat::None", "fresh: {type: OS::Nope::Nothing")
    step = client.post(url, {"step": "template", "source": "text", "template_text": unknown})
    assert step.status_code == 400 and "OS::Nope::Nothing" in step.content.decode()
    for extra in ({}, {"preview": "1"}):
        refused = client.post(url, _params(existing="", template=unknown, **extra))
        assert refused.status_code == 400 and "OS::Nope::Nothing" in refused.content.decode()
        assert 'id="update-preview-table"' not in refused.content.decode()
    # a value the engine refuses: on its field
    refused = client.post(url, _params(param_length="4"))
    html = refused.content.decode()
    assert refused.status_code == 400 and re.search(r'class="field-error"', html), html[:3000]
    nothing = client.post(url, _params(existing=""))
    assert nothing.status_code == 400 and "Give a template, or keep the current one." in nothing.content.decode()
    _unchanged(stack)


def test_stack_in_progress_is_a_form_error(cloud: SeededCloud) -> None:
    stack = _stack(cloud)
    services.stack_action(actor=cloud.member_actor, stack_id=stack.id, action="check")
    stack = Stack.objects.get(pk=stack.id)
    assert stack.state == states.CHECK_IN_PROGRESS
    client = signed_in("demo", DEMO_PW)
    assert 'id="stack-update"' not in client.get(f"{STACKS}{stack.id}/").content.decode()
    refused = client.post(f"{STACKS}{stack.id}/update", _params(param_greeting="bonjour"))
    html = refused.content.decode()
    assert refused.status_code == 400 and "CHECK_IN_PROGRESS" in html and "alert-error" in html
    _unchanged(stack)


def test_reader_may_not_update(cloud: SeededCloud) -> None:
    from tests.identity.factories import PASSWORD

    stack = _stack(cloud)
    reader = signed_in("rita", PASSWORD)
    assert 'id="stack-update"' not in reader.get(f"{STACKS}{stack.id}/").content.decode()
    url = f"{STACKS}{stack.id}/update"
    assert reader.get(url).status_code == 403
    assert reader.post(url, _params(param_greeting="bonjour")).status_code == 403
    _unchanged(stack)
