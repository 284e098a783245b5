"""Signals and metadata: a handle's URL (``signals.PATH``, a token-free signal), ``resource signal``, an
alarm's webhook, a resource marked unhealthy, and a resource's metadata."""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from apps.core.errors import BadRequest, Conflict, Forbidden, NotFound, StratusError
from apps.identity.policy import Actor, require_write
from apps.orchestration import engine, plugins, selectors, signals, states
from apps.orchestration.models import Event, Stack, StackResource
from apps.orchestration.plugins.base import PluginContext
from apps.orchestration.services.common import (
    StackValidationFailed,
    _event,
    _impossible,
    _locked,
    _publish,
    _rows,
    owner_actor,
)
from apps.orchestration.services.templates import bind

SIGNAL_EVENT = "SIGNAL_COMPLETE"  # the event a signal writes (Heat's SIGNAL action)
# a resource takes a signal once its create (or update, check, resume) completed; never while its stack
# or itself is being deleted, nor while one of its own actions is in progress
SIGNALLABLE = frozenset({states.CREATE_COMPLETE, "UPDATE_COMPLETE", "CHECK_COMPLETE", "RESUME_COMPLETE"})


class SignalRefused(Forbidden):
    """A token-free signal whose secret is not that resource's (or whose resource is gone): one answer
    for every case, so a guess learns nothing."""


class TooManyRequests(StratusError):
    status = 429
    kind = "RequestLimitExceeded"


def _count(key: str, window: int = 60) -> int:
    """How many times ``key`` was counted in this window (a Redis counter through the cache)."""
    cache.add(key, 0, window)
    try:
        return int(cache.incr(key))
    except ValueError:  # expired between add and incr
        cache.set(key, 1, window)
        return 1


def resource_signal(*, actor: Actor, stack_id: str, resource_name: str, details: Any) -> StackResource:
    """``POST .../resources/{name}/signal``: the resource's type handles ``details`` (a handle records
    it, a scaling policy scales); 400 for a type that takes no signal, 404 for another project's stack."""
    stack = selectors.stack_get(actor=actor, stack_id=stack_id)
    require_write(actor, stack.project_id, what="stack")
    with transaction.atomic():
        row = StackResource.objects.select_for_update().filter(stack=stack, name=resource_name,
                                                               retire__in=StackResource.SHOWN).first()
        if row is None:
            raise NotFound(f"The Resource ({resource_name}) could not be found in Stack {stack.name}.")
        return _signal(stack, row, details)


def resource_mark_unhealthy(*, actor: Actor, stack_id: str, resource_name: str, unhealthy: bool,
                            reason: str = "") -> StackResource:
    """``PATCH .../resources/{name}`` (Heat's resource mark-unhealthy): a resource at rest marked
    CHECK_FAILED with the caller's reason, so the stack's next update replaces it; ``unhealthy`` False
    marks a CHECK_FAILED one CHECK_COMPLETE again (any other state is left as it is)."""
    if not isinstance(unhealthy, bool):
        raise BadRequest('mark_unhealthy must be a boolean (true or false).')
    if not isinstance(reason, str) or len(reason) > 255:
        raise BadRequest("resource_status_reason must be a string of at most 255 characters.")
    stack = selectors.stack_get(actor=actor, stack_id=stack_id)
    require_write(actor, stack.project_id, what="stack")
    with transaction.atomic():
        locked = _locked().get(pk=stack.pk)
        row = StackResource.objects.select_for_update().filter(stack=locked, name=resource_name,
                                                               retire__in=StackResource.SHOWN).first()
        if row is None:
            raise NotFound(f"The Resource ({resource_name}) could not be found in Stack {stack.name}.")
        if states.in_progress(row.state) or states.in_progress(locked.state):
            raise Conflict(f"Resource {resource_name} is in state {row.state} (stack {locked.state}): it can "
                           "not be marked now.")
        if unhealthy:
            target, why = states.CHECK_FAILED, reason or "Marked unhealthy"
        elif row.state == states.CHECK_FAILED:
            target, why = states.CHECK_COMPLETE, reason or "Marked healthy"
        else:
            return row
        states.resource_may(row.state, target) or _impossible(row, target)
        row.state, row.status_reason = target, why
        row.save(update_fields=["state", "status_reason", "updated_at"])
        Event.objects.bulk_create([_event(locked, target, why, resource=row)])
        _publish(locked)
    return row


def resource_signal_with_token(*, stack_id: str, resource_name: str, token: str | None, details: Any,
                               client: str) -> StackResource:
    """A token-free signal (``signals.PATH``): accepted only with the secret of that one resource, while
    it and its stack exist. Wrong secrets count against ``client``: past STRATUS_HEAT_SIGNAL_GUESSES a
    minute it is answered 429 whatever it sends."""
    guesses = f"heat-signal-guess:{client}"
    if (cache.get(guesses) or 0) >= settings.STRATUS_HEAT_SIGNAL_GUESSES:
        raise TooManyRequests("Too many refused signals from this address: try again in a minute.")
    with transaction.atomic():
        row = (StackResource.objects.select_for_update(of=("self",)).select_related("stack")
               .filter(stack_id=str(stack_id)[:64], name=str(resource_name)[:255],
                       retire__in=StackResource.SHOWN).first())
        if row is None or not signals.matches(row.data, token) or _stack_gone(row.stack):
            _count(guesses)
            raise SignalRefused("The signal was refused: the URL or its token is not valid (any more).")
        return _signal(row.stack, row, details)


def _stack_gone(stack: Stack) -> bool:
    """A stack deleted, being deleted or rolled back: its resources take no signal any more."""
    return stack.deleted_at is not None or stack.action in (states.DELETE, states.ROLLBACK)


def _signal(stack: Stack, row: StackResource, details: Any) -> StackResource:
    """With ``row`` locked: its plugin's signal, its new data and attributes, and the event."""
    if _stack_gone(stack):
        raise StackValidationFailed(f"Signal resource during stack {stack.state} is not supported.",
                                    kind="ResourceActionNotSupported")
    if row.state not in SIGNALLABLE:
        raise StackValidationFailed(f"Signal resource during {row.state} is not supported.",
                                    kind="ResourceActionNotSupported")
    plugin_class = plugins.plugin_for(row.type)
    if plugin_class is None or plugin_class.signal is plugins.Plugin.signal:
        raise StackValidationFailed(f"Resource {row.name} of type {row.type} does not take signals.",
                                    kind="ResourceActionNotSupported")
    if _count(f"heat-signal:{row.id}") > settings.STRATUS_HEAT_SIGNAL_RATE:
        raise TooManyRequests(f"Resource {row.name} was signalled more than {settings.STRATUS_HEAT_SIGNAL_RATE} "
                              f"times in a minute.")
    context = PluginContext(stack_id=stack.id, stack_name=stack.name, resource_name=row.name,
                            project_id=stack.project_id, user_id=stack.user_id)
    if plugin_class.needs_actor:
        context.actor = owner_actor(stack)
    try:
        outcome = plugin_class(context).signal(row.physical_id, dict(row.data), details)
    except plugins.ResourceFailed as exc:
        raise StackValidationFailed(f"Signal to {row.name} refused: {exc}", kind="SignalFailed") from None
    data = dict(outcome.data)
    if signals.KEY in row.data:  # the secret is the service's, not the plugin's to drop
        data[signals.KEY] = row.data[signals.KEY]
    row.data = data
    row.attributes = outcome.attributes or row.attributes
    row.physical_id = outcome.physical_id or row.physical_id
    row.save(update_fields=["data", "attributes", "physical_id", "updated_at"])
    reason = f"Signal: {outcome.reason or 'signal received'}"
    Event.objects.bulk_create([_event(stack, SIGNAL_EVENT, reason[:2000], resource=row)])
    return row


def resource_metadata(*, actor: Actor, stack: Stack, resource_name: str) -> dict[str, Any]:
    """``GET .../resources/{name}/metadata``: what the resource's signals recorded (a handle's), else its
    template metadata, resolved."""
    row = selectors.resource_get(actor=actor, stack=stack, name=resource_name)
    if isinstance(row.data.get("metadata"), dict):
        return row.data["metadata"]
    try:
        bound = bind(stack, {r.name: r for r in _rows(stack)})
        if resource_name in bound.template.resources:
            return bound.metadata(resource_name) or {}
    except (engine.TemplateError, BadRequest):
        pass
    return {}
