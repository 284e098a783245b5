"""Admin > Node enrolment (apps/compute/views_node_tokens.py): the node enrolment tokens as a live table,
sorted, filtered and paged through selectors.node_enrolment.node_token_page with a constant number of
queries whatever the number of tokens; the Create form calls node_token_create (its refusals are form
errors and make nothing) and shows the token once, with the command for the new machine, on the next page
(a reload shows it no more); Revoke (a row's and a bulk action) calls node_token_revoke; members get a
403 and no sidebar entry, as on the other admin pages."""
from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from apps.compute.models import EnrolledNode, NodeToken
from apps.compute.services.node_enrolment import node_enrol, node_token_create
from apps.identity.services import token_hash
from tests.api_client import SeededCloud
from tests.dashboard.conftest import ADMIN_PW, DEMO_PW, signed_in
from tests.dashboard.table_pages import table_page, walk, walk_back

pytestmark = pytest.mark.django_db
T = "/dashboard/compute/admin/node-tokens/"


def _messages(response: Any) -> str:
    return " ".join(re.findall(r'class="alert[^"]*"[^>]*>([^<]*)<', response.content.decode()))


def _make(start: int, count: int) -> None:
    for i in range(start, start + count):
        node_token_create(actor=None, role=("compute", "network", "storage")[i % 3], name=f"nt-{i:03d}",
                          expires_hours=1 + i, created_by="pytest")


def test_members_are_refused_and_see_no_panel(cloud: SeededCloud) -> None:
    _make(0, 1)
    token = NodeToken.objects.get()
    demo = signed_in("demo", DEMO_PW)
    assert demo.get(T).status_code == 403
    assert demo.get(f"{T}?partial=1").status_code == 403
    assert demo.post(T, {"name": "sneaky", "role": "compute", "expires_hours": "1"}).status_code == 403
    assert demo.get(f"{T}created").status_code == 403
    assert demo.post(f"{T}{token.id}/revoke").status_code == 403
    answer = demo.post(f"{T}act", {"action": "revoke", "ids": [token.id]}, HTTP_ACCEPT="application/json")
    assert answer.json()["results"][0]["ok"] is False
    assert NodeToken.objects.count() == 1 and NodeToken.objects.get().revoked_at is None
    assert "<span>Node enrolment</span>" not in demo.get("/dashboard/compute/instances/").content.decode()
    assert Client().get(T).status_code == 302  # signed out: to the login page
    admin = signed_in("admin", ADMIN_PW)
    assert "<span>Node enrolment</span>" in admin.get("/dashboard/compute/admin/hypervisors/").content.decode()


def test_create_shows_the_token_once_with_the_command(cloud: SeededCloud) -> None:
    admin = signed_in("admin", ADMIN_PW)
    form = admin.get(T).content.decode()
    assert 'id="node-token-form"' in form and 'name="expires_hours"' in form
    created = admin.post(T, {"name": "node2", "role": "network", "expires_hours": "2"})
    assert created.status_code == 302 and created["Location"] == f"{T}created"
    record = NodeToken.objects.get(name="node2")
    assert record.role == "network" and record.created_by == cloud.admin_actor.user_id
    shown = admin.get(f"{T}created")
    assert shown.status_code == 200 and "no-store" in shown["Cache-Control"]
    body = shown.content.decode()
    token = html.unescape(re.search(r'<pre class="code" id="node-token-text">([^<]+)</pre>', body).group(1))
    assert token.startswith("stn_") and token_hash(token) == record.token_hash
    controller = settings.STRATUS_PUBLIC_URL.rstrip("/")
    command = html.unescape(re.search(r'<pre class="code" id="node-token-command">([^<]+)</pre>', body).group(1))
    assert command == f"make node CONTROLLER={controller} TOKEN={token} ROLE=network"
    assert "shown this once" in body
    # a reload shows it no more (it is nowhere but in the node's hands now), nor does the list
    again = admin.get(f"{T}created", follow=True)
    assert token not in again.content.decode() and "shown only once" in _messages(again)
    assert token not in admin.get(T).content.decode()
    # and it works, once
    join = node_enrol(token=token, name="node2", role="network", address="192.0.2.7")
    assert join.node.name == "node2"


@pytest.mark.parametrize(("fields", "error"), [
    ({"name": "bad name!", "role": "compute", "expires_hours": "1"}, "Invalid node name"),
    ({"name": "-dash", "role": "compute", "expires_hours": "1"}, "Invalid node name"),
    ({"name": "ok", "role": "compute", "expires_hours": "0"}, "Invalid expiry"),
    ({"name": "ok", "role": "compute", "expires_hours": "100000"}, "Invalid expiry"),
    ({"name": "ok", "role": "controller", "expires_hours": "1"}, "Select a valid choice"),
])
def test_a_refused_token_is_a_form_error_and_makes_nothing(cloud: SeededCloud, fields: dict[str, str],
                                                           error: str) -> None:
    admin = signed_in("admin", ADMIN_PW)
    response = admin.post(T, fields)
    assert response.status_code == 400
    body = html.unescape(response.content.decode())
    assert error in body and 'id="node-token-form"' in body
    assert NodeToken.objects.count() == 0
    assert admin.get(f"{T}created", follow=True).redirect_chain  # nothing to show


def test_revoke_a_row_and_in_bulk(cloud: SeededCloud) -> None:
    _make(0, 4)
    ids = {t.name: t.id for t in NodeToken.objects.all()}
    admin = signed_in("admin", ADMIN_PW)
    page = admin.get(T).content.decode()
    row = re.search(rf'<tr data-id="{ids["nt-001"]}".*?</tr>', page, re.S).group(0)
    assert 'data-confirm="Revoke the network node token for nt-001? It is refused from now on."' in row
    assert 'data-bulk-action="revoke"' in page
    done = admin.post(f"{T}act", {"action": "revoke", "ids": [ids["nt-001"]], "next": T}, follow=True)
    assert "Revoked the network node token for nt-001." in _messages(done)
    assert NodeToken.objects.get(pk=ids["nt-001"]).revoked_at is not None
    row = re.search(rf'<tr data-id="{ids["nt-001"]}".*?</tr>', done.content.decode(), re.S).group(0)
    assert "revoked" in row and 'data-action="revoke"' not in row  # nothing left to revoke
    answer = admin.post(f"{T}act", {"action": "revoke", "ids": [ids["nt-002"], ids["nt-003"], "nope"]},
                        HTTP_ACCEPT="application/json")
    assert [(r["id"], r["ok"]) for r in answer.json()["results"]] == [(ids["nt-002"], True), (ids["nt-003"], True),
                                                                     ("nope", False)]
    assert set(NodeToken.objects.filter(revoked_at__isnull=False).values_list("name", flat=True)) == {
        "nt-001", "nt-002", "nt-003"}
    assert admin.post(f"{T}{ids['nt-000']}/revoke").status_code == 302
    assert NodeToken.objects.filter(revoked_at__isnull=True).count() == 0
    assert admin.post(f"{T}no-such-token/revoke").status_code == 404


def test_table_sorts_filters_and_pages_with_constant_queries(cloud: SeededCloud) -> None:
    _make(0, 30)
    admin = signed_in("admin", ADMIN_PW)
    admin.get(T)
    first_small = table_page(admin, f"{T}?sort=name&dir=asc")
    _pages, small = walk(admin, first_small.next)
    _make(30, 45)
    # one used (its enrolled node shown), one revoked
    issued = node_token_create(actor=None, role="compute", name="enrolled-1", expires_hours=1)
    node_enrol(token=issued.token, address="192.0.2.9")
    NodeToken.objects.filter(name="nt-010").update(revoked_at=issued.record.created_at)

    first = table_page(admin, f"{T}?sort=name&dir=asc")
    assert first.queries == first_small.queries and len(first.ids) == 25 and first.previous is None
    pages, large = walk(admin, first.next)
    every = list(NodeToken.objects.order_by("name", "id").values_list("id", "name"))
    assert first.ids + [i for p in pages for i in p.ids] == [i for i, _ in every]
    assert first.names + [n for p in pages for n in p.names] == [n for _, n in every]
    assert large == small and len(large) == 1, (small, large)
    back = walk_back(admin, pages[-1].previous)
    assert [i for p in back for i in p.ids] + pages[-1].ids == first.ids + [i for p in pages for i in p.ids]

    newest, counts = walk(admin, T)  # the default: newest first
    assert [i for p in newest for i in p.ids] == list(
        NodeToken.objects.order_by("-created_at", "-id").values_list("id", flat=True)) and counts == large
    by_expiry, counts = walk(admin, f"{T}?sort=expires_at&dir=desc")
    assert [i for p in by_expiry for i in p.ids] == list(
        NodeToken.objects.order_by("-expires_at", "-id").values_list("id", flat=True)) and counts == large
    by_state, counts = walk(admin, f"{T}?sort=state&dir=asc")
    states = [re.findall(r'data-role="state"><span class="badge [\w-]+"[^>]*>(\w+)', p.html) for p in by_state]
    flat = [s for page in states for s in page]
    assert flat == sorted(flat) and {"revoked", "used", "usable"} <= set(flat) and counts == large

    filtered = table_page(admin, f"{T}?q=enrolled")
    assert filtered.names == ["enrolled-1"]
    row = re.search(r'<tr data-id="[^"]+" data-name="enrolled-1".*?</tr>', filtered.html, re.S).group(0)
    assert "compute node enrolled-1 (192.0.2.9)" in row and ">used " in row
    assert EnrolledNode.objects.get(name="enrolled-1").token_id == issued.record.id
    assert sorted(set(table_page(admin, f"{T}?q=storage").names)) == sorted(
        NodeToken.objects.filter(role="storage").values_list("name", flat=True))
    assert 'id="node-tokens-filter"' in first.html and "token_hash" not in first.html


def test_a_token_deleted_before_it_is_shown_is_a_message(cloud: SeededCloud) -> None:
    admin = signed_in("admin", ADMIN_PW)
    assert admin.post(T, {"name": "gone", "role": "storage", "expires_hours": "1"}).status_code == 302
    NodeToken.objects.filter(name="gone").delete()  # as the Django admin may
    response = admin.get(f"{T}created", follow=True)
    assert response.redirect_chain[-1][0] == T and "no longer exists" in _messages(response)
    assert "stn_" not in response.content.decode()
