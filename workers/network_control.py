"""The network agents' control side (queue ``control``): what a node's network agent used to read from
and write to the database itself, now that it holds no database credentials (issue 16).

``push(host)`` loads the node's desired state (``apps.networks.selectors.network_node_state``) and sends
``workers.network.apply(host=, state=<plain dict>, generation=)`` to the node's queue ``network.<host>``.
The services send it after every commit that changes what nodes apply (``notify_agents``), Celery beat
every ``STRATUS_NETWORK_RESYNC_SECONDS`` (a full resync, and the heartbeat), and a node asks for one
through ``report`` when its agent starts or is reset. ``generation`` is read from the database's clock
before the state is loaded, both from one snapshot (``network_push_state``): pushes from concurrent
control workers may reach the node out of order, and the node ignores one older than the last it applied
(a change the older one missed has its own, newer, push). A push asked for by a commit carries
``requested``, a generation read after that commit: when a state already sent to that host has a larger
generation (``NetworkAgent.pushed_generation``, recorded after each send), its snapshot has that commit
and the push is skipped, so pushes queued behind a burst of commits merge into the first one loaded.

The node reports with ``workers.control_bus.report``: ``agent_report`` (start-up: the node, its VTEP and
capability) and ``synced`` (after each apply: outcome and port statuses). The host a report names is
the only one it touches: the services change only that agent's row and the ports bound to that host
(and the DHCP/router ports when that host serves them).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from celery import current_app, shared_task

logger = logging.getLogger(__name__)

APPLY_TASK = "workers.network.apply"
APPLY_EXPIRES_SECONDS = 300
MAX_HOST_LENGTH = 255
PORT_STATUSES = ("ACTIVE", "DOWN")


def state_message(host: str, *, requested: int | None = None) -> dict[str, Any] | None:
    """The kwargs of ``workers.network.apply`` for ``host``: its generation and its state, read from one
    snapshot of the database (``network_push_state``); None when a state sent since ``requested``
    covers it."""
    from apps.networks import selectors  # imported here: this module loads before Django is set up

    loaded = selectors.network_push_state(host=host, requested=requested)
    if loaded is None:
        return None
    generation, state = loaded
    return {"host": host, "state": state.to_dict(), "generation": generation}


@shared_task(name="workers.network_control.push", ignore_result=True)
def push(host: str, requested: int | None = None) -> dict[str, Any]:
    """Send ``host``'s desired network state to its agent (``network.<host>``); returns a summary.
    ``requested``: the generation read after the commit that asked for this push (the services'
    ``notify_agents``); the push is skipped when a state sent since has that commit."""
    from apps.networks import services

    host = _host(host)
    if requested is not None and (not isinstance(requested, int) or isinstance(requested, bool)):
        raise TypeError("requested must be an integer")
    message = state_message(host, requested=requested)
    if message is None:
        logger.info("network push to %s skipped: a state sent since generation %d covers it", host, requested)
        return {"host": host, "skipped": True, "requested": requested}
    # nobody waits for the node's summary: its outcome comes back as a report (workers.network_control.synced)
    current_app.send_task(APPLY_TASK, kwargs=message, queue=f"network.{host}", expires=APPLY_EXPIRES_SECONDS,
                          ignore_result=True)
    services.network_agent_pushed(host=host, generation=message["generation"])
    state = message["state"]
    logger.info("network state of %s pushed (generation %d: %d networks, %d ports, %d routers)", host,
                message["generation"], len(state["networks"]), len(state["ports"]), len(state["routers"]))
    return {"host": host, "generation": message["generation"], "networks": len(state["networks"]),
            "ports": len(state["ports"]), "routers": len(state["routers"])}


@shared_task(name="workers.network_control.agent_report")
def agent_report(*, host: str, vtep_ip: str = "", capable: bool = False, reason: str = "",
                 configuration: Mapping[str, Any] | None = None, push_state: bool = False,
                 l2_only: bool = False) -> None:
    """A node's agent starts (or heartbeats without applying): register or refresh it; with
    ``push_state``, then send it its state (the services committed: the push sees the agent).
    ``l2_only``: a compute node's L2 agent, never the DHCP and routers' host."""
    from apps.networks import services

    host = _host(host)
    services.network_agent_report(host=host, vtep_ip=_text(vtep_ip, "vtep_ip"), capable=bool(capable),
                                  reason=_text(reason, "reason"), configuration=_mapping(configuration),
                                  l2_only=l2_only is True)
    if push_state:
        push(host)


@shared_task(name="workers.network_control.synced")
def synced(*, host: str, generation: int, statuses: Mapping[str, str], vtep_ip: str = "", capable: bool = False,
           reason: str = "", applied: bool = False, errors: Sequence[str] = (), duration_s: float | None = None,
           counts: Any = None, configuration: Mapping[str, Any] | None = None, l2_only: bool = False) -> int | None:
    """A node applied the state of ``generation``: its outcome and its ports' statuses, through
    ``network_agent_synced`` (only ``host``'s ports change; an older report than the last is dropped)."""
    from apps.networks import services

    host = _host(host)
    if not isinstance(generation, int) or isinstance(generation, bool):
        raise TypeError("generation must be an integer")
    if not isinstance(statuses, Mapping) or not all(
            isinstance(k, str) and v in PORT_STATUSES for k, v in statuses.items()):
        raise TypeError("statuses must map port ids to ACTIVE or DOWN")
    if isinstance(errors, str) or not all(isinstance(e, str) for e in errors):
        raise TypeError("errors must be a list of strings")
    changed = services.network_agent_synced(
        host=host, generation=generation, statuses=dict(statuses), vtep_ip=_text(vtep_ip, "vtep_ip"),
        capable=bool(capable), reason=_text(reason, "reason"), applied=bool(applied), errors=list(errors),
        duration_s=float(duration_s) if duration_s is not None else None,
        counts={str(k): int(v) for k, v in (dict(counts) if counts else {}).items()},
        configuration=_mapping(configuration), l2_only=l2_only is True)
    if changed is None:
        logger.info("network report of %s for generation %d dropped: older than the last applied", host, generation)
    return changed


def _host(host: Any) -> str:
    if not isinstance(host, str) or not host or len(host) > MAX_HOST_LENGTH:
        raise TypeError("a network agent's message needs its host name")
    return host


def _text(value: Any, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string")
    return value


def _mapping(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError("configuration must be a mapping")
    return {str(k): v for k, v in value.items()}
