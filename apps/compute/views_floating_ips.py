"""Floating IPs from the instance (its row and its page): pick one of the project's free floating IPs or
allocate one from a pool, and the instance's address by network name; release the association again.
The same networking services as Neutron's floating IP API (``floatingip_create``/``floatingip_update``)."""
from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.compute.forms import InstanceFloatingIPForm
from apps.compute.models import Instance
from apps.compute.selectors import servers as server_selectors
from apps.core.errors import Forbidden, NotFound
from apps.dashboard.shell import actor_for, dashboard_view, form_action, run_action, safe_next
from apps.identity.policy import Actor
from apps.networks import selectors as network_selectors
from apps.networks import services as network_services
from apps.networks.models import NETWORK_OWNERS, FloatingIP
from apps.networks.selectors import ListQuery


def floating_ip_choices(actor: Actor, instance: Instance) -> dict[str, Any]:
    """The form's choices, all of the instance's project: its free floating IPs, the pools (external
    networks) and the instance's fixed IPv4 addresses; and the floating IPs it already has."""
    networks = {n.id: n for n in network_selectors.network_list(actor=actor)}
    ports = network_selectors.port_list(actor=actor, query=ListQuery(filters={"device_id": [instance.id]}))
    fips = network_selectors.floatingip_list(actor=actor,
                                             query=ListQuery(filters={"project_id": [instance.project_id]}))
    addresses = []
    for port in ports:
        network = networks.get(port.network_id)
        if port.project_id != instance.project_id or port.device_owner in NETWORK_OWNERS or network is None:
            continue
        for allocation in port.fixed_ips.all():
            if ":" not in allocation.ip_address:
                addresses.append((f"{port.id}@{allocation.ip_address}",
                                  f"{network.name or network.id}: {allocation.ip_address}"))
    port_ids = {value.partition("@")[0] for value, _ in addresses}
    attached = [f for f in fips if f.port_id in port_ids]
    for fip in attached:
        fip.fixed_label = dict(addresses).get(f"{fip.port_id}@{fip.fixed_ip_address}", fip.fixed_ip_address)  # type: ignore[attr-defined]
    free = [(f.id, f"{f.floating_ip_address} ({_pool(networks, f)})") for f in fips if f.port_id is None]
    pools = [(n.id, n.name or n.id) for n in networks.values() if n.external]
    return {"free": free, "pools": pools, "ports": addresses, "attached": attached}


def _pool(networks: dict[str, Any], fip: FloatingIP) -> str:
    network = networks.get(fip.floating_network_id)
    return network.name or network.id if network is not None else "unknown pool"


@dashboard_view
def instance_floating_ip_associate(request: HttpRequest, server_id: str) -> HttpResponse:
    actor = actor_for(request)
    instance = server_selectors.server_get(actor=actor, server_id=server_id)
    choices = floating_ip_choices(actor, instance)
    form = InstanceFloatingIPForm(request.POST or None, free=choices["free"], pools=choices["pools"],
                                  ports=choices["ports"])

    def associate() -> FloatingIP:
        fip_id, pool, port_id, fixed = form.target()
        if fip_id is None:
            return network_services.floatingip_create(actor=actor, floating_network_id=pool or "", port_id=port_id,
                                                      fixed_ip_address=fixed, project_id=instance.project_id)
        return network_services.floatingip_update(actor=actor, floatingip_id=fip_id,
                                                  changes={"port_id": port_id, "fixed_ip_address": fixed})

    back = safe_next(request, reverse("compute:instance", args=[instance.id]))
    done = form_action(request, form, associate, redirect_to=back, passthrough=(Forbidden,),
                       success=lambda fip: f"Floating IP {fip.floating_ip_address} now reaches instance "
                                           f"{instance.name} at {fip.fixed_ip_address}.")
    if done is not None:
        return done
    return render(request, "compute/instance_floating_ip.html",
                  {"form": form, "instance": instance, "attached": choices["attached"], "back": back},
                  status=400 if form.errors else 200)


@require_POST
@dashboard_view
def instance_floating_ip_disassociate(request: HttpRequest, server_id: str, floatingip_id: str) -> HttpResponse:
    actor = actor_for(request)
    instance = server_selectors.server_get(actor=actor, server_id=server_id)
    fip = next((f for f in floating_ip_choices(actor, instance)["attached"] if f.id == floatingip_id), None)
    if fip is None:  # not one of the instance's (or not visible at all): a 404 page
        raise NotFound(f"Floating IP {floatingip_id} is not associated with instance {instance.name}.")
    return run_action(request, lambda: network_services.floatingip_update(actor=actor, floatingip_id=fip.id,
                                                                          changes={"port_id": None}),
                      success=f"Disassociated floating IP {fip.floating_ip_address} from instance {instance.name}.",
                      redirect_to=reverse("compute:instance", args=[instance.id]))
