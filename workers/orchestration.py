"""Orchestration's tasks, all on the control queue. Tasks hold no business rules: they load the work
through a service, run the resource type's plugin (``apps.orchestration.plugins``), and report its
outcome through a service, which moves the stack on (next level, end, rollback).

A plugin that is not complete after a phase (a TestResource waiting, a server building) is checked
again by the same task sent with a countdown; the stack's deadline (beat's ``timeouts``) bounds it all.
"""
from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="workers.orchestration.stack_start", ignore_result=True)
def stack_start(stack_id: str) -> str:
    """Start (or go on with) a stack's walk: its first level's resource tasks, or its end."""
    from apps.orchestration import services

    return services.stack_advance(stack_id=stack_id)


@shared_task(name="workers.orchestration.resource_run", acks_late=True, ignore_result=True)
def resource_run(resource_id: str, epoch: str | None = None) -> str:
    """One phase of a resource's create, update, delete, check, suspend or resume; reports the outcome
    (or sends itself again later). ``epoch``: the action it was sent for (a stale message does nothing)."""
    from django.conf import settings

    from apps.core.errors import StratusError
    from apps.orchestration import plugins, services
    from apps.orchestration.engine import TemplateError

    try:
        work = services.resource_work(resource_id=resource_id, epoch=epoch)
    except (StratusError, TemplateError) as exc:
        logger.warning("resource %s: %s", resource_id, exc)
        services.resource_done(resource_id=resource_id, ok=False, reason=f"{type(exc).__name__}: {exc}",
                               epoch=epoch)
        return "failed"
    if work is None:
        return "skipped"  # a repeated or late message: the resource is not in progress any more
    plugin_class = plugins.plugin_for(work.type)
    if plugin_class is None:
        services.resource_done(resource_id=resource_id, ok=False, reason=f"Unknown resource type {work.type}",
                               epoch=epoch)
        return "failed"
    plugin = plugin_class(work.context)
    again: float | None = None
    outcome: Any = None
    try:
        outcome = _phase(plugin, work)
        if not outcome.done:
            again = outcome.retry_after
    except Exception as exc:  # noqa: BLE001 - any failure of the plugin is the resource's failure, reported
        reason = str(exc) if isinstance(exc, plugins.ResourceFailed) else f"{type(exc).__name__}: {exc}"
        logger.warning("resource %s (%s) %s failed: %s", work.context.resource_name, work.type, work.action, reason)
        services.resource_done(resource_id=resource_id, ok=False, reason=reason, epoch=epoch,
                               stack_id=work.context.stack_id)
        return "failed"
    if again is not None:
        if services.resource_progress(resource_id=resource_id, outcome=outcome, epoch=epoch):
            resource_run.apply_async(kwargs={"resource_id": resource_id, "epoch": epoch}, countdown=again,
                                     queue=settings.CELERY_TASK_DEFAULT_QUEUE)
        return "waiting"
    services.resource_done(resource_id=resource_id, ok=True, outcome=outcome, epoch=epoch,
                           properties=work.properties if work.action in ("CREATE", "UPDATE") else None,
                           stack_id=work.context.stack_id)
    return "done"


def _phase(plugin: Any, work: Any) -> Any:
    """Run the plugin's phase for the work's action: an Outcome (``done`` False: run again later)."""
    from apps.orchestration.plugins import Outcome

    pid, data = work.physical_id, work.data
    if work.action == "CREATE":
        return plugin.check_create_complete(work.properties, data) if work.started else plugin.create(work.properties)
    if work.action == "UPDATE":
        outcome = (plugin.check_update_complete(pid, data, work.properties) if work.started
                   else plugin.update(pid, data, work.old, work.properties))
        outcome.physical_id = outcome.physical_id or pid
        return outcome
    if work.action == "DELETE":
        done = plugin.check_delete_complete(pid, data) if work.started else plugin.delete(pid, data)
    elif work.action == "CHECK":
        plugin.check_resource(pid, data)
        done = True
    elif work.action == "SUSPEND":
        done = plugin.suspend(pid, data)
    elif work.action == "RESUME":
        done = plugin.resume(pid, data)
    else:
        raise plugins_failed(f"Unknown resource action {work.action}")
    return Outcome(physical_id=pid, data=data, done=bool(done), retry_after=1.0)


def plugins_failed(reason: str) -> Exception:
    from apps.orchestration.plugins import ResourceFailed

    return ResourceFailed(reason)


@shared_task(name="workers.orchestration.timeouts")
def timeouts() -> int:
    """Fail the stacks still in progress past their timeout (scheduled by Celery beat)."""
    from apps.orchestration import services

    failed = services.stacks_timeout()
    if failed:
        logger.warning("%d stacks timed out", failed)
    return failed
