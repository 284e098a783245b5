"""The admins' Network agents panel (Admin > Network agents): each node's agent with its state (alive
or down by its heartbeat, admin state up or down, whether it can apply network state, whether it hosts
DHCP and routers, its last sync), turned off/on and forgotten through the networking services; and a
port's page, which says why a DOWN port is down (``selectors.port_down_reasons``, the one place that
reason is computed)."""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.core.access import may_change
from apps.dashboard.shell import actor_for, dashboard_view, render_page, run_action
from apps.dashboard.tables import with_project_names
from apps.networks import selectors, services
from apps.networks.models import NETWORK_OWNERS


@dashboard_view
def agents(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    rows = selectors.agent_states(actor=actor)
    return render_page(request, "networks/agents.html", {"agents": rows, "down_after": selectors.AGENT_DOWN_SECONDS},
                       partial="networks/_agents_table.html")


def _switch(request: HttpRequest, agent_id: str, *, up: bool) -> HttpResponse:
    actor = actor_for(request)
    agent = selectors.agent_get(actor=actor, agent_id=agent_id)
    return run_action(request, lambda: services.network_agent_update(actor=actor, agent=agent,
                                                                     changes={"admin_state_up": up}),
                      success=f"{'Enabled' if up else 'Disabled'} the network agent on {agent.host}.",
                      redirect_to=reverse("networks:agents"))


@require_POST
@dashboard_view
def agent_enable(request: HttpRequest, agent_id: str) -> HttpResponse:
    return _switch(request, agent_id, up=True)


@require_POST
@dashboard_view
def agent_disable(request: HttpRequest, agent_id: str) -> HttpResponse:
    return _switch(request, agent_id, up=False)


@require_POST
@dashboard_view
def agent_delete(request: HttpRequest, agent_id: str) -> HttpResponse:
    actor = actor_for(request)
    agent = selectors.agent_get(actor=actor, agent_id=agent_id)
    return run_action(request, lambda: services.network_agent_delete(actor=actor, agent=agent),
                      success=f"Forgot the network agent on {agent.host}; it registers again when its worker starts.",
                      redirect_to=reverse("networks:agents"))


@dashboard_view
def port_detail(request: HttpRequest, port_id: str) -> HttpResponse:
    """One port: its facts, its fixed IPs by subnet, and when DOWN the reason."""
    actor = actor_for(request)
    port = with_project_names(actor, [selectors.port_get(actor=actor, port_id=port_id)])[0]
    reason = selectors.port_down_reasons(actor=actor, ports=[port]).get(port.id, "")
    context = {"port": port, "down_reason": reason, "may_write": may_change(actor, port), "is_admin": actor.is_admin,
               "network_owned": port.device_owner in NETWORK_OWNERS}
    return render_page(request, "networks/port_detail.html", context, partial="networks/_port_detail.html")
