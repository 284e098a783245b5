"""Issue 10: one way to do each thing in the dashboard's views and templates."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django import forms
from django.contrib.messages import get_messages
from django.contrib.messages.storage.cookie import CookieStorage
from django.test import RequestFactory

from apps.core.errors import Conflict, Forbidden
from apps.dashboard.shell import form_action

ROOT = Path(__file__).resolve().parents[2]
VIEWS = list((ROOT / "apps").rglob("views*.py"))


def test_views_get_the_actor_only_through_actor_for() -> None:
    offenders = [f"{p.relative_to(ROOT)}:{n}" for p in VIEWS
                 for n, line in enumerate(p.read_text().splitlines(), 1)
                 if re.search(r"def _actor\(|request\.actor\b", line)]
    assert VIEWS and offenders == []


def test_one_form_template() -> None:
    copies = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "templates").rglob("form.html"))
    assert copies == ["templates/dashboard/form.html"]


class NameForm(forms.Form):
    name = forms.CharField()


def _request(rf: RequestFactory, data: dict[str, str] | None) -> Any:
    request = rf.post("/x", data) if data is not None else rf.get("/x")
    request._messages = CookieStorage(request)
    return request


def test_form_action_validates_calls_shows_the_refusal_or_redirects(rf: RequestFactory) -> None:
    calls: list[str] = []

    def refuse() -> None:
        calls.append("refuse")
        raise Conflict("Name taken.")

    get = _request(rf, None)
    assert form_action(get, NameForm(None), refuse, success=str, redirect_to="/done") is None
    invalid = NameForm({})
    assert form_action(_request(rf, {}), invalid, refuse, success=str, redirect_to="/done") is None
    assert calls == []  # neither a GET nor an invalid form reaches the service

    refused = NameForm({"name": "a"})
    post = _request(rf, {"name": "a"})
    assert form_action(post, refused, refuse, success=str, redirect_to="/done") is None
    assert calls == ["refuse"] and refused.non_field_errors() == ["Name taken."]
    assert list(get_messages(post)) == []

    def forbid() -> None:
        raise Forbidden("No.")

    with pytest.raises(Forbidden):
        form_action(post, NameForm({"name": "a"}), forbid, success=str, redirect_to="/done", passthrough=(Forbidden,))

    ok = _request(rf, {"name": "b"})
    response = form_action(ok, NameForm({"name": "b"}), lambda: "b", success=lambda n: f"Created {n}.",
                           redirect_to="/done")
    assert response is not None and response.status_code == 302 and response["Location"] == "/done"
    assert [m.message for m in get_messages(ok)] == ["Created b."]


def test_form_action_redirects_to_what_the_service_made(rf: RequestFactory) -> None:
    ok = _request(rf, {"name": "c"})
    response = form_action(ok, NameForm({"name": "c"}), lambda: "c", success=lambda n: f"Created {n}.",
                           redirect_to=lambda n: f"/things/{n}")
    assert response is not None and response["Location"] == "/things/c"
