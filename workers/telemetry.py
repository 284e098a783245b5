"""Telemetry tasks. Tasks hold no business rules: they call a driver or a service and report.

- ``poll`` (a node's queue, scheduled by beat per host): reads libvirt's counters of the node's
  domains through the stats driver and sends them, as plain values, to the control queue;
- ``node_samples`` (control queue): stores them through the services (resources, metrics, rates);
- ``sweep`` (control queue, beat): retention.
"""
from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="workers.telemetry.poll")
def poll(host: str) -> int:
    """One round of the node's pollster: every running domain's counters, reported to the control
    queue; returns how many domains."""
    from workers import agent
    from workers.control_bus import report
    from workers.drivers.hypervisor.stats import domain_stats

    domains = domain_stats(agent.driver().conn)
    report("workers.telemetry.node_samples", host=host, domains=domains)
    return len(domains)


@shared_task(name="workers.telemetry.node_samples")
def node_samples(host: str, domains: list[dict[str, Any]]) -> int:
    """A node's pollster round, stored (meters, resources, rates); returns how many samples."""
    from apps.telemetry import services

    return services.samples_from_node(host=host, domains=domains)


@shared_task(name="workers.telemetry.sweep")
def sweep() -> int:
    """Retention (scheduled by Celery beat, see CELERY_BEAT_SCHEDULE): the rollups past each
    granularity's timespan and the raw samples past their policy's longest, alarms' history past
    STRATUS_ALARM_HISTORY_DAYS; returns how many rows."""
    from apps.telemetry import services  # imported here: this module loads before Django is set up

    removed = services.measures_sweep() + services.alarm_history_sweep()
    if removed:
        logger.info("telemetry retention removed %d rows", removed)
    return removed


@shared_task(name="workers.telemetry.evaluate_alarms")
def evaluate_alarms() -> dict[str, int]:
    """Aodh's evaluator (Celery beat, STRATUS_ALARM_EVALUATION_SECONDS): every enabled alarm once; a
    transition's actions go out as their own ``alarm_notify`` tasks."""
    from apps.telemetry import services

    return services.alarms_evaluate()


class _Retry(Exception):
    """A webhook that may answer later: a network failure or a 5xx."""


def _notify_retries() -> int:
    from django.conf import settings

    return int(settings.STRATUS_ALARM_NOTIFY_RETRIES)


@shared_task(name="workers.telemetry.alarm_notify", bind=True, autoretry_for=(_Retry,), retry_backoff=1,
             retry_backoff_max=60, retry_jitter=False, max_retries=None)
def alarm_notify(self: Any, action: str, payload: dict[str, Any]) -> str:
    """One action of one alarm transition: a webhook POST of Aodh's notifier payload (retried with
    backoff on a network error or a 5xx, STRATUS_ALARM_NOTIFY_RETRIES times), a log line, or a mail."""
    from urllib.parse import urlsplit

    from django.conf import settings

    from apps.telemetry import services
    from lib import webhook

    scheme = urlsplit(action).scheme.lower()
    if scheme == "log":
        services.alarm_notify_log(payload=payload)
        return "logged"
    if scheme == "mailto":
        services.alarm_notify_mail(address=urlsplit(action).path, payload=payload)
        return "mailed"
    signalled = services.alarm_notify_signal(action=action, payload=payload)
    if signalled is not None:
        return signalled
    try:
        status = webhook.post_json(action, payload, allow_private=settings.STRATUS_ALARM_WEBHOOK_ALLOW_PRIVATE,
                                   headers={"x-openstack-request-id": f"req-{self.request.id or ''}"})
    except webhook.Refused as exc:
        logger.warning("alarm %s: action %s refused: %s", payload.get("alarm_id"), action, exc)
        return f"error: {exc}"
    except (OSError, webhook.ServerError) as exc:
        if self.request.retries >= _notify_retries():
            logger.warning("alarm %s: action %s failed after %d tries: %s", payload.get("alarm_id"), action,
                           self.request.retries + 1, exc)
            return f"error: {exc}"
        logger.info("alarm %s: action %s failed (%s), trying again", payload.get("alarm_id"), action, exc)
        raise _Retry(str(exc)) from exc
    if status >= 400:
        logger.warning("alarm %s: action %s answered %d", payload.get("alarm_id"), action, status)
        return f"error: {action} answered {status}"
    logger.info("alarm %s: notified %s (%d)", payload.get("alarm_id"), action, status)
    return f"notified {status}"
