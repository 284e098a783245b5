"""Admin > Node enrolment: the node enrolment tokens (issue 16) as a live table, a form that makes one and
shows it once with the command to run on the new machine, and Revoke (a row's and a bulk action). Every
read and change goes through apps/compute/selectors/node_enrolment.py and
apps/compute/services/node_enrolment.py, as ``manage.py node_token`` and the Django admin do.

Showing the token once: the create POST keeps the new token in the session and redirects to
``admin/node-tokens/created``, which takes it out of the session as it renders it (served no-store); a
reload of that page (or a second tab) finds nothing to show, and reloading it never submits the form again."""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from apps.compute.forms import NodeTokenForm
from apps.compute.models import NodeToken
from apps.compute.selectors import node_enrolment as enrol_selectors
from apps.compute.services import node_enrolment as enrol_services
from apps.core.errors import NotFound, StratusError
from apps.dashboard.shell import actor_for, dashboard_view, form_error, render_page
from apps.dashboard.tables import Action, Column, Table, TableQuery
from apps.identity.policy import Actor, require_admin

ISSUED = "compute.node_token_issued"  # the session key of a token made and not yet shown


def _token_page(actor: Actor, page: TableQuery) -> list[NodeToken]:
    return enrol_selectors.node_token_page(actor=actor, search=page.search, sort_key=page.sort,
                                           ascending=page.ascending, limit=page.limit, marker=page.marker)


def _revoke(actor: Actor, pk: str) -> NodeToken:
    return enrol_services.node_token_revoke(actor=actor, token_id=pk)


NODE_TOKENS = Table(
    name="node-tokens", url_name="compute:node_tokens", act_name="compute:node_token_act", page=_token_page,
    row_template="compute/_node_token_row.html",
    columns=(Column("Node name", sort="name"), Column("Role", sort="role"), Column("Created by", sort="created_by"),
             Column("Created", sort="created_at"), Column("Expires", sort="expires_at"),
             Column("State", sort="state"), Column("Enrolled node", sort="node_name")),
    default_sort="created_at", search_label="Filter by node name or role", empty="No node enrolment tokens yet.",
    row_data=lambda token: {"name": token.name, "role": token.role, "state": token.state},
    actions=(Action("revoke", "Revoke", call=_revoke, bulk=True, danger=True,
                    success=lambda token: f"Revoked the {token.role} node token for {token.name}.",
                    allowed=lambda token: token.revoked_at is None,
                    confirm=lambda token: f"Revoke the {token.role} node token for {token.name}? It is refused from "
                                          "now on." + (f" The node {token.node_name} enrolled with it: its own "
                                                       "broker user, if it has one, is deleted."
                                                       if token.node_name else "")),))
node_token_act, node_token_revoke = NODE_TOKENS.action_view(), NODE_TOKENS.action_view("revoke")


@dashboard_view
def node_tokens(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    require_admin(actor, action="manage node enrolment tokens")
    form = NodeTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            issued = enrol_services.node_token_create(actor=actor, role=data["role"], name=data["name"].strip(),
                                                      expires_hours=data["expires_hours"])
        except StratusError as exc:
            form_error(form, exc)
        else:
            request.session[ISSUED] = {"id": issued.record.id, "token": issued.token}
            return HttpResponseRedirect(reverse("compute:node_token_created"))
    return NODE_TOKENS.render(request, "compute/node_tokens.html", {"form": form},
                              status=400 if form.errors else 200)


@dashboard_view
def node_token_created(request: HttpRequest) -> HttpResponse:
    """The token just made, with the command that joins the new machine: this once (it leaves the session
    as it is shown; only its hash is stored)."""
    actor = actor_for(request)
    require_admin(actor, action="manage node enrolment tokens")
    issued: dict[str, Any] | None = request.session.pop(ISSUED, None)
    if not issued:
        messages.info(request, "A node token is shown only once, right after it is made: make a new one if it "
                               "was not copied (and revoke the old one).")
        return HttpResponseRedirect(reverse("compute:node_tokens"))
    try:
        record = enrol_selectors.node_token_get(actor=actor, token_id=issued["id"])
    except NotFound:  # deleted meanwhile (the Django admin): nothing to join with
        messages.error(request, "That node token no longer exists.")
        return HttpResponseRedirect(reverse("compute:node_tokens"))
    controller = settings.STRATUS_PUBLIC_URL.rstrip("/")
    command = f"make node CONTROLLER={controller} TOKEN={issued['token']} ROLE={record.role}"
    response = render_page(request, "compute/node_token_created.html",
                           {"record": record, "token": issued["token"], "command": command,
                            "controller": controller})
    response["Cache-Control"] = "no-store"
    return response
