"""How a node agent talks to the control tier: by messages, never by the database.

A node (compute, network, storage) holds no database credentials (DESIGN.md, "Workers never hold
business rules"; Nova's conductor idea). Its task receives a spec of plain values in its message, calls
a driver, and reports the outcome with ``report("<control task name>", **plain_values)``: a message to
the control queue (settings ``CELERY_TASK_DEFAULT_QUEUE``, ``STRATUS_CONTROL_QUEUE``), where a control
worker's task applies it through a service. The single-machine default takes the same path.

Control-side report tasks live in ``workers/<area>_control.py`` (queue ``control``), take plain values
only, and call one service each. A node can lie only about its own resources: each report names the
host it came from, and the service checks that the resource is on that host.

On RabbitMQ, ``ask``'s answer comes back to the asking process's own reply queue (portal/celery_rpc.py),
so a node needs no Redis; on Redis, through Redis.

``report`` is fire-and-forget and survives a broker hiccup by Celery's own publish retry; a report
that must not be lost is made idempotent on the control side (a report applied twice changes nothing
the second time).
"""
from __future__ import annotations

import logging
from typing import Any

from celery import current_app

logger = logging.getLogger(__name__)


def control_queue() -> str:
    """The control tier's queue (settings ``CELERY_TASK_DEFAULT_QUEUE``)."""
    from django.conf import settings

    return str(settings.CELERY_TASK_DEFAULT_QUEUE)


def _publish_options() -> dict[str, Any]:
    """On RabbitMQ, publish through the reports exchange (``stratus.reports``, bound to the control queue
    by the control worker; portal/celery.py) without declaring anything: a node's broker user may write
    there and nowhere else on the control tier (lib/rabbitmq.py), and the control worker runs what comes
    that way only when it is a report task."""
    from django.conf import settings

    from portal.celery import REPORTS_EXCHANGE

    if not settings.STRATUS_BROKER_AMQP:
        return {}
    return {"declare": [], "exchange": REPORTS_EXCHANGE, "routing_key": control_queue(),
            "user_id": broker_user()}


def broker_user() -> str:
    """The user this process connects to the broker as (its URL's), which it names as each report's
    sender (AMQP ``user_id``): RabbitMQ refuses a publish whose ``user_id`` is not the connection's own
    user, so the control worker knows which node sent a report (portal/celery.py ``sender_refusal``)."""
    from urllib.parse import unquote, urlsplit

    from django.conf import settings

    return unquote(urlsplit(str(settings.CELERY_BROKER_URL)).username or "guest")


_RETRY_POLICY = {"max_retries": 5, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 3.0}


def report(task_name: str, /, **kwargs: Any) -> None:
    """Send ``kwargs`` (plain, JSON-serialisable values) to the control task ``task_name``."""
    current_app.send_task(task_name, kwargs=kwargs, queue=control_queue(), ignore_result=True,
                          **_publish_options(), retry=True, retry_policy=_RETRY_POLICY)


def report_fresh(task_name: str, /, *, within: float, **kwargs: Any) -> None:
    """``report``, for a report that means nothing once late (a heartbeat: applied after the node died,
    it would show a dead node up): dropped unapplied when no control worker took it within ``within``
    seconds."""
    current_app.send_task(task_name, kwargs=kwargs, queue=control_queue(), ignore_result=True,
                          **_publish_options(), retry=True, retry_policy=_RETRY_POLICY, expires=within)


def ask(task_name: str, /, *, timeout: float = 30.0, **kwargs: Any) -> Any:
    """Ask the control tier a question and wait for the answer (a control task with
    ``ignore_result=False``, answered through the result backend): what a node used to read from the
    database while it waits (are the boot volumes ready? are the ports wired?). Raises
    ``TimeoutError`` when no control worker answers within ``timeout`` seconds."""
    from celery.exceptions import TimeoutError as CeleryTimeout

    result = current_app.send_task(task_name, kwargs=kwargs, queue=control_queue(), **_publish_options())
    try:
        return result.get(timeout=timeout, disable_sync_subtasks=False, propagate=True)
    except CeleryTimeout as exc:
        raise TimeoutError(f"the control tier did not answer {task_name} within {timeout:g} s") from exc
    finally:
        result.forget()
