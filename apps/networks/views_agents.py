"""The admins' Network agents panel (Admin > Network agents): each node's agent with its state (alive
or down by its heartbeat, admin state up or down, whether it can apply network state, whether it hosts
DHCP and routers, its last sync), turned off/on and forgotten through the networking services; and a
port's page, which says why a DOWN port is down (``selectors.port_down_reasons``, the one place that
reason is computed). The agents are the one live table (apps/dashboard/tables.py): sorted, filtered and
paged by selectors.agent_states; enable, disable and forget are its row and bulk actions."""
from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from apps.core.access import may_change
from apps.dashboard.shell import actor_for, dashboard_view, render_page
from apps.dashboard.tables import Action, Column, Table, TableQuery, with_project_names
from apps.identity.policy import Actor
from apps.networks import selectors, services
from apps.networks.models import NETWORK_OWNERS, NetworkAgent


def _agent_page(actor: Actor, page: TableQuery) -> list[selectors.AgentState]:
    return selectors.agent_states(actor=actor, search=page.search, sort_key=page.sort, ascending=page.ascending,
                                  limit=page.limit, marker=page.marker)


def _switch(up: bool) -> Callable[[Actor, str], NetworkAgent]:
    def call(actor: Actor, pk: str) -> NetworkAgent:
        agent = selectors.agent_get(actor=actor, agent_id=pk)
        return services.network_agent_update(actor=actor, agent=agent, changes={"admin_state_up": up})
    return call


def _forget(actor: Actor, pk: str) -> NetworkAgent:
    agent = selectors.agent_get(actor=actor, agent_id=pk)
    services.network_agent_delete(actor=actor, agent=agent)
    return agent


AGENTS = Table(
    name="agents", url_name="networks:agents", act_name="networks:agent_act", page=_agent_page,
    row_template="networks/_agent_row.html",
    columns=(Column("Host", sort="host"), Column("State", sort="alive"), Column("Admin state", sort="admin_state_up"),
             Column("Applies state", sort="capable"), Column("DHCP and routers", sort="hosts_dhcp_l3"),
             Column("Ports bound"), Column("Last sync"), Column("Last heartbeat", sort="heartbeat_at")),
    default_sort="host", default_ascending=True, live="network_agent", search_label="Filter agents by host",
    empty="No network agent has registered: start a node's network worker.",
    row_data=lambda row: {"name": row.agent.host, "host": row.agent.host, "alive": "true" if row.alive else "false"},
    actions=(
        Action("enable", "Enable", call=_switch(True), bulk=True, allowed=lambda row: not row.agent.admin_state_up,
               success=lambda agent: f"Enabled the network agent on {agent.host}."),
        Action("disable", "Disable", call=_switch(False), bulk=True, allowed=lambda row: row.agent.admin_state_up,
               success=lambda agent: f"Disabled the network agent on {agent.host}.",
               confirm="Disable the network agent on {name}? It is sent no more work until enabled."),
        Action("delete", "Forget", call=_forget, bulk=True, danger=True, icon="trash",
               confirm="Forget the network agent on {name}?",
               success=lambda agent: f"Forgot the network agent on {agent.host}; it registers again when its "
                                     "worker starts.")))
agent_act = AGENTS.action_view()
agent_enable, agent_disable, agent_delete = (AGENTS.action_view(name) for name in ("enable", "disable", "delete"))


@dashboard_view
def agents(request: HttpRequest) -> HttpResponse:
    return AGENTS.render(request, "networks/agents.html", {"down_after": selectors.AGENT_DOWN_SECONDS})


@dashboard_view
def port_detail(request: HttpRequest, port_id: str) -> HttpResponse:
    """One port: its facts, its fixed IPs by subnet, and when DOWN the reason."""
    actor = actor_for(request)
    port = with_project_names(actor, [selectors.port_get(actor=actor, port_id=port_id)])[0]
    reason = selectors.port_down_reasons(actor=actor, ports=[port]).get(port.id, "")
    context = {"port": port, "down_reason": reason, "may_write": may_change(actor, port), "is_admin": actor.is_admin,
               "network_owned": port.device_owner in NETWORK_OWNERS}
    return render_page(request, "networks/port_detail.html", context, partial="networks/_port_detail.html")
