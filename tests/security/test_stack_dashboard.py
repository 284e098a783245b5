"""The Stacks panel's attack surface: an example template is named by a key of the library, never a path;
an uploaded template over Heat's body cap is refused before it is parsed; what a template or its values
carry (resource names in the topology's SVG, outputs, descriptions) is escaped on the stack's page; a
hidden parameter's value never reaches the page; another project's stack is a 404 on every URL of the
panel (page, live part, delete, check, suspend, resume, update and its preview, the bulk form) and is left
as it was; the update form never shows a hidden parameter's value."""
from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from apps.core.errors import NotFound
from apps.orchestration import services, states
from apps.orchestration.examples import example_get
from apps.orchestration.models import Stack
from tests.api_client import SeededCloud
from tests.dashboard.conftest import DEMO_PW, signed_in
from tests.orchestration.test_api import run_walk

pytestmark = pytest.mark.django_db

LAUNCH = "/dashboard/orchestration/stacks/launch"
TINY = "heat_template_version: 2018-08-31\nresources:\n  a: {type: OS::Heat::None}\n"
XSS = "<script>alert(1)</script>"


def test_example_is_a_key_not_a_path(cloud: SeededCloud) -> None:
    client = signed_in("demo", DEMO_PW)
    for key in ("../../portal/settings.py", "/etc/passwd", "random_value.yaml"):
        refused = client.post(LAUNCH, {"step": "template", "source": "example", "example": key})
        assert refused.status_code == 400 and "root:" not in refused.content.decode()
        with pytest.raises(NotFound):
            example_get(key)


@override_settings(STRATUS_MAX_HEAT_BODY=2048)
def test_template_over_the_cap_is_refused(cloud: SeededCloud) -> None:
    client = signed_in("demo", DEMO_PW)
    big = TINY + "# " + "x" * 4096 + "\n"
    upload = SimpleUploadedFile("big.yaml", big.encode(), content_type="application/x-yaml")
    refused = client.post(LAUNCH, {"step": "template", "source": "file", "template_file": upload})
    assert refused.status_code == 400 and "larger than 2048 bytes" in refused.content.decode()
    pasted = client.post(LAUNCH, {"step": "parameters", "stack_name": "big", "template": big})
    assert pasted.status_code == 400 and not Stack.objects.exists()


def test_template_content_is_escaped_and_hidden_values_stay_hidden(cloud: SeededCloud) -> None:
    text = ("heat_template_version: 2018-08-31\n"
            f"description: '{XSS}'\n"
            "parameters:\n  secret: {type: string, hidden: true}\n"
            f"  shown: {{type: string, default: '{XSS}'}}\n"
            "resources:\n"
            f"  '<img src=x onerror=alert(1)>':\n    type: OS::Heat::Value\n"
            "    properties: {value: {get_param: shown}}\n"
            f"outputs:\n  out: {{value: {{get_param: shown}}, description: '{XSS}'}}\n")
    client = signed_in("demo", DEMO_PW)
    made = client.post(LAUNCH, {"step": "parameters", "stack_name": "xss", "template": text,
                                "param_secret": "s3cr3t-value", "param_shown": XSS})
    assert made.status_code == 302, made.content.decode()[:2000]
    stack = Stack.objects.get()
    assert run_walk(stack.id) == states.CREATE_COMPLETE
    page = f"/dashboard/orchestration/stacks/{stack.id}/"
    for url in (page, f"{page}?partial=1"):
        html = client.get(url).content.decode()
        assert XSS not in html and "<img src=x" not in html
        assert "&lt;script&gt;" in html and "s3cr3t-value" not in html
    listed = client.get("/dashboard/orchestration/stacks/").content.decode()
    assert "s3cr3t-value" not in listed


def test_another_projects_stack_on_every_url(cloud: SeededCloud) -> None:
    theirs = services.stack_create(actor=cloud.other_actor, name="theirs", template=TINY)
    client = signed_in("demo", DEMO_PW)
    base = f"/dashboard/orchestration/stacks/{theirs.id}"
    assert client.get(f"{base}/").status_code == 404
    assert client.get(f"{base}/?partial=1").status_code == 404
    for action in ("delete", "check", "suspend", "resume", "update"):
        assert client.post(f"{base}/{action}").status_code == 404
    assert client.get(f"{base}/update").status_code == 404
    for step in ({"step": "template", "source": "existing"},
                 {"step": "parameters", "existing": "True", "template": "", "preview": "1"},
                 {"step": "parameters", "existing": "", "template": TINY.replace("a:", "b:")}):
        assert client.post(f"{base}/update", step).status_code == 404
    bulk = client.post("/dashboard/orchestration/stacks/act", {"action": "delete", "ids": [theirs.id]},
                       HTTP_ACCEPT="application/json").json()["results"][0]
    assert not bulk["ok"] and "theirs" not in client.get("/dashboard/orchestration/stacks/").content.decode()
    theirs_now = Stack.objects.get(pk=theirs.id)
    assert theirs_now.state == states.CREATE_IN_PROGRESS and theirs_now.template_version == theirs.template_version
    assert "b" not in theirs_now.template["resources"]


def test_update_form_never_shows_a_hidden_value(cloud: SeededCloud) -> None:
    text = ("heat_template_version: 2018-08-31\nparameters:\n  secret: {type: string, hidden: true, default: d3f4ult}\n"
            "resources:\n  v: {type: OS::Heat::Value, properties: {value: {get_param: secret}}}\n")
    stack = services.stack_create(actor=cloud.member_actor, name="hush", template=text,
                                  parameters={"secret": "s3cr3t-value"})
    assert run_walk(stack.id) == states.CREATE_COMPLETE
    client = signed_in("demo", DEMO_PW)
    url = f"/dashboard/orchestration/stacks/{stack.id}/update"
    for data in ({"step": "template", "source": "existing"}, {"step": "template", "source": "text",
                                                               "template_text": text},
                 {"step": "parameters", "existing": "True", "template": "", "preview": "1"}):
        html = client.post(url, data).content.decode()
        assert 'name="param_secret"' in html and "s3cr3t-value" not in html
        pin = re.search(r'<input[^>]*name="param_secret"[^>]*>', html).group(0)
        assert 'type="password"' in pin and "value=" not in pin  # blank, not even the template's default
