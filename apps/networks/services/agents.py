"""The network agents: telling them to converge (one sync per transaction, after commit) and
what they report (heartbeats, port statuses); an operator's changes to them."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.core import events, tasks
from apps.core.errors import BadRequest
from apps.core.validators import assign
from apps.identity.policy import Actor, require_admin
from apps.networks import selectors
from apps.networks.models import (
    DEVICE_OWNER_DHCP,
    DEVICE_OWNER_ROUTER_GATEWAY,
    DEVICE_OWNER_ROUTER_INTERFACE,
    STATUS_ACTIVE,
    STATUS_DOWN,
    FloatingIP,
    NetworkAgent,
    Port,
)
from apps.networks.services.common import publish

SYNC_EXPIRES_SECONDS = 300


# ---- telling the network agents ------------------------------------------------------------

PUSH_TASK = "workers.network_control.push"


def _send_sync() -> None:
    """After commit: have every agent converge on the new state: one push per agent to the control queue
    (``workers.network_control.push``, each with its task record: node work, no project's, so the admins'
    task log), which loads that node's state after this commit and sends it to the node's queue (the
    node holds no database credentials), unless a state sent since this commit has it (a burst of
    commits while the control workers are behind costs one load and one apply per agent, not one
    each). An agent counts while it reported within SYNC_REACH_SECONDS (much longer than the liveness
    window: a node whose periodic heartbeat is late still gets the change); the task expires, so a
    node that is really gone does not pile work up."""
    reachable = list(selectors.agents_reachable(seconds=settings.STRATUS_NETWORK_SYNC_REACH_SECONDS)
                     .values_list("host", flat=True))
    if not reachable:
        return
    # read after the commit: a state loaded from a snapshot with a larger generation has this commit,
    # and a push still queued when such a state was sent is not loaded again (``network_push_state``)
    requested = selectors.network_state_generation()
    for host in reachable:
        tasks.enqueue(PUSH_TASK, queue=settings.CELERY_TASK_DEFAULT_QUEUE,
                      kwargs={"host": host, "requested": requested}, action="sync", resource_type="network_agent",
                      resource_id=host, expires=SYNC_EXPIRES_SECONDS)


_send_sync.stratus_network_sync = True  # type: ignore[attr-defined]


def notify_agents() -> None:
    """Schedule one sync per transaction (however many rows changed), sent on commit only."""
    conn = transaction.get_connection()
    # A callback still queued was registered here or in a savepoint since released; a rollback of
    # any savepoint still open would drop this call's callback as well, so the queued one suffices.
    if conn.in_atomic_block and any(getattr(entry[1], "stratus_network_sync", False)
                                    for entry in conn.run_on_commit):
        return
    transaction.on_commit(_send_sync)


def network_agent_pushed(*, host: str, generation: int) -> None:
    """The control tier sent ``host``'s agent the state of ``generation`` (``workers.network_control.push``):
    kept as the agent's ``pushed_generation`` when larger (concurrent pushes: the largest stays)."""
    NetworkAgent.objects.filter(host=host).filter(
        Q(pushed_generation__isnull=True) | Q(pushed_generation__lt=generation)).update(pushed_generation=generation)


def publish_and_sync(kind: str, resource: str, obj: Any, **data: Any) -> None:
    """The end of a write the nodes apply: the live event and one agents' sync, both on commit."""
    publish(kind, resource, obj, **data)
    notify_agents()


# ---- agents --------------------------------------------------------------------------------

def _publish_agent(kind: str, agent: NetworkAgent, **data: Any) -> None:
    """An agent's live event: no project's, so the admins' (named by its host)."""
    events.publish(project_id=None, kind=kind, resource="network_agent", resource_id=agent.id,
                   data={"host": agent.host, **data})


@transaction.atomic
def network_agent_report(*, host: str, vtep_ip: str = "", capable: bool = False, hosts_dhcp_l3: bool | None = None,
                         message: str | None = None, configuration: Mapping[str, Any] | None = None,
                         reason: str | None = None, applied: bool | None = None, errors: Sequence[str] = (),
                         duration_s: float | None = None, counts: Any = None,
                         generation: int | None = None, l2_only: bool = False) -> NetworkAgent:
    """A node's agent registers itself and heartbeats (at start-up and after every sync). The first agent
    to register serves DHCP and routers, unless it is ``l2_only``: the L2 agent of a compute node (its
    bridges and VXLAN to the peers, as Neutron's L2 agent), which never serves them, whenever it
    registers. A node can only decline that duty by its report, never take it."""
    if not host:
        raise BadRequest("An agent report needs the host name.")
    agent = NetworkAgent.objects.select_for_update().filter(host=host).first()
    created = agent is None
    if l2_only:
        hosts_dhcp_l3 = False
    if agent is None:
        if hosts_dhcp_l3 is None:
            hosts_dhcp_l3 = not NetworkAgent.objects.filter(hosts_dhcp_l3=True).exists()
        agent = NetworkAgent(host=host)
    was_alive = not created and selectors.agent_is_alive(agent)
    old_vtep, old_capable = agent.vtep_ip, agent.capable
    agent.vtep_ip = vtep_ip or ""
    agent.capable = bool(capable)
    if hosts_dhcp_l3 is not None:
        agent.hosts_dhcp_l3 = bool(hosts_dhcp_l3)
    agent.message = message if message is not None else (reason or "")
    config = dict(agent.configuration or {})
    config.update(dict(configuration or {}))
    if applied is not None:
        config["last_sync"] = {"applied": applied, "errors": list(errors), "duration_s": duration_s,
                               "counts": dict(counts or ()), "at": timezone.now().isoformat(),
                               "generation": generation}
    agent.configuration = config
    agent.heartbeat_at = timezone.now()
    agent.save()
    if agent.hosts_dhcp_l3:
        Port.objects.filter(device_owner__in=[DEVICE_OWNER_DHCP, DEVICE_OWNER_ROUTER_INTERFACE,
                                              DEVICE_OWNER_ROUTER_GATEWAY], binding_host_id="").update(
            binding_host_id=host)
    if not agent.capable:
        stale = Port.objects.filter(binding_host_id=host, status=STATUS_ACTIVE)
        for port in stale:
            publish("state", "port", port, status=STATUS_DOWN)
        stale.update(status=STATUS_DOWN)
    _publish_agent("updated", agent, capable=agent.capable)
    if created or not was_alive or old_vtep != agent.vtep_ip or old_capable != agent.capable:
        notify_agents()  # peers changed, or the node (re)appeared: everyone converges
    return agent


@transaction.atomic
def network_agent_synced(*, host: str, generation: int, statuses: Mapping[str, str], vtep_ip: str = "",
                         capable: bool = False, reason: str = "", applied: bool = False, errors: Sequence[str] = (),
                         duration_s: float | None = None, counts: Any = None,
                         configuration: Mapping[str, Any] | None = None, l2_only: bool = False) -> int | None:
    """The agent on ``host`` applied the state of ``generation``: its heartbeat and outcome
    (``network_agent_report``), then its ports' statuses (``port_status_report``: only ports of that
    host change). A report older than the last one applied for this agent (two control workers took
    two reports of one node out of order) changes nothing and returns None; else the number of ports
    whose status changed."""
    agent = NetworkAgent.objects.select_for_update().filter(host=host).first()
    last = ((agent.configuration or {}).get("last_sync") or {}).get("generation") if agent is not None else None
    if isinstance(last, int) and generation < last:
        return None
    network_agent_report(host=host, vtep_ip=vtep_ip, capable=capable, reason=reason, applied=applied, errors=errors,
                         duration_s=duration_s, counts=counts, configuration=configuration, generation=generation,
                         l2_only=l2_only)
    return port_status_report(host=host, statuses=statuses)


class AgentChanges(TypedDict, total=False):
    admin_state_up: bool
    description: str


@transaction.atomic
def network_agent_update(*, actor: Actor, agent: NetworkAgent, changes: AgentChanges) -> NetworkAgent:
    """An operator turns a node's agent off (no more work sent, admin_state_up) or notes something."""
    require_admin(actor, action="change network agents")
    agent = NetworkAgent.objects.select_for_update().get(pk=agent.pk)
    assign(agent, **changes)
    agent.save()
    _publish_agent("updated", agent, admin_state_up=agent.admin_state_up)
    return agent


@transaction.atomic
def network_agent_delete(*, actor: Actor, agent: NetworkAgent) -> None:
    """Forget a node's agent (it registers again when its worker starts)."""
    require_admin(actor, action="delete network agents")
    agent.delete()
    _publish_agent("deleted", agent)


@transaction.atomic
def port_status_report(*, host: str, statuses: Mapping[str, str]) -> int:
    """The agent on ``host`` says which of its ports are up. Only ports bound to that host (or the
    DHCP/router ports of the node that serves them) change; a node that cannot apply state keeps its
    ports DOWN. Returns the number of ports whose status changed."""
    agent = NetworkAgent.objects.filter(host=host).first()
    capable = bool(agent and agent.capable)
    changed = 0
    wanted = {pid: (s if s in (STATUS_ACTIVE, STATUS_DOWN) else STATUS_DOWN) for pid, s in statuses.items()}
    scope = Q(binding_host_id=host)
    if agent is not None and agent.hosts_dhcp_l3:
        scope |= Q(device_owner__in=[DEVICE_OWNER_DHCP, DEVICE_OWNER_ROUTER_INTERFACE, DEVICE_OWNER_ROUTER_GATEWAY])
    gateways = []
    for port in Port.objects.select_for_update().filter(scope, pk__in=list(wanted)):
        status = wanted[port.id] if capable else STATUS_DOWN
        if port.status != status:
            port.status = status
            port.save(update_fields=["status", "updated_at"])
            publish("state", "port", port, status=status)
            changed += 1
            if port.device_owner == DEVICE_OWNER_ROUTER_GATEWAY:
                gateways.append(port)
    for gw in gateways:
        for fip in FloatingIP.objects.filter(router__gw_port=gw, port__isnull=False):
            fip.status = gw.status
            fip.save(update_fields=["status", "updated_at"])
            publish("state", "floatingip", fip, status=fip.status)
    return changed
