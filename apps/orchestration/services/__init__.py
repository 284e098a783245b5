"""Every write of orchestration: stacks created, previewed, deleted; and the engine's steps, which the
control queue's tasks (workers/orchestration.py) call: a stack's resources are walked level by level
(``engine.Stack.levels()``), each resource action a task of its own, the resources of one level in
parallel. The stack row counts the level's resources that have not reported yet (``pending``); each
report decrements it with the stack row locked, and the report that takes it to zero starts the next
level (or ends the walk). A stack still in progress past its deadline is failed by the beat task
``stacks_timeout``, so a worker that died mid-stack never leaves one IN_PROGRESS.

The package's modules: ``common`` (errors, the walk's constants, events and state moves: what the others
share), ``templates`` (parse, bind, validate, outputs), ``resource_signals`` (signals, mark unhealthy,
metadata), ``stacks`` (create, preview, delete), ``walk`` (the engine's steps, timeouts), ``update``
(update, cancel, preview of an update), ``actions`` (check, suspend, resume, abandon, adopt) and
``software`` (software configs and deployments). Callers use the names below
(``services.stack_create(...)``); a test that replaces a helper patches the module that holds it.
"""
from __future__ import annotations

from apps.orchestration.services.actions import stack_abandon, stack_action, stack_adopt
from apps.orchestration.services.common import (
    MAX_TIMEOUT_MINS,
    NotSupported,
    StackExists,
    StackValidationFailed,
    owner_actor,
)
from apps.orchestration.services.resource_signals import (
    SignalRefused,
    TooManyRequests,
    resource_mark_unhealthy,
    resource_metadata,
    resource_signal,
    resource_signal_with_token,
)
from apps.orchestration.services.software import (
    software_config_create,
    software_config_delete,
    software_deployment_create,
    software_deployment_delete,
    software_deployment_update,
)
from apps.orchestration.services.stacks import stack_create, stack_delete, stack_preview
from apps.orchestration.services.templates import (
    Prepared,
    bind,
    parse_template,
    stack_outputs,
    stack_parameters_shown,
    template_validate,
)
from apps.orchestration.services.update import stack_cancel_update, stack_preview_update, stack_update
from apps.orchestration.services.walk import (
    ResourceWork,
    resource_done,
    resource_progress,
    resource_work,
    stack_advance,
    stacks_timeout,
)

__all__ = [
    "MAX_TIMEOUT_MINS",
    "NotSupported",
    "Prepared",
    "ResourceWork",
    "SignalRefused",
    "StackExists",
    "StackValidationFailed",
    "TooManyRequests",
    "bind",
    "owner_actor",
    "parse_template",
    "resource_done",
    "resource_mark_unhealthy",
    "resource_metadata",
    "resource_progress",
    "resource_signal",
    "resource_signal_with_token",
    "resource_work",
    "software_config_create",
    "software_config_delete",
    "software_deployment_create",
    "software_deployment_delete",
    "software_deployment_update",
    "stack_abandon",
    "stack_action",
    "stack_adopt",
    "stack_advance",
    "stack_cancel_update",
    "stack_create",
    "stack_delete",
    "stack_outputs",
    "stack_parameters_shown",
    "stack_preview",
    "stack_preview_update",
    "stack_update",
    "stacks_timeout",
    "template_validate",
]
