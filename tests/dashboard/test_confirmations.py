"""Every destructive dashboard action asks first, naming what it affects (issue 11, safety): each form
posting to a delete, release, detach, disassociate, unshare, remove, clear, enable/disable or
service-disable URL carries a ``data-confirm`` (static/stratus.js asks it before submitting) whose
text names its object; the project and user Disable buttons say who loses access."""
from __future__ import annotations

import html
import re
from pathlib import Path
from types import SimpleNamespace

from django.conf import settings
from django.template.loader import render_to_string
from django.test import Client

from tests.api_client import SeededCloud

DESTRUCTIVE = re.compile(r"delete|release|disassociate|detach|unshare|remove|clear|_enabled$|service_update")
FORM = re.compile(r"<form\b[^>]*>", re.S)
URL = re.compile(r"""action="\{% url '([\w:]+)'""")


def _forms() -> list[tuple[str, str, str]]:
    """(template, url name, form tag) of every form posting to a named URL."""
    found = []
    for path in sorted(Path(settings.BASE_DIR, "templates").rglob("*.html")):
        for tag in FORM.findall(path.read_text()):
            match = URL.search(tag)
            if match and 'method="post"' in tag:
                found.append((str(path.relative_to(settings.BASE_DIR)), match.group(1), tag))
    return found


def test_every_destructive_form_confirms_and_names_its_object() -> None:
    destructive = [(t, url, tag) for t, url, tag in _forms() if DESTRUCTIVE.search(url.split(":")[1])]
    # the scan sees the dashboard's hand-written forms (the live tables' row actions confirm through
    # tables.Action.confirm, checked by each table's tests)
    assert len(destructive) >= 15
    missing = [(t, url) for t, url, tag in destructive if "data-confirm=" not in tag]
    assert not missing, f"destructive forms without a confirmation: {missing}"
    unnamed = [(t, url) for t, url, tag in destructive if "{{" not in tag.split("data-confirm=", 1)[1]]
    assert not unnamed, f"confirmations that name nothing: {unnamed}"


def _confirms(page: str) -> list[str]:
    return [html.unescape(text) for text in re.findall(r'data-confirm="([^"]*)"', page)]


def test_project_disable_names_the_project_and_who_loses_access(admin_client: Client, cloud: SeededCloud) -> None:
    confirms = _confirms(admin_client.get("/dashboard/identity/projects").content.decode())
    # demo's users: demo, and the seeded cloud's alice and bob (members) and rita (reader)
    assert "Disable project demo? Its 4 users lose access to it until it is enabled again." in confirms
    assert "Disable project admin? Its 1 user loses access to it until it is enabled again." in confirms


def test_user_disable_and_delete_name_the_user(admin_client: Client, cloud: SeededCloud) -> None:
    confirms = _confirms(admin_client.get("/dashboard/identity/users").content.decode())
    assert "Disable user demo? They can no longer sign in, and their tokens are revoked." in confirms
    assert "Disable user admin (you)? They can no longer sign in, and their tokens are revoked." in confirms
    assert any(text.startswith("Delete user demo?") for text in confirms)


def test_instance_buttons_that_interrupt_it_confirm_naming_it() -> None:
    instance = SimpleNamespace(id="b7d1", name="vm1", can_write=True, can_delete=True, form_actions=set(),
                               buttons=[("stop", "Shut off"), ("reboot_hard", "Hard reboot"), ("pause", "Pause")])
    confirms = _confirms(render_to_string("compute/_instance_live.html", {"instance": instance}))
    assert confirms == ["Shut off instance vm1?", "Hard reboot instance vm1?", "Delete instance vm1?"]
