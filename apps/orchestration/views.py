"""The Stacks panel (section Orchestration): the project's stacks in the live table (services publish each
stack's state changes, and a resource's), launched from a file, pasted text or an example template with a
parameters form built from ``services.template_validate`` (and a preview: ``services.stack_preview``), a
stack's page (overview, outputs, topology, resources, events, template), kept live by the socket, and its
update (a new template or the current one, the parameters form filled with the stack's values, a preview of
the changes: ``services.stack_preview_update``, then ``services.stack_update``, as Heat's PATCH). The same
services and selectors as Heat's API (apps/orchestration/api)."""
from __future__ import annotations

from typing import Any

import yaml
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.core.errors import Forbidden, NotFound, StratusError
from apps.dashboard.shell import actor_for, dashboard_view, render_page, run_action
from apps.dashboard.tables import Column, Table, TableQuery, deleting, writable
from apps.identity.policy import Actor
from apps.orchestration import selectors, services, states, topology
from apps.orchestration.examples import EXAMPLES
from apps.orchestration.forms import (
    ParametersForm,
    StackForm,
    StackUpdateForm,
    TemplateForm,
    UpdateParametersForm,
    UpdateTemplateForm,
)
from apps.orchestration.models import Stack

EVENTS = 100


def _stack_page(actor: Actor, query: TableQuery) -> list[Stack]:
    key = selectors.STACK_SORT_KEYS.get(query.sort, "created_at")
    rows = selectors.stack_list(actor=actor, query=selectors.StackQuery(
        sort=[(key, query.ascending)], limit=query.limit, marker=query.marker, name_contains=query.search))
    return writable(actor, rows)


def _deletable(stack: Stack) -> bool:
    return bool(getattr(stack, "can_write", False)) and states.stack_may(stack.state, states.DELETE_IN_PROGRESS)


STACKS = Table(
    name="stacks", url_name="orchestration:stacks", act_name="orchestration:stack_act", page=_stack_page,
    row_template="orchestration/_stack_row.html",
    columns=(Column("Name", sort="stack_name"), Column("Status", sort="stack_status"),
             Column("Created", sort="creation_time"), Column("Updated", sort="updated_time")),
    default_sort="creation_time", default_ascending=False, live="stack", search_label="Filter stacks by name",
    empty="No stacks yet.",
    row_data=lambda stack: {"name": stack.name, "state": stack.state},
    actions=(deleting(selectors.stack_get, services.stack_delete, "stack_id", noun="stack", allowed=_deletable,
                      success=lambda s: f"Deleting stack {s.name}."),))
stack_act = STACKS.action_view()


@dashboard_view
def stacks(request: HttpRequest) -> HttpResponse:
    return STACKS.render(request, "orchestration/stacks.html", {})


# ---- launch -------------------------------------------------------------------------------------------

def _validated(actor: Actor, text: str, environment: str = "") -> dict[str, Any]:
    return services.template_validate(actor=actor, template=text, environment=environment or None)


def _images(actor: Actor) -> list[tuple[str, str]]:
    from apps.images import selectors as images

    return [(i.id, i.name or i.id) for i in images.image_list_all(actor=actor) if i.status == "active"]


def _flavors(actor: Actor) -> list[tuple[str, str]]:
    from apps.compute import selectors as compute

    return [(f.name, f.name) for f in compute.flavor_list(actor=actor, query=compute.FlavorQuery())]


def _networks(actor: Actor) -> list[tuple[str, str]]:
    from apps.networks import selectors as networks

    return [(n.id, n.name or n.id) for n in networks.network_list(actor=actor)
            if n.project_id == actor.project_id or n.shared]


def _keypairs(actor: Actor) -> list[tuple[str, str]]:
    from apps.compute import selectors as compute

    return [(k.name, k.name) for k in compute.keypair_list(actor=actor)]


# the custom constraints a launch form offers as a select: what the caller may use, through its selectors
LOOKUPS = {"glance.image": _images, "nova.flavor": _flavors, "neutron.network": _networks,
           "nova.keypair": _keypairs}


def _lookups(actor: Actor, validated: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """The selects of the custom constraints this template's parameters use (one read each, only those)."""
    wanted = {str(p.get("CustomConstraint")) for p in (validated.get("Parameters") or {}).values()}
    return {name: LOOKUPS[name](actor) for name in sorted(wanted & set(LOOKUPS))}


def _parameters_form(actor: Actor, validated: dict[str, Any], data: Any = None) -> ParametersForm:
    return ParametersForm(data, validated=validated, lookups=_lookups(actor, validated))


def _launch_page(request: HttpRequest, context: dict[str, Any], *, status: int = 200) -> HttpResponse:
    return render_page(request, "orchestration/launch.html",
                       {"examples": EXAMPLES, **context}, status=status)


@dashboard_view
def stack_launch(request: HttpRequest) -> HttpResponse:
    """Step one (``step=template``): the template, checked by template-validate; step two
    (``step=parameters``): the name, options and the parameters form, then create (or preview)."""
    actor = actor_for(request)
    step = request.POST.get("step") if request.method == "POST" else None
    if step == "parameters":
        return _launch_parameters(request, actor)
    picked = request.GET.get("example", "")
    source = TemplateForm(request.POST or None, request.FILES or None,
                          initial={"example": picked or EXAMPLES[0].key, "source": "example"})
    if step == "template" and source.is_valid():
        text, environment = source.cleaned_data["text"], source.cleaned_data.get("environment") or ""
        try:
            validated = _validated(actor, text, environment)
        except StratusError as exc:
            if isinstance(exc, Forbidden):
                raise
            source.add_error(None, exc.shown)
        else:
            stack = StackForm(initial={"template": text, "environment": environment, "stack_name": ""})
            return _launch_page(request, {"step": "parameters", "stack_form": stack,
                                          "params_form": _parameters_form(actor, validated),
                                          "validated": validated})
    return _launch_page(request, {"step": "template", "source_form": source},
                        status=400 if request.method == "POST" else 200)


def _launch_parameters(request: HttpRequest, actor: Actor) -> HttpResponse:
    stack_form = StackForm(request.POST)
    validated: dict[str, Any] = {"Parameters": {}}
    stack_form.is_valid()
    if "template" not in stack_form.errors and "environment" not in stack_form.errors:
        # the parameters' fields again, whatever else is wrong (a missing name keeps the values given)
        try:
            validated = _validated(actor, stack_form.cleaned_data["template"], stack_form.cleaned_data["environment"])
        except Forbidden:
            raise
        except StratusError as exc:
            stack_form.add_error(None, exc.shown)
    params = _parameters_form(actor, validated, request.POST)
    context: dict[str, Any] = {"step": "parameters", "stack_form": stack_form, "params_form": params,
                               "validated": validated}
    if not stack_form.is_valid() or not params.is_valid():
        return _launch_page(request, context, status=400)
    data = stack_form.cleaned_data
    args: dict[str, Any] = {"actor": actor, "name": data["stack_name"], "template": data["template"],
                            "environment": data["environment"] or None,
                            "parameters": params.values(), "timeout_mins": data["timeout_mins"],
                            "disable_rollback": not data["rollback"]}
    try:
        if "preview" in request.POST:
            context["preview"] = services.stack_preview(**args)
            return _launch_page(request, context)
        stack = services.stack_create(**args)
    except Forbidden:
        raise
    except StratusError as exc:
        field = params.error_on(exc.shown)
        if field is not None:
            params.add_error(field, exc.shown)
        elif "stack name" in exc.shown.lower() or "Stack (" in exc.shown:
            stack_form.add_error("stack_name", exc.shown)
        else:
            stack_form.add_error(None, exc.shown)
        return _launch_page(request, context, status=400)
    messages.success(request, f"Stack {stack.name} launched.")
    return HttpResponseRedirect(reverse("orchestration:stack", args=[stack.id]))


# ---- update -------------------------------------------------------------------------------------------

# the groups of an update's preview, in the order the page lists them (Heat's resource_changes)
CHANGES = ("added", "deleted", "replaced", "updated", "unchanged")


def _update_validated(actor: Actor, stack: Stack, *, existing: bool, template: str, environment: str
                      ) -> dict[str, Any]:
    """template-validate of what the update binds: the new template or the stack's own (with its files), with
    the environment given, else the stack's."""
    env: Any = environment or stack.environment or None
    if existing:
        return services.template_validate(actor=actor, template=stack.template, files=stack.files or None,
                                          environment=env)
    return services.template_validate(actor=actor, template=template, environment=env)


def _update_parameters_form(actor: Actor, stack: Stack, validated: dict[str, Any], data: Any = None
                            ) -> UpdateParametersForm:
    return UpdateParametersForm(data, validated=validated, lookups=_lookups(actor, validated),
                                current=services.stack_parameters_shown(stack))


def _update_page(request: HttpRequest, stack: Stack, context: dict[str, Any], *, status: int = 200) -> HttpResponse:
    return render_page(request, "orchestration/update.html", {"stack": stack, **context}, status=status)


@dashboard_view
def stack_update(request: HttpRequest, stack_id: str) -> HttpResponse:
    """Step one (``step=template``): a new template, or the current one kept, checked by template-validate;
    step two (``step=parameters``): the options and the parameters form filled with the stack's values, then
    a preview of the changes or the update itself."""
    actor = actor_for(request)
    stack = selectors.stack_get(actor=actor, stack_id=stack_id, action="change")
    step = request.POST.get("step") if request.method == "POST" else None
    if step == "parameters":
        return _update_parameters(request, actor, stack)
    source = UpdateTemplateForm(request.POST or None, request.FILES or None)
    if step == "template" and source.is_valid():
        existing, environment = source.cleaned_data["existing"], source.cleaned_data.get("environment") or ""
        text = "" if existing else source.cleaned_data["text"]
        try:
            validated = _update_validated(actor, stack, existing=existing, template=text, environment=environment)
        except Forbidden:
            raise
        except StratusError as exc:
            source.add_error(None, exc.shown)
        else:
            form = StackUpdateForm(initial={"template": text, "environment": environment, "existing": existing,
                                            "timeout_mins": stack.timeout_mins,
                                            "rollback": not stack.disable_rollback})
            return _update_page(request, stack, {"step": "parameters", "update_form": form, "existing": existing,
                                                 "params_form": _update_parameters_form(actor, stack, validated),
                                                 "validated": validated})
    return _update_page(request, stack, {"step": "template", "source_form": source},
                        status=400 if request.method == "POST" else 200)


def _update_parameters(request: HttpRequest, actor: Actor, stack: Stack) -> HttpResponse:
    form = StackUpdateForm(request.POST)
    validated: dict[str, Any] = {"Parameters": {}}
    form.is_valid()
    if not {"template", "environment", "existing", "__all__"} & set(form.errors):
        try:
            validated = _update_validated(actor, stack, existing=form.cleaned_data["existing"],
                                          template=form.cleaned_data["template"],
                                          environment=form.cleaned_data["environment"])
        except Forbidden:
            raise
        except StratusError as exc:
            form.add_error(None, exc.shown)
    params = _update_parameters_form(actor, stack, validated, request.POST)
    existing = bool(form.cleaned_data.get("existing"))
    context: dict[str, Any] = {"step": "parameters", "update_form": form, "params_form": params,
                               "validated": validated, "existing": existing}
    if not form.is_valid() or not params.is_valid():
        return _update_page(request, stack, context, status=400)
    data = form.cleaned_data
    parameters, cleared = params.arguments(stack.parameters or {})
    # Heat's PATCH whether or not a new template is given: what the form does not carry (the stored
    # environment and files, a hidden value left blank) is kept
    args: dict[str, Any] = {"actor": actor, "stack_id": stack.id, "existing": True,
                            "template": None if existing else data["template"],
                            "environment": data["environment"] or None, "parameters": parameters,
                            "clear_parameters": cleared}
    try:
        if "preview" in request.POST:
            changes = services.stack_preview_update(**args)
            context["changes"] = [(kind, changes.get(kind) or []) for kind in CHANGES]
            context["change_count"] = sum(len(items) for _kind, items in context["changes"])
            return _update_page(request, stack, context)
        services.stack_update(**args, timeout_mins=data["timeout_mins"], disable_rollback=not data["rollback"])
    except Forbidden:
        raise
    except StratusError as exc:
        field = params.error_on(exc.shown)
        if field is not None:
            params.add_error(field, exc.shown)
        else:
            form.add_error(None, exc.shown)
        return _update_page(request, stack, context, status=400)
    messages.success(request, f"Stack {stack.name}: update started.")
    return HttpResponseRedirect(reverse("orchestration:stack", args=[stack.id]))


# ---- one stack ----------------------------------------------------------------------------------------

# the stack page's Check/Suspend/Resume buttons: action -> the state it takes the stack to (per the states table)
STACK_ACTIONS = {"check": states.CHECK_IN_PROGRESS, "suspend": states.SUSPEND_IN_PROGRESS,
                 "resume": states.RESUME_IN_PROGRESS}


def _stack_actions(stack: Stack) -> list[str]:
    if not getattr(stack, "can_write", False):
        return []
    return [action for action, target in STACK_ACTIONS.items() if states.stack_may(stack.state, target)]


def _updatable(stack: Stack) -> bool:
    return bool(getattr(stack, "can_write", False)) and states.stack_may(stack.state, states.UPDATE_IN_PROGRESS)


def _template_text(stack: Stack) -> str:
    return yaml.safe_dump(stack.template, sort_keys=False, default_flow_style=False, allow_unicode=True)


@dashboard_view
def stack_detail(request: HttpRequest, stack_id: str) -> HttpResponse:
    """A stack: overview (status, reason, parameters but hidden ones, outputs), its topology, resources
    and events (live: ``?partial=1`` is the part the socket's events refresh), and its template."""
    actor = actor_for(request)
    stack = writable(actor, [selectors.stack_get(actor=actor, stack_id=stack_id)])[0]
    resources = selectors.resource_list(actor=actor, stack=stack, params=QueryDict())
    events = selectors.event_list(actor=actor, stack=stack, params=QueryDict(f"sort_dir=desc&limit={EVENTS}"))
    nested = {child.id: child for child, _name, _level in selectors.nested_stacks(actor=actor, stack=stack, depth=1)}
    for row in resources:
        row.nested = nested.get(row.physical_id)
    parent = None
    if stack.parent_id:
        try:
            parent = selectors.stack_get(actor=actor, stack_id=stack.parent_id)
        except NotFound:
            parent = None
    context: dict[str, Any] = {
        "stack": stack, "resources": resources, "events": events, "topology": topology.layout(resources),
        "parent": parent,
        "parameters": sorted(services.stack_parameters_shown(stack).items()),
        "outputs": services.stack_outputs(stack), "deletable": _deletable(stack),
        "in_progress": states.in_progress(stack.state), "stack_actions": _stack_actions(stack),
        "updatable": _updatable(stack),
    }
    if not request.GET.get("partial"):
        context["template_text"] = _template_text(stack)
    return render_page(request, "orchestration/stack_detail.html", context, partial="orchestration/_stack_live.html")


@require_POST
@dashboard_view
def stack_delete(request: HttpRequest, stack_id: str) -> HttpResponse:
    actor = actor_for(request)
    stack = selectors.stack_get(actor=actor, stack_id=stack_id)
    return run_action(request, lambda: services.stack_delete(actor=actor, stack_id=stack.id),
                      success=f"Deleting stack {stack.name}.",
                      redirect_to=reverse("orchestration:stack", args=[stack.id]), passthrough=(Forbidden,))


def _run_stack_action(request: HttpRequest, stack_id: str, action: str) -> HttpResponse:
    actor = actor_for(request)
    stack = selectors.stack_get(actor=actor, stack_id=stack_id)
    return run_action(request, lambda: services.stack_action(actor=actor, stack_id=stack.id, action=action),
                      success=f"Stack {stack.name}: {action} started.",
                      redirect_to=reverse("orchestration:stack", args=[stack.id]), passthrough=(Forbidden,))


@require_POST
@dashboard_view
def stack_check(request: HttpRequest, stack_id: str) -> HttpResponse:
    return _run_stack_action(request, stack_id, "check")


@require_POST
@dashboard_view
def stack_suspend(request: HttpRequest, stack_id: str) -> HttpResponse:
    return _run_stack_action(request, stack_id, "suspend")


@require_POST
@dashboard_view
def stack_resume(request: HttpRequest, stack_id: str) -> HttpResponse:
    return _run_stack_action(request, stack_id, "resume")
