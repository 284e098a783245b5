"""Compute panels: Instances (with the launch wizard, the instance page, its console log and action
log) and Key Pairs (section Compute); for admins Flavors, Hypervisors, Compute Services, All Instances
and Usage. They call the same services and selectors as the Nova API."""
from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, time, timedelta
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.compute import selectors, services, states
from apps.compute.forms import (
    FlavorForm,
    InstanceActionForm,
    KeyPairForm,
    ServiceDisableForm,
    UsagePeriodForm,
)
from apps.compute.models import Flavor, Instance, KeyPair
from apps.compute.selectors import nodes as node_selectors
from apps.compute.selectors import servers as server_selectors
from apps.compute.services import nodes as node_services
from apps.compute.services import (
    server_console,
    server_lifecycle,
    server_rebuild_resize,
    server_snapshots,
)
from apps.compute.views_common import instance_button
from apps.compute.views_floating_ips import floating_ip_choices
from apps.compute.views_volumes import volumes_context
from apps.core import validators as check
from apps.core.access import may_change
from apps.core.errors import Forbidden, StratusError
from apps.dashboard.shell import (
    actor_for,
    dashboard_view,
    form_action,
    form_error,
    is_partial,
    render_page,
    run_action,
    safe_next,
)
from apps.dashboard.tables import Action, Column, Table, TableQuery, deleting, writable
from apps.identity import selectors as identity_selectors
from apps.identity.policy import Actor, require_admin
from apps.images import selectors as image_selectors

# ---- key pairs and flavors: live tables (apps/dashboard/tables.py) --------------------------------
#
# A key pair is named by its name (unique per user, Nova's id for it), a flavor by its flavorid: the
# tables' ``key``, their rows' ids, their actions' URLs and their pages' markers.

def _keypair_page(actor: Actor, page: TableQuery) -> list[KeyPair]:
    return writable(actor, selectors.keypair_list(actor=actor, sort_key=page.sort, ascending=page.ascending,
                                                  search=page.search, limit=page.limit, marker=page.marker))


KEYPAIRS = Table(
    name="keypairs", url_name="compute:keypairs", act_name="compute:keypair_act", page=_keypair_page,
    row_template="compute/_keypair_row.html", key="name",
    columns=(Column("Name", sort="name"), Column("Type", sort="type"), Column("Fingerprint"),
             Column("Created", sort="created_at")),
    default_sort="name", default_ascending=True, live="keypair", search_label="Filter key pairs by name",
    empty="No key pairs yet.",
    actions=(deleting(selectors.keypair_get, services.keypair_delete, "name", noun="key pair",
                      success=lambda k: f"Key pair {k.name} deleted."),))
keypair_act, keypair_delete = KEYPAIRS.action_view(), KEYPAIRS.action_view("delete")


@dashboard_view
def keypairs(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    form = KeyPairForm(request.POST or None)
    status = 200
    private_key = None
    created = None
    if request.method == "POST":
        if form.is_valid():
            try:
                created, private_key = services.keypair_create(
                    actor=actor, name=form.cleaned_data["name"],
                    public_key=form.cleaned_data["public_key"].strip() or None)
            except StratusError as exc:
                form_error(form, exc)
                status = 400
            else:
                if private_key is None:
                    messages.success(request, f"Imported key pair {created.name}.")
                    return HttpResponseRedirect(reverse("compute:keypairs"))
                form = KeyPairForm()
        else:
            status = 400
    context = {"form": form, "created": created, "private_key": private_key}
    response = KEYPAIRS.render(request, "compute/keypairs.html", context, status=status)
    if private_key is not None:
        response["Cache-Control"] = "no-store"
    return response


def _flavor_page(actor: Actor, page: TableQuery) -> list[Flavor]:
    query = selectors.FlavorQuery(sort_key=page.sort, sort_dir=page.direction, limit=page.limit, marker=page.marker,
                                  search=page.search)
    return selectors.flavor_list_all(actor=actor, query=query)


def _flavor_to_delete(*, actor: Actor, flavor_id: str) -> Flavor:
    """The flavor as its admin page reads it (a 403 for anyone but an admin, before a 404)."""
    return selectors.flavor_manage_get(actor=actor, flavor_id=flavor_id)[0]


FLAVORS = Table(
    name="flavors", url_name="compute:flavors", act_name="compute:flavor_act", page=_flavor_page,
    row_template="compute/_flavor_row.html", key="flavorid",
    columns=(Column("Name", sort="name"), Column("ID", sort="flavorid"), Column("vCPUs", sort="vcpus", css="num"),
             Column("RAM", sort="memory_mb", css="num"), Column("Root disk", sort="root_gb", css="num"),
             Column("Ephemeral", sort="ephemeral_gb", css="num"), Column("Swap", sort="swap", css="num"),
             Column("Public", sort="is_public"), Column("Extra specs")),
    default_sort="name", default_ascending=True, live="flavor", search_label="Filter flavors by name",
    empty="No flavors.",
    actions=(deleting(_flavor_to_delete, services.flavor_delete, "flavor_id", noun="flavor",
                      success=lambda f: f"Deleted flavor {f.name}.", allowed=lambda _flavor: True),))
flavor_act, flavor_delete = FLAVORS.action_view(), FLAVORS.action_view("delete")


@dashboard_view
def flavors(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    require_admin(actor, action="manage flavors")
    form = FlavorForm(request.POST or None)

    def create() -> Flavor:
        data = form.cleaned_data
        return services.flavor_create(
            actor=actor, name=data["name"], flavor_id=data["flavor_id"] or None, vcpus=data["vcpus"],
            ram=data["ram"], disk=data["disk"], ephemeral=data["ephemeral"], swap=data["swap"],
            is_public=data["is_public"])

    done = form_action(request, form, create, success=lambda flavor: f"Created flavor {flavor.name}.",
                       redirect_to=reverse("compute:flavors"))
    if done is not None:
        return done
    return FLAVORS.render(request, "compute/flavors.html", {"form": form}, status=400 if form.errors else 200)


# ---- instances -----------------------------------------------------------------------------------
#
# The rows carry what the templates show (status, power state, addresses, the allowed actions), worked
# out from the server selectors and apps.compute.states: the state machine is S's, the views only ask
# it which buttons to show (the service checks again when one is pressed).

BUTTONS = (  # (form action, states.ACTIONS entry, label), in the order they are shown
    ("start", "start", "Start"), ("stop", "stop", "Shut off"), ("reboot_soft", "reboot_soft", "Soft reboot"),
    ("reboot_hard", "reboot_hard", "Hard reboot"), ("pause", "pause", "Pause"), ("unpause", "unpause", "Unpause"),
    ("suspend", "suspend", "Suspend"), ("resume", "resume", "Resume"),
    ("confirm_resize", "confirmResize", "Confirm resize"), ("revert_resize", "revertResize", "Revert resize"),
)
FORM_ACTIONS = {"rebuild": "rebuild", "resize": "resize", "snapshot": "createImage"}
ACTION_MESSAGES = {  # what the page says once a button's request is accepted ({} is the instance's name)
    "start": "Starting instance {}.", "stop": "Shutting off instance {}.",
    "reboot_soft": "Rebooting instance {} (soft reboot).", "reboot_hard": "Rebooting instance {} (hard reboot).",
    "pause": "Pausing instance {}.", "unpause": "Unpausing instance {}.", "suspend": "Suspending instance {}.",
    "resume": "Resuming instance {}.", "lock": "Locked instance {}.", "unlock": "Unlocked instance {}.",
    "rebuild": "Rebuilding instance {}.", "resize": "Resizing instance {}.",
    "confirm_resize": "Confirming the resize of instance {}.", "revert_resize": "Reverting the resize of instance {}.",
}


def _allowed(instance: Instance, action: str) -> bool:
    entry = states.ACTIONS[action]
    return instance.vm_state in entry.allowed and (instance.task_state is None or entry.any_task)


def _decorate(instances: list[Instance], *, actor: Actor, images: dict[str, str],
              projects: dict[str, str] | None = None) -> list[Instance]:
    """Attach what a row shows to each instance (no queries: the selectors prefetched it)."""
    for inst in instances:
        flavor = inst.flavor or {}
        inst.status_label = states.status(inst.vm_state, inst.task_state)  # type: ignore[attr-defined]
        inst.power_label = states.POWER_STATES.get(inst.power_state, "NOSTATE")  # type: ignore[attr-defined]
        inst.flavor_name = flavor.get("original_name") or inst.flavor_ref  # type: ignore[attr-defined]
        inst.image_name = images.get(inst.image_id) or inst.image_id  # type: ignore[attr-defined]
        inst.zone = inst.node.availability_zone if inst.node is not None else (inst.availability_zone or "")  # type: ignore[attr-defined]
        inst.address_rows = [(net, [a["addr"] for a in entries])  # type: ignore[attr-defined]
                             for net, entries in server_selectors.addresses(inst).items()]
        newest = getattr(inst, "fault", None)  # set by the selectors (the newest fault)
        inst.fault = newest if inst.vm_state == states.ERROR else None  # type: ignore[attr-defined]
        inst.project_name = (projects or {}).get(inst.project_id, "")  # type: ignore[attr-defined]
        writable = may_change(actor, inst)
        inst.can_write = writable  # type: ignore[attr-defined]
        inst.buttons = [(name, label) for name, action, label in BUTTONS  # type: ignore[attr-defined]
                        if writable and _allowed(inst, action)]
        inst.form_actions = {name for name, action in FORM_ACTIONS.items()  # type: ignore[attr-defined]
                             if writable and _allowed(inst, action)}
        inst.can_lock = writable  # type: ignore[attr-defined]
        inst.can_delete = writable and _allowed(inst, "delete")  # type: ignore[attr-defined]
        inst.busy = inst.task_state is not None or inst.vm_state == states.BUILDING  # type: ignore[attr-defined]
    return instances


def _instance_page(actor: Actor, page: TableQuery, *, all_projects: bool = False) -> list[Instance]:
    """One page of the instance table through Nova's server list (its sort keys, its name filter)."""
    query = server_selectors.ServerQuery(name=re.escape(page.search) or None, sort_keys=(page.sort,),
                                         sort_dirs=(page.direction,), limit=page.limit, marker=page.marker)
    if all_projects:
        rows = list(server_selectors.server_list_every_project(actor=actor, query=query))
        projects = identity_selectors.project_names(actor=actor, project_ids={i.project_id for i in rows})
    else:
        rows, projects = server_selectors.server_list(actor=actor, query=query), None
    return _decorate(rows, actor=actor, images=image_selectors.image_names(actor=actor), projects=projects)


def _on_instance(run: Callable[..., Any], message: str) -> tuple[Callable[[Actor, str], Instance],
                                                                  Callable[[Instance], str]]:
    """An instance table action: ``run`` (a lifecycle service) on one instance, and its message."""
    def call(actor: Actor, server_id: str) -> Instance:
        instance = server_selectors.server_get(actor=actor, server_id=server_id)
        run(actor=actor, server_id=instance.id, request_id=_request_id())
        return instance

    return call, lambda instance: message.format(name=instance.name)


def _has_button(name: str) -> Callable[[Instance], bool]:
    return lambda instance: any(button == name for button, _ in instance.buttons)  # type: ignore[attr-defined]


def _power(action: str) -> Callable[..., Any]:
    return lambda **common: server_lifecycle.server_power(action=action, **common)


INSTANCE_COLUMNS = (
    Column("Name", sort="display_name"), Column("Project", when="all_projects"),
    Column("Host", sort="host", when="all_projects"), Column("Image"), Column("IP addresses"), Column("Flavor"),
    Column("Key pair", sort="key_name"), Column("Status", sort="vm_state"), Column("Task", sort="task_state"),
    Column("Power state", sort="power_state"), Column("Zone", sort="availability_zone"),
    Column("Age", sort="created_at"),
)
INSTANCE_ACTIONS = (
    Action("start", "Start", *_on_instance(_power("start"), "Requested start of instance {name}."),
           allowed=_has_button("start"), bulk=True),
    Action("stop", "Shut off", *_on_instance(_power("stop"), "Requested stop of instance {name}."),
           allowed=_has_button("stop"), bulk=True, confirm="Shut off instance {name}?"),
    Action("delete", "Delete", *_on_instance(server_lifecycle.server_delete, "Deletion of instance {name} requested."),
           allowed=lambda instance: instance.can_delete, bulk=True, danger=True,  # type: ignore[attr-defined]
           confirm="Delete instance {name}?", icon="trash"),
)


def _instance_data(instance: Instance) -> dict[str, str]:
    return {"name": instance.name, "status": instance.status_label}  # type: ignore[attr-defined]


INSTANCES = Table(
    name="instances", url_name="compute:instances", act_name="compute:instance_act", columns=INSTANCE_COLUMNS,
    page=_instance_page,
    row_template="compute/_instance_row.html", default_sort="created_at", live="instance",
    actions=INSTANCE_ACTIONS, row_data=_instance_data, search_label="Filter instances by name",
    empty="No instances yet.")
ALL_INSTANCES = replace(INSTANCES, url_name="compute:all_instances", act_name="compute:all_instances_act",
                        page=lambda actor, page: _instance_page(actor, page, all_projects=True))
instance_act, instance_delete = INSTANCES.action_view(), INSTANCES.action_view("delete")
all_instances_act = ALL_INSTANCES.action_view()


@dashboard_view
def instances(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    context = {"all_projects": False, "can_write": actor.project_id is not None and actor.may_write(actor.project_id)}
    return INSTANCES.render(request, "compute/instances.html", context)


@dashboard_view
def all_instances(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    context = ALL_INSTANCES.context(request, {"all_projects": True, "can_write": False})
    rows = [entry["row"] for entry in context["table"]["rows"]]
    context["watched"] = list(dict.fromkeys(i.project_id for i in rows if i.project_id != actor.project_id))[:15]
    return render_page(request, "compute/all_instances.html", context, partial="dashboard/_table_live.html")


def _request_id() -> str:
    return f"req-{uuid.uuid4()}"


def _rebuild_images(actor: Actor) -> list[tuple[str, str]]:
    return list(image_selectors.image_names(actor=actor, active=True).items())


def _flavor_choices(actor: Actor) -> list[Flavor]:
    return selectors.flavor_list(actor=actor, query=selectors.FlavorQuery())


@dashboard_view
def instance_detail(request: HttpRequest, server_id: str) -> HttpResponse:
    actor = actor_for(request)
    instance = server_selectors.server_get(actor=actor, server_id=server_id)
    _decorate([instance], actor=actor, images=image_selectors.image_names(actor=actor))
    groups: list[str] = []
    for port in getattr(instance, "ports", []):
        groups.extend(g.name for g in port.security_groups.all())
    context = {
        "instance": instance, "actions": server_selectors.server_actions(actor=actor, server_id=server_id),
        "security_groups": list(dict.fromkeys(groups or instance.security_groups or [])),
        "metadata": sorted((instance.metadata or {}).items()),
        "tags": getattr(instance, "tag_list", None) or sorted(t.tag for t in instance.tags.all()),
        "images": _rebuild_images(actor) if "rebuild" in instance.form_actions else [],  # type: ignore[attr-defined]
        "flavors": [f for f in _flavor_choices(actor) if f.flavorid != instance.flavor_ref]
        if "resize" in instance.form_actions else [],  # type: ignore[attr-defined]
        "action_form": InstanceActionForm(),
    }
    if not is_partial(request):  # the Volumes section refreshes itself (views_volumes.instance_volumes)
        context.update(volumes_context(actor, instance))
        context["attached"] = floating_ip_choices(actor, instance)["attached"]
    return render_page(request, "compute/instance_detail.html", context, partial="compute/_instance_live.html")


POWER_BUTTONS = frozenset({"start", "stop", "pause", "unpause", "suspend", "resume"})


def _run_button(data: dict[str, Any], **common: Any) -> Any:
    """The typed service of one button of the instance page, with the arguments the API would give it."""
    action = data["action"]
    if action in POWER_BUTTONS:
        return server_lifecycle.server_power(action=action, **common)
    if action in ("reboot_soft", "reboot_hard"):
        return server_lifecycle.server_reboot(type="SOFT" if action == "reboot_soft" else "HARD", **common)
    if action == "lock":
        return server_lifecycle.server_lock(**common)
    if action == "unlock":
        return server_lifecycle.server_unlock(**common)
    if action == "rebuild":
        return server_rebuild_resize.server_rebuild(image_ref=data["image"], **common)
    if action == "resize":
        return server_rebuild_resize.server_resize(flavor_ref=data["flavor"], **common)
    if action == "confirm_resize":
        return server_rebuild_resize.server_resize_confirm(**common)
    if action == "revert_resize":
        return server_rebuild_resize.server_resize_revert(**common)
    return server_snapshots.server_image_create(name=data["name"].strip(), **common)


@require_POST
@dashboard_view
def instance_action(request: HttpRequest, server_id: str) -> HttpResponse:
    """One button of the instance page (a refusal of the service is shown as a message, nothing changes)."""
    actor = actor_for(request)
    instance = server_selectors.server_get(actor=actor, server_id=server_id)
    form = InstanceActionForm(request.POST)

    def success(result: Any) -> str:
        data = form.cleaned_data
        if data["action"] == "snapshot":
            return f"Snapshot {data['name'].strip()} requested (image {result})."
        return ACTION_MESSAGES.get(data["action"], "Requested {} of instance {{}}.".format(
            data["action"].replace("_", " "))).format(instance.name)

    return instance_button(request, actor=actor, instance=instance, form=form, success=success,
                           back=safe_next(request, reverse("compute:instance", args=[instance.id])),
                           call=lambda data: _run_button(data, actor=actor, server_id=instance.id,
                                                         request_id=_request_id()))


@dashboard_view
def instance_console(request: HttpRequest, server_id: str) -> HttpResponse:
    """The guest's serial console live (xterm.js on the console socket, apps/compute/consumers.py) where
    its node's hypervisor has one, or its screen (``?console=vnc``: noVNC on the VNC socket) where its
    domain has graphics (as its node reported them: else the page says why there is none), and its console
    log, asked from its node (os-getConsoleOutput)."""
    actor = actor_for(request)
    instance = server_selectors.server_get(actor=actor, server_id=server_id)
    serial = server_console.serial_console_available(instance=instance)
    vnc_state = server_console.vnc_console_state(instance=instance)
    vnc = vnc_state == "available"
    shown = "vnc" if vnc and (request.GET.get("console") == "vnc" or not serial) else "serial" if serial else ""
    try:
        length = int(request.GET.get("length", "200"))
    except ValueError:
        length = 200
    output, error = "", ""
    try:
        check.integer(length, field="length", minimum=-1)
        output = server_console.server_console_output(actor=actor, server_id=instance.id,
                                                      length=None if length == -1 else length)
    except Forbidden:
        raise
    except StratusError as exc:
        error = exc.shown
    return render_page(request, "compute/instance_console.html",
                       {"instance": instance, "output": output, "error": error, "length": length,
                        "serial_console": serial, "vnc_console": vnc, "vnc_state": vnc_state, "shown": shown})


# ---- admin: hypervisors, compute services, usage ------------------------------------------------

def _hypervisor_page(actor: Actor, page: TableQuery) -> list[Any]:
    return node_selectors.node_list(actor=actor, hostname_pattern=page.search or None, sort_key=page.sort,
                                    ascending=page.ascending, limit=page.limit, marker=page.marker)


HYPERVISORS = Table(
    name="hypervisors", url_name="compute:hypervisors", act_name="compute:hypervisors", page=_hypervisor_page,
    row_template="compute/_hypervisor_row.html", action_column=False,
    columns=(Column("Hostname", sort="hypervisor_hostname"), Column("Type", sort="hypervisor_type"),
             Column("Host IP", sort="host_ip"), Column("Zone", sort="availability_zone"), Column("State", sort="is_up"),
             Column("Status", sort="enabled"), Column("vCPUs used / capacity", sort="vcpus_used"),
             Column("RAM used / capacity", sort="memory_mb_used"), Column("Disk used / capacity", sort="local_gb_used"),
             Column("Instances", sort="running_vms", css="num"), Column("Last heartbeat", sort="last_heartbeat")),
    default_sort="hypervisor_hostname", default_ascending=True, live="instance",
    search_label="Filter by hypervisor hostname", empty="No compute nodes have registered.",
    row_data=lambda node: {"name": node.hypervisor_hostname, "host": node.host})


@dashboard_view
def hypervisors(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    if request.GET.get("partial") == "1":  # the table alone
        return HYPERVISORS.render(request, "compute/hypervisors.html", {})
    context = {"stats": node_selectors.node_statistics(actor=actor),
               "capacity": node_selectors.node_capacity_totals(actor=actor)}
    if request.GET.get("partial") == "summary":  # the figures above the table, refreshed live on their own
        return render_page(request, "compute/_hypervisor_summary.html", context)
    return HYPERVISORS.render(request, "compute/hypervisors.html", context)


def _service_page(actor: Actor, page: TableQuery) -> list[Any]:
    return node_selectors.service_list(actor=actor, search=page.search, sort_key=page.sort,
                                       ascending=page.ascending, limit=page.limit, marker=page.marker)


def _switch_service(enable: bool) -> Callable[..., Any]:
    """Enable or disable one compute service (node_services.compute_service_update), with ``reason``
    when disabling (the row's form has one, a bulk none)."""
    def call(actor: Actor, pk: str, *, reason: str = "") -> Any:
        return node_services.compute_service_update(
            actor=actor, node_id=pk, status="enabled" if enable else "disabled",
            disabled_reason=None if enable else (reason or None))
    return call


def _switched(node: Any) -> str:
    return f"Compute service on {node.host} {'enabled' if node.enabled else 'disabled'}."


SERVICES = Table(
    name="services", url_name="compute:services", act_name="compute:service_act", page=_service_page,
    row_template="compute/_service_row.html",
    columns=(Column("ID", sort="id"), Column("Binary"), Column("Host", sort="host"),
             Column("Zone", sort="availability_zone"), Column("Status", sort="enabled"), Column("State", sort="is_up"),
             Column("Updated", sort="last_heartbeat"), Column("Disabled reason")),
    default_sort="host", default_ascending=True, search_label="Filter by host", empty="No compute services.",
    row_data=lambda node: {"name": node.host, "host": node.host},
    # the row's Disable is its own form (compute:service_update), which has the reason field
    actions=(Action("enable", "Enable", call=_switch_service(True), success=_switched, bulk=True,
                    allowed=lambda node: not node.enabled),
             Action("disable", "Disable", call=_switch_service(False), success=_switched, bulk=True, danger=True,
                    row=False, allowed=lambda node: node.enabled,
                    confirm="Disable the compute service on {name}? No new instance is scheduled there until it "
                            "is enabled again.")))
compute_service_act = SERVICES.action_view()


@dashboard_view
def compute_services(request: HttpRequest) -> HttpResponse:
    return SERVICES.render(request, "compute/services.html", {"binary": node_selectors.SERVICE_BINARY})


@require_POST
@dashboard_view
def compute_service_update(request: HttpRequest, node_id: int) -> HttpResponse:
    """A row's own Enable or Disable (with its reason): the table's actions' call for one row."""
    actor = actor_for(request)
    node = node_selectors.service_get(actor=actor, service_id=node_id)
    enable = request.POST.get("status") == "enabled"
    form = ServiceDisableForm(request.POST)
    reason = form.cleaned_data.get("disabled_reason", "").strip() if form.is_valid() else ""
    return run_action(request, lambda: _switch_service(enable)(actor, str(node.id), reason=reason),
                      success=f"Compute service on {node.host} {'enabled' if enable else 'disabled'}.",
                      redirect_to=reverse("compute:services"))


def _period(form: UsagePeriodForm) -> tuple[datetime, datetime]:
    now = timezone.now()
    if form.is_bound and form.is_valid():
        tz = timezone.get_current_timezone()
        start = datetime.combine(form.cleaned_data["start"], time.min, tzinfo=tz)
        stop = min(datetime.combine(form.cleaned_data["end"], time.min, tzinfo=tz) + timedelta(days=1), now)
        return start, max(stop, start + timedelta(seconds=1))
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0), now


@dashboard_view
def usage(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    form = UsagePeriodForm(request.GET if "start" in request.GET else None)
    start, stop = _period(form)
    if not form.is_bound:
        form = UsagePeriodForm(initial={"start": start.date(), "end": stop.date()})
    rows = node_selectors.project_usage(actor=actor, start=start, stop=stop, detailed=True)
    names = identity_selectors.project_names(actor=actor)
    for row in rows:
        row.project_name = names.get(row.tenant_id, row.tenant_id)  # type: ignore[attr-defined]
        row.active = sum(1 for s in row.server_usages if s.ended_at is None)  # type: ignore[attr-defined]
    context = {"rows": sorted(rows, key=lambda r: r.project_name), "form": form,  # type: ignore[attr-defined]
               "start": start, "stop": stop}
    return render_page(request, "compute/usage.html", context, status=400 if form.errors else 200)


@dashboard_view
def instance_action_events(request: HttpRequest, server_id: str, request_id: str) -> HttpResponse:
    """One entry of the action log with its events (os-instance-actions/{request_id}); the host and
    traceback of an event are for admins only, as in Nova."""
    actor = actor_for(request)
    instance = server_selectors.server_get(actor=actor, server_id=server_id, with_deleted=actor.is_admin)
    action = server_selectors.server_action_get(actor=actor, server_id=instance.id, request_id=request_id)
    return render_page(request, "compute/instance_action.html",
                       {"instance": instance, "action": action, "events": list(action.events.all()),
                        "show_details": actor.is_admin})
