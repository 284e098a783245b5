"""The networking panels (section Network): networks with their subnets, ports, routers, floating
IPs, security groups with their rules, and the network topology picture.

Views parse the form, call the same apps.networks selectors and services as the Neutron API with
the session's Actor, and render. The object named in a URL is read first through its selector
(another project's object is a 404 page, as in the API); a service's refusal is shown as a message
or on the form, and nothing is changed. Lists are a fixed number of selector calls whatever their
length (each selector prefetches what the rows show).
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import replace
from functools import cached_property
from typing import Any

from django.contrib import messages
from django.forms import Form
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.core.access import may_change
from apps.core.errors import Forbidden, StratusError
from apps.dashboard.shell import View, actor_for, dashboard_view, form_action, render_page, run_action
from apps.dashboard.tables import (
    Action,
    Column,
    Table,
    TableQuery,
    deleting,
    nested_action_view,
    with_project_names,
    writable,
)
from apps.identity.policy import Actor
from apps.networks import errors, selectors, services
from apps.networks.forms import (
    AssociateForm,
    FloatingIPForm,
    GatewayForm,
    InterfaceForm,
    NetworkCreateForm,
    NetworkForm,
    PortForm,
    RouterForm,
    RuleForm,
    SecurityGroupForm,
    SubnetEditForm,
    SubnetForm,
)
from apps.networks.models import (
    DEVICE_OWNER_ROUTER_INTERFACE,
    NETWORK_OWNERS,
    FloatingIP,
    Network,
    Port,
    Router,
    SecurityGroupRule,
    Subnet,
)
from apps.networks.selectors import ListQuery
from apps.networks.services import Gateway, PortAttributes


def _query(**filters: Iterable[str]) -> ListQuery:
    return ListQuery(filters={key.replace("__", ":"): list(values) for key, values in filters.items()})


def _act(request: HttpRequest, action: Callable[[], Any], *, success: str, redirect_to: str) -> HttpResponse:
    """A button's service call: the URL's own object was looked up before (404 when not visible), so
    a NotFound here is another object's (a chosen subnet, ...) and shows as a message."""
    return run_action(request, action, success=success, redirect_to=redirect_to, passthrough=(Forbidden,))


def _delete_button(member: str, *, success: Callable[[Any], str], back: Callable[[Any], str]) -> View:
    """The delete button of a ``member`` the URL names: read through ``selectors.<member>_get`` (a 404
    page when not visible), ``services.<member>_delete``, a message either way, then ``back(obj)``."""
    get, delete, key = getattr(selectors, f"{member}_get"), getattr(services, f"{member}_delete"), f"{member}_id"

    @require_POST
    @dashboard_view
    def view(request: HttpRequest, **url: str) -> HttpResponse:
        actor = actor_for(request)
        obj = get(actor=actor, **{key: next(iter(url.values()))})
        return _act(request, lambda: delete(actor=actor, **{key: obj.id}), success=success(obj), redirect_to=back(obj))

    return view


def _form_page(request: HttpRequest, form: Form, call: Callable[[], Any], *, success: Callable[[Any], str],
               back: str, title: str, submit: str, crumbs: str, object_id: str = "",
               passthrough: tuple[type[StratusError], ...] = ()) -> HttpResponse:
    """A form on a page of its own (add, edit): the service call and back to ``back``, else the form
    (again, with the refusal) on the one form template."""
    done = form_action(request, form, call, success=success, redirect_to=back, passthrough=passthrough)
    if done is not None:
        return done
    return render(request, "dashboard/form.html", {"section": "Network", "form": form, "title": title,
                                                   "submit": submit, "back": back, "crumbs": crumbs,
                                                   "object_id": object_id},
                  status=400 if form.errors else 200)


def _list_form(request: HttpRequest, form: Form, call: Callable[[], Any], *, success: Callable[[Any], str],
               redirect_to: str | Callable[[Any], str], template: str, context: Callable[[], dict[str, Any]]
               ) -> HttpResponse:
    """A form on its list page: the service call and on, else the page again (400) with the refusal."""
    done = form_action(request, form, call, success=success, redirect_to=redirect_to)
    return done if done is not None else render(request, template, {**context(), "form": form}, status=400)


def _changed(data: dict[str, Any], initial: dict[str, Any]) -> Any:
    """What an edit form changes (the service's ``changes``)."""
    return {k: v for k, v in data.items() if initial.get(k) != v}


def _base(actor: Actor) -> dict[str, Any]:
    """What every panel's template needs; ``can_write``: the session may create in its project
    (a reader sees the lists without the forms; the services refuse anyway)."""
    return {"is_admin": actor.is_admin, "current": actor.project_id, "can_write": actor.may_write(actor.project_id)}


def _network_names(actor: Actor) -> dict[str, Network]:
    return {n.id: n for n in selectors.network_list(actor=actor)}


def subnets_by_network(subnets: Iterable[Subnet]) -> dict[str, list[Subnet]]:
    grouped: dict[str, list[Subnet]] = defaultdict(list)
    for subnet in subnets:
        grouped[subnet.network_id].append(subnet)
    return grouped


def _externals(actor: Actor) -> list[tuple[str, str]]:
    externals = selectors.network_list(actor=actor, query=_query(router__external=["true"]))
    return [(n.id, n.name or n.id) for n in externals]


def _table_query(page: TableQuery) -> ListQuery:
    """A table's page as a Neutron list asks for it (sort key, the name filter, limit and marker)."""
    return ListQuery(filters={}, sorts=[(page.sort, page.ascending)], limit=page.limit, marker=page.marker,
                     search=page.search)


# ---- networks ------------------------------------------------------------------------------

def _network_page(actor: Actor, page: TableQuery) -> list[Network]:
    networks = list(selectors.network_list(actor=actor, query=_table_query(page)))
    subnets = subnets_by_network(selectors.subnet_list(actor=actor, query=_query(network_id=[n.id for n in networks])))
    for network in networks:
        network.subnet_rows = subnets.get(network.id, [])  # type: ignore[attr-defined]
    return with_project_names(actor, writable(actor, networks))


NETWORKS = Table(
    name="networks", url_name="networks:index", act_name="networks:network_act", page=_network_page,
    row_template="networks/_network_row.html",
    columns=(Column("Name", sort="name"), Column("Subnets"), Column("Status", sort="status"), Column("Flags"),
             Column("Project", when="is_admin"), Column("ID", sort="id")),
    default_sort="name", default_ascending=True, live="network subnet", search_label="Filter networks by name",
    empty="No networks yet.",
    actions=(deleting(selectors.network_get, services.network_delete, "network_id", noun="network",
                      success=lambda n: f"Deleted network {n.name or n.id}."),))
network_act, network_delete = NETWORKS.action_view(), NETWORKS.action_view("delete")


@dashboard_view
def networks(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    return NETWORKS.render(request, "networks/networks.html",
                           {**_base(actor), "form": NetworkCreateForm(is_admin=actor.is_admin)})


@require_POST
@dashboard_view
def network_create(request: HttpRequest) -> HttpResponse:
    """The network, and its first subnet when a CIDR is given: both or neither."""
    actor = actor_for(request)
    form = NetworkCreateForm(request.POST, is_admin=actor.is_admin)

    def create() -> Network:
        data = form.cleaned_data
        return services.network_create(
            actor=actor, name=data["name"], description=data.get("description") or "",
            admin_state_up=bool(data.get("admin_state_up")), shared=bool(data.get("shared")),
            external=bool(data.get("external")), first_subnet=form.subnet_kwargs() if data.get("cidr") else None)

    return _list_form(request, form, create, success=lambda network: f"Created network {network.name}.",
                      redirect_to=lambda network: reverse("networks:network", args=[network.id]),
                      template="networks/networks.html", context=lambda: NETWORKS.context(request, _base(actor)))


@dashboard_view
def network_detail(request: HttpRequest, network_id: str) -> HttpResponse:
    actor = actor_for(request)
    network = with_project_names(actor, [selectors.network_get(actor=actor, network_id=network_id)])[0]
    subnets = list(selectors.subnet_list(actor=actor, query=_query(network_id=[network.id])))
    ports = list(selectors.port_list(actor=actor, query=_query(network_id=[network.id]), named=True))
    names = {s.id: s for s in subnets}
    for port in ports:
        port.ips = [(a.ip_address, names.get(a.subnet_id)) for a in port.fixed_ips.all()]  # type: ignore[attr-defined]
    context = {"network": network, "subnets": subnets, "ports": ports, "may_write": may_change(actor, network),
               **_base(actor)}
    return render_page(request, "networks/network_detail.html", context, partial="networks/_network_detail.html")


@dashboard_view
def network_edit(request: HttpRequest, network_id: str) -> HttpResponse:
    actor = actor_for(request)
    network = selectors.network_get(actor=actor, network_id=network_id)
    initial = {"name": network.name, "description": network.description, "admin_state_up": network.admin_state_up,
               "shared": network.shared, "external": network.external}
    form = NetworkForm(request.POST or None, is_admin=actor.is_admin, initial=initial)
    return _form_page(request, form, lambda: services.network_update(
        actor=actor, network_id=network.id, changes=_changed(form.cleaned_data, initial)),
        success=lambda _: f"Saved network {form.cleaned_data['name']}.",
        back=reverse("networks:network", args=[network.id]), title=f"Edit network {network.name or network.id}",
        submit="Save", crumbs="Networks", object_id=network.id, passthrough=(Forbidden,))


@dashboard_view
def subnet_create(request: HttpRequest, network_id: str) -> HttpResponse:
    actor = actor_for(request)
    network = selectors.network_get(actor=actor, network_id=network_id)
    form = SubnetForm(request.POST or None, initial={"enable_dhcp": True})
    return _form_page(request, form, lambda: services.subnet_create(
        actor=actor, network_id=network.id, **form.subnet_kwargs()),
        success=lambda subnet: f"Created subnet {subnet.cidr}.", back=reverse("networks:network", args=[network.id]),
        title=f"Add a subnet to {network.name or network.id}", submit="Create", crumbs="Networks")


@dashboard_view
def subnet_edit(request: HttpRequest, subnet_id: str) -> HttpResponse:
    actor = actor_for(request)
    subnet = selectors.subnet_get(actor=actor, subnet_id=subnet_id)
    initial = {"name": subnet.name, "gateway_ip": subnet.gateway_ip, "enable_dhcp": subnet.enable_dhcp,
               "dns_nameservers": list(subnet.dns_nameservers)}
    form = SubnetEditForm(request.POST or None, initial={**initial, "gateway_ip": subnet.gateway_ip or "",
                                                         "dns_nameservers": "\n".join(subnet.dns_nameservers)})
    return _form_page(request, form, lambda: services.subnet_update(
        actor=actor, subnet_id=subnet.id, changes=_changed(form.subnet_changes(), initial)),
        success=lambda _: f"Saved subnet {subnet.cidr}.", back=reverse("networks:network", args=[subnet.network_id]),
        title=f"Edit subnet {subnet.name or subnet.cidr}", submit="Save", crumbs="Networks", object_id=subnet.id,
        passthrough=(Forbidden,))


subnet_delete = _delete_button("subnet", success=lambda s: f"Deleted subnet {s.cidr}.",
                               back=lambda s: reverse("networks:network", args=[s.network_id]))


# ---- ports ---------------------------------------------------------------------------------

def _port_page(actor: Actor, page: TableQuery) -> list[Port]:
    ports = list(selectors.port_list(actor=actor, query=_table_query(page), named=True))
    networks = _network_names(actor)
    reasons = selectors.port_down_reasons(actor=actor, ports=ports)
    for port in ports:
        port.network_row = networks.get(port.network_id)  # type: ignore[attr-defined]
        port.down_reason = reasons.get(port.id, "")  # type: ignore[attr-defined]
        port.can_write = may_change(actor, port) and port.device_owner not in NETWORK_OWNERS  # type: ignore[attr-defined]
    return with_project_names(actor, ports)


PORTS = Table(
    name="ports", url_name="networks:ports", act_name="networks:port_act", page=_port_page,
    row_template="networks/_port_row.html",
    columns=(Column("Name", sort="name"), Column("Network"), Column("Fixed IPs"), Column("MAC", sort="mac_address"),
             Column("Attached to", sort="device_owner"), Column("Status", sort="status"),
             Column("Project", when="is_admin")),
    default_sort="name", default_ascending=True, live="port", search_label="Filter ports by name",
    empty="No ports yet.", row_data=lambda p: {"name": p.name, "owner": p.device_owner},
    actions=(deleting(selectors.port_get, services.port_delete, "port_id", noun="port",
                      success=lambda p: f"Deleted port {p.name or p.id}."),))
port_act, port_delete = PORTS.action_view(), PORTS.action_view("delete")


def _group_choices(actor: Actor) -> list[tuple[str, str]]:
    services.security_group_ensure_default_for(actor=actor)
    return [(g.id, g.name or g.id) for g in selectors.security_group_list(actor=actor)]


ports = PORTS.page_view("networks/ports.html", _base)


@dashboard_view
def port_create(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    networks = [(n.id, n.name or n.id) for n in selectors.network_list(actor=actor) if not n.external]
    form = PortForm(request.POST or None, networks=networks, groups=_group_choices(actor),
                    initial={"network": request.GET.get("network", "")})
    return _form_page(request, form, lambda: services.port_create(
        actor=actor, network_id=form.cleaned_data["network"], **form.attributes()),
        success=lambda port: f"Created port {port.name or port.id}.", back=reverse("networks:ports"),
        title="Create a port", submit="Create", crumbs="Ports")


@dashboard_view
def port_edit(request: HttpRequest, port_id: str) -> HttpResponse:
    actor = actor_for(request)
    port = selectors.port_get(actor=actor, port_id=port_id)
    initial = {"name": port.name, "description": port.description, "admin_state_up": port.admin_state_up,
               "port_security_enabled": port.port_security_enabled,
               "security_groups": [g.id for g in port.security_groups.all()]}
    form = PortForm(request.POST or None, groups=_group_choices(actor), editing=True, initial=initial)

    def update() -> None:
        attributes = form.attributes()
        attributes.setdefault("security_groups", [])
        changes: PortAttributes = _changed(dict(attributes), initial)
        if "port_security_enabled" in changes and not changes["port_security_enabled"]:
            changes["security_groups"] = []  # groups go first, else the service refuses
        services.port_update(actor=actor, port_id=port.id, changes=changes)

    return _form_page(request, form, update,
                      success=lambda _: f"Saved port {form.cleaned_data.get('name') or port.id}.",
                      back=reverse("networks:ports"), title=f"Edit port {port.name or port.id}", submit="Save",
                      crumbs="Ports", object_id=port.id, passthrough=(Forbidden,))


# ---- routers -------------------------------------------------------------------------------

def _interfaces(actor: Actor, routers: list[Router]) -> dict[str, list[Port]]:
    if not routers:
        return {}
    found: dict[str, list[Port]] = defaultdict(list)
    for port in selectors.port_list(actor=actor, query=_query(device_owner=[DEVICE_OWNER_ROUTER_INTERFACE],
                                                              device_id=[r.id for r in routers])):
        found[port.device_id].append(port)
    return found


def _router_page(actor: Actor, page: TableQuery) -> list[Router]:
    routers = list(selectors.router_list(actor=actor, query=_table_query(page)))
    interfaces = _interfaces(actor, routers)
    externals = {r.external_network_id for r in routers if r.external_network_id}
    networks = {n.id: n for n in selectors.network_list(actor=actor, query=_query(id=externals))} if externals else {}
    for router in routers:
        router.interface_rows = interfaces.get(router.id, [])  # type: ignore[attr-defined]
        router.external_row = networks.get(router.external_network_id or "")  # type: ignore[attr-defined]
    return with_project_names(actor, writable(actor, routers))


ROUTERS = Table(
    name="routers", url_name="networks:routers", act_name="networks:router_act", page=_router_page,
    row_template="networks/_router_row.html",
    columns=(Column("Name", sort="name"), Column("External gateway"), Column("Interfaces"),
             Column("Status", sort="status"), Column("Project", when="is_admin"), Column("ID", sort="id")),
    default_sort="name", default_ascending=True, live="router", search_label="Filter routers by name",
    empty="No routers yet.",
    actions=(deleting(selectors.router_get, services.router_delete, "router_id", noun="router",
                      success=lambda r: f"Deleted router {r.name or r.id}."),))
router_act, router_delete = ROUTERS.action_view(), ROUTERS.action_view("delete")


@dashboard_view
def routers(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    return ROUTERS.render(request, "networks/routers.html",
                          {**_base(actor), "form": RouterForm(externals=_externals(actor))})


@require_POST
@dashboard_view
def router_create(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    form = RouterForm(request.POST, externals=_externals(actor))

    def create() -> Router:
        data = form.cleaned_data
        gateway = Gateway(network_id=data["external_network"]) if data.get("external_network") else None
        return services.router_create(actor=actor, name=data["name"], description=data.get("description") or "",
                                      admin_state_up=bool(data.get("admin_state_up")), external_gateway_info=gateway)

    return _list_form(request, form, create, success=lambda router: f"Created router {router.name}.",
                      redirect_to=lambda router: reverse("networks:router", args=[router.id]),
                      template="networks/routers.html", context=lambda: ROUTERS.context(request, _base(actor)))


def _interface_choices(actor: Actor, taken: set[str]) -> list[tuple[str, str]]:
    networks = _network_names(actor)
    choices = []
    for subnet in selectors.subnet_list(actor=actor):
        network = networks.get(subnet.network_id)
        if network is None or network.external or subnet.id in taken or not subnet.gateway_ip:
            continue
        label = f"{network.name or network.id}: {subnet.cidr}" + (f" ({subnet.name})" if subnet.name else "")
        choices.append((subnet.id, label))
    return choices


@dashboard_view
def router_detail(request: HttpRequest, router_id: str) -> HttpResponse:
    actor = actor_for(request)
    router = selectors.router_get(actor=actor, router_id=router_id)
    interfaces = list(selectors.router_interface_ports(router=router))
    networks = _network_names(actor)
    subnets = {s.id: s for s in selectors.subnet_list(actor=actor)}
    rows = [{"port": p, "network": networks.get(p.network_id),
             "ips": [(a.ip_address, subnets.get(a.subnet_id)) for a in p.fixed_ips.all()]} for p in interfaces]
    taken = {a.subnet_id for p in interfaces for a in p.fixed_ips.all()}
    gateway_ips = [a.ip_address for a in router.gw_port.fixed_ips.all()] if router.gw_port else []
    context = {"router": router, "interfaces": rows, "external": networks.get(router.external_network_id or ""),
               "gateway_ips": gateway_ips, "gateway_form": GatewayForm(externals=_externals(actor)),
               "interface_form": InterfaceForm(subnets=_interface_choices(actor, taken)),
               "may_write": may_change(actor, router), **_base(actor)}
    return render_page(request, "networks/router_detail.html", context, partial="networks/_router_detail.html")


@dashboard_view
def router_edit(request: HttpRequest, router_id: str) -> HttpResponse:
    actor = actor_for(request)
    router = selectors.router_get(actor=actor, router_id=router_id)
    initial = {"name": router.name, "description": router.description, "admin_state_up": router.admin_state_up}
    form = RouterForm(request.POST or None, editing=True, initial=initial)
    return _form_page(request, form, lambda: services.router_update(
        actor=actor, router_id=router.id, changes=_changed(form.cleaned_data, initial)),
        success=lambda _: f"Saved router {form.cleaned_data['name']}.",
        back=reverse("networks:router", args=[router.id]), title=f"Edit router {router.name or router.id}",
        submit="Save", crumbs="Routers", object_id=router.id, passthrough=(Forbidden,))


@require_POST
@dashboard_view
def router_gateway(request: HttpRequest, router_id: str) -> HttpResponse:
    actor = actor_for(request)
    router = selectors.router_get(actor=actor, router_id=router_id)
    form = GatewayForm(request.POST, externals=_externals(actor))
    back = reverse("networks:router", args=[router.id])
    if not form.is_valid():
        messages.error(request, "Choose an external network.")
        return HttpResponseRedirect(back)
    info = Gateway(network_id=form.cleaned_data["network"], enable_snat=bool(form.cleaned_data.get("enable_snat")))
    return _act(request, lambda: services.router_update(actor=actor, router_id=router.id,
                                                        changes={"external_gateway_info": info}),
                success="Gateway set.", redirect_to=back)


@require_POST
@dashboard_view
def router_gateway_clear(request: HttpRequest, router_id: str) -> HttpResponse:
    actor = actor_for(request)
    router = selectors.router_get(actor=actor, router_id=router_id)
    return _act(request, lambda: services.router_update(actor=actor, router_id=router.id,
                                                        changes={"external_gateway_info": None}),
                success="Gateway cleared.", redirect_to=reverse("networks:router", args=[router.id]))


@require_POST
@dashboard_view
def router_interface_add(request: HttpRequest, router_id: str) -> HttpResponse:
    actor = actor_for(request)
    router = selectors.router_get(actor=actor, router_id=router_id)
    subnet_id = request.POST.get("subnet", "")
    return _act(request, lambda: services.router_interface_add(actor=actor, router_id=router.id,
                                                               subnet_id=subnet_id or None),
                success="Interface added.", redirect_to=reverse("networks:router", args=[router.id]))


@require_POST
@dashboard_view
def router_interface_remove(request: HttpRequest, router_id: str) -> HttpResponse:
    actor = actor_for(request)
    router = selectors.router_get(actor=actor, router_id=router_id)
    port_id = request.POST.get("port", "") or None
    subnet_id = request.POST.get("subnet", "") or None
    return _act(request, lambda: services.router_interface_remove(actor=actor, router_id=router.id,
                                                                  subnet_id=subnet_id, port_id=port_id),
                success="Interface removed.", redirect_to=reverse("networks:router", args=[router.id]))


# ---- floating IPs --------------------------------------------------------------------------

class _Reads:
    """The selector reads a floating IP page shares, each made once per request."""

    def __init__(self, actor: Actor) -> None:
        self.actor = actor

    @cached_property
    def networks(self) -> dict[str, Network]:
        return _network_names(self.actor)

    @cached_property
    def ports(self) -> list[Port]:
        return list(selectors.port_list(actor=self.actor, named=True))

    def externals(self) -> list[tuple[str, str]]:
        return [(n.id, n.name or n.id) for n in self.networks.values() if n.external]

    def associable(self) -> list[tuple[str, str]]:
        """The ports a floating IP may point at, one choice per IPv4 fixed IP."""
        choices = []
        for port in self.ports:
            network = self.networks.get(port.network_id)
            if port.device_owner in NETWORK_OWNERS or network is None or network.external:
                continue
            for allocation in port.fixed_ips.all():
                if ":" in allocation.ip_address:
                    continue
                label = f"{_port_label(port)}: {allocation.ip_address} on {network.name or network.id}"
                choices.append((f"{port.id}@{allocation.ip_address}", label))
        return choices

    def form(self, data: Any = None) -> FloatingIPForm:
        return FloatingIPForm(data, externals=self.externals(), ports=self.associable())


def _port_label(port: Port) -> str:
    """What a port is called in a choice: the instance or router it serves (by name), else its own
    name, else "port" and the start of its id (a port nobody named)."""
    named = getattr(port, "device_server_name", None) or getattr(port, "device_router_name", None)
    return named or port.name or f"port {port.id[:8]}"


def _floatingip_page(actor: Actor, page: TableQuery) -> list[FloatingIP]:
    fips = list(selectors.floatingip_list(actor=actor, query=_table_query(page), named=True))
    return with_project_names(actor, writable(actor, fips))


def _release() -> Action:
    """Release (the service's delete), a row's button and a bulk action: "Release <address>?"."""
    delete = deleting(selectors.floatingip_get, services.floatingip_delete, "floatingip_id", noun="floating IP",
                      success=lambda f: f"Released floating IP {f.floating_ip_address}.")
    return replace(delete, name="release", label="Release", confirm="Release {name}?")


FLOATINGIPS = Table(
    name="floatingips", url_name="networks:floatingips", act_name="networks:floatingip_act", page=_floatingip_page,
    row_template="networks/_floatingip_row.html",
    columns=(Column("Address", sort="floating_ip_address"), Column("Pool"),
             Column("Mapped to", sort="fixed_ip_address"), Column("Status", sort="status"),
             Column("Project", when="is_admin")),
    default_sort="floating_ip_address", default_ascending=True, live="floatingip",
    search_label="Filter floating IPs by address", empty="No floating IPs allocated.",
    row_data=lambda f: {"name": f.floating_ip_address, "address": f.floating_ip_address},
    actions=(_release(),))
floatingip_act, floatingip_release = FLOATINGIPS.action_view(), FLOATINGIPS.action_view("release")


@dashboard_view
def floatingips(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    return FLOATINGIPS.render(request, "networks/floatingips.html", {**_base(actor), "form": _Reads(actor).form()})


@require_POST
@dashboard_view
def floatingip_allocate(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    reads = _Reads(actor)
    form = reads.form(request.POST)

    def allocate() -> FloatingIP:
        data = form.cleaned_data
        port_id, _, fixed = (data.get("port") or "").partition("@")
        return services.floatingip_create(actor=actor, floating_network_id=data["network"],
                                          description=data.get("description") or "", port_id=port_id or None,
                                          fixed_ip_address=fixed or None)

    return _list_form(request, form, allocate, success=lambda fip: f"Allocated floating IP {fip.floating_ip_address}.",
                      redirect_to=reverse("networks:floatingips"), template="networks/floatingips.html",
                      context=lambda: FLOATINGIPS.context(request, _base(actor)))


@dashboard_view
def floatingip_associate(request: HttpRequest, floatingip_id: str) -> HttpResponse:
    actor = actor_for(request)
    fip = selectors.floatingip_get(actor=actor, floatingip_id=floatingip_id)
    form = AssociateForm(request.POST or None, ports=_Reads(actor).associable())

    def associate() -> None:
        port_id, fixed = form.target()
        services.floatingip_update(actor=actor, floatingip_id=fip.id,
                                   changes={"port_id": port_id, "fixed_ip_address": fixed})

    return _form_page(request, form, associate, success=lambda _: f"Associated floating IP {fip.floating_ip_address}.",
                      back=reverse("networks:floatingips"), title=f"Associate floating IP {fip.floating_ip_address}",
                      submit="Associate", crumbs="Floating IPs", object_id=fip.id, passthrough=(Forbidden,))


@require_POST
@dashboard_view
def floatingip_disassociate(request: HttpRequest, floatingip_id: str) -> HttpResponse:
    actor = actor_for(request)
    fip = selectors.floatingip_get(actor=actor, floatingip_id=floatingip_id)
    return _act(request, lambda: services.floatingip_update(actor=actor, floatingip_id=fip.id,
                                                            changes={"port_id": None}),
                success=f"Disassociated floating IP {fip.floating_ip_address}.",
                redirect_to=reverse("networks:floatingips"))


# ---- security groups -----------------------------------------------------------------------

def _group_page(actor: Actor, page: TableQuery) -> list[Any]:
    groups = list(selectors.security_group_list(actor=actor, query=_table_query(page)))
    return with_project_names(actor, writable(actor, groups))


SECURITY_GROUPS = Table(
    name="groups", url_name="networks:security_groups", act_name="networks:security_group_act", page=_group_page,
    row_template="networks/_security_group_row.html",
    columns=(Column("Name", sort="name"), Column("Description", sort="description"), Column("Rules", css="num"),
             Column("Project", when="is_admin"), Column("ID", sort="id")),
    default_sort="name", default_ascending=True, live="security_group security_group_rule",
    search_label="Filter security groups by name", empty="No security groups.",
    actions=(deleting(selectors.security_group_get, services.security_group_delete, "security_group_id",
                      noun="security group", success=lambda g: f"Deleted security group {g.name}.",
                      allowed=lambda g: g.can_write and not g.is_default),))
security_group_act, security_group_delete = SECURITY_GROUPS.action_view(), SECURITY_GROUPS.action_view("delete")


@dashboard_view
def security_groups(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    services.security_group_ensure_default_for(actor=actor)  # as Neutron's list does
    return SECURITY_GROUPS.render(request, "networks/security_groups.html",
                                  {**_base(actor), "form": SecurityGroupForm()})


@require_POST
@dashboard_view
def security_group_create(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    form = SecurityGroupForm(request.POST)
    return _list_form(request, form, lambda: services.security_group_create(
        actor=actor, name=form.cleaned_data["name"], description=form.cleaned_data.get("description") or ""),
        success=lambda group: f"Created security group {group.name}.",
        redirect_to=lambda group: reverse("networks:security_group", args=[group.id]),
        template="networks/security_groups.html", context=lambda: SECURITY_GROUPS.context(request, _base(actor)))


# ---- a security group's rules: a live table inside the group's page ---------------------------------

ICMP = ("icmp", "ipv6-icmp", "icmpv6", "1", "58")


def rule_words(rule: SecurityGroupRule, remote_name: str = "") -> str:
    """A rule in words, as its confirmation and outcome name it: "ingress TCP 22 from 0.0.0.0/0"."""
    protocol = rule.protocol or ""
    words = [rule.direction, f"protocol {protocol}" if protocol.isdigit() else protocol.upper() or "any protocol"]
    low, high = rule.port_range_min, rule.port_range_max
    if low is not None and protocol in ICMP:
        words.append(f"type {low}" + (f" code {high}" if high is not None else ""))
    elif low is not None:
        words.append(str(low) if high in (None, low) else f"{low}-{high}")
    if rule.remote_group_id:
        remote = f"group {remote_name or rule.remote_group_id[:8]}"
    else:
        remote = rule.remote_ip_prefix or ("::/0" if rule.ethertype == "IPv6" else "0.0.0.0/0")
    return " ".join([*words, "from" if rule.direction == "ingress" else "to", remote])


def _rules(actor: Actor, query: ListQuery) -> list[SecurityGroupRule]:
    """The rules ``query`` asks for, each with ``remote_name`` (its remote group's, when visible) and
    ``words``: one query (and the marker's)."""
    rules = list(selectors.security_group_rule_list(actor=actor, query=query, remote_names=True))
    for rule in rules:
        rule.remote_name = rule.remote_group_name or ""  # type: ignore[attr-defined]
        rule.words = rule_words(rule, rule.remote_name)  # type: ignore[attr-defined]
    return rules


def _rules_page(group: Any) -> Callable[[Actor, TableQuery], list[SecurityGroupRule]]:
    def page(actor: Actor, query: TableQuery) -> list[SecurityGroupRule]:
        rules = _rules(actor, replace(_table_query(query), filters={"security_group_id": [group.id]}))
        can_write = may_change(actor, group)
        for rule in rules:
            rule.can_write = can_write  # type: ignore[attr-defined]
        return rules

    return page


def _rule_delete(group: Any) -> Action:
    """Delete a rule of ``group`` (one of another group is not found here): one service call."""
    def call(actor: Actor, rule_id: str) -> SecurityGroupRule:
        rule = next(iter(_rules(actor, _query(id=[rule_id], security_group_id=[group.id]))), None)
        if rule is None:  # not found, or another group's
            raise errors.SecurityGroupRuleNotFound(f"Security group rule {rule_id} does not exist")
        services.security_group_rule_delete(actor=actor, rule_id=rule.id)
        return rule

    return Action("delete", "Delete", call=call, success=lambda rule: f"Deleted rule {rule.words}.",
                  allowed=lambda rule: rule.can_write, bulk=True, danger=True, icon="trash",
                  confirm=lambda rule: f"Delete rule {rule.words} of security group {group.name or group.id}?")


def _rule_data(rule: Any) -> dict[str, str]:
    port = "" if rule.port_range_min is None else rule.port_range_min
    return {"name": rule.words, "rule": f"{rule.direction} {rule.protocol or 'any'} {port}"}


RULES = Table(
    name="rules", url_name="networks:security_group", act_name="networks:rule_act", page=lambda _a, _q: [],
    row_template="networks/_rule_row.html", row_data=_rule_data,
    columns=(Column("Direction", sort="direction"), Column("Ether type", sort="ethertype"),
             Column("Protocol", sort="protocol"), Column("Port range", sort="port_range_min"),
             Column("Remote", sort="remote_ip_prefix"), Column("Description", sort="description")),
    default_sort="direction", default_ascending=True, live="security_group security_group_rule",
    search_label="Filter rules by direction, protocol, remote or description", empty="No rules: nothing is allowed.")


def _rules_table(group: Any) -> Table:
    return replace(RULES, page=_rules_page(group), url_args=(group.id,), actions=(_rule_delete(group),))


def _rules_of(actor: Actor, group_id: str) -> Table:
    return _rules_table(selectors.security_group_get(actor=actor, security_group_id=group_id))


rule_act, rule_delete = nested_action_view(_rules_of), nested_action_view(_rules_of, "delete", key="rule_id")


def _rule_context(actor: Actor, group: Any) -> dict[str, Any]:
    """The group's page around its rules: the rule form's remote groups (the group's project's)."""
    choices = [(g.id, g.name or g.id) for g in selectors.security_group_list(
        actor=actor, query=_query(project_id=[group.project_id]))]
    return {"group": group, "form": RuleForm(groups=choices), "choices": choices,
            "may_write": may_change(actor, group), **_base(actor)}


@dashboard_view
def security_group_detail(request: HttpRequest, group_id: str) -> HttpResponse:
    actor = actor_for(request)
    group = selectors.security_group_get(actor=actor, security_group_id=group_id)
    return _rules_table(group).render(request, "networks/security_group_detail.html", _rule_context(actor, group))


@require_POST
@dashboard_view
def rule_create(request: HttpRequest, group_id: str) -> HttpResponse:
    actor = actor_for(request)
    group = selectors.security_group_get(actor=actor, security_group_id=group_id)
    context = _rule_context(actor, group)
    form = RuleForm(request.POST, groups=context["choices"])
    done = form_action(request, form, lambda: services.security_group_rule_create(
        actor=actor, security_group_id=group.id, **form.rule_kwargs()),
        success=lambda _: "Rule added.", redirect_to=reverse("networks:security_group", args=[group.id]))
    return done or _rules_table(group).render(request, "networks/security_group_detail.html",
                                              {**context, "form": form}, status=400)
