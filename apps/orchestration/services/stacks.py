"""Stacks created, previewed and deleted (the walk that follows is ``walk``'s)."""
from __future__ import annotations

import io
import json
import os
from datetime import datetime
from json.encoder import encode_basestring_ascii
from typing import Any

from django.db import connection, transaction
from django.db.models import JSONField

from apps.core.errors import NotFound
from apps.core.tasks import enqueue
from apps.identity.policy import Actor, require_write
from apps.identity.services.quotas import quota_reserve
from apps.orchestration import engine, selectors, states
from apps.orchestration.models import Event, Stack, StackResource, new_uuid
from apps.orchestration.services.common import (
    START,
    StackExists,
    StackValidationFailed,
    _deadline,
    _event,
    _move_stack,
    _publish,
    _queue,
    _save,
)
from apps.orchestration.services.templates import Prepared, _prepare, _take_prepared

_new_id = StackResource._meta.pk.get_default
# COPY's text format: a backslash, tab, newline or carriage return inside a value is escaped
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_rows() -> bool:
    return connection.vendor == "postgresql"


def _copy_text(value: Any, *, is_json: bool) -> str:
    """One value as a field of COPY's text format: NULL as ``\\N``, JSON serialized as a jsonb column
    reads it, a timestamp in ISO form, a boolean as t/f."""
    if value is None:
        return "\\N"
    if is_json:
        text = json.dumps(value)
    elif isinstance(value, bool):
        text = "t" if value else "f"
    elif isinstance(value, datetime):
        text = value.isoformat()
    else:
        text = str(value)
    return text.translate(_COPY_ESCAPES)


def _copy_json(value: Any) -> str:
    """``_copy_text`` of a JSON column's value; a list of strings (a row's requires and required_by)
    written as ``json.dumps`` writes it, without its per-call overhead."""
    if type(value) is list and all(type(item) is str for item in value):
        return ("[" + ", ".join(map(encode_basestring_ascii, value)) + "]").translate(_COPY_ESCAPES)
    return _copy_text(value, is_json=True)


def _copy_plain(value: Any) -> str:
    """``_copy_text`` of another column's value, a string or an integer directly."""
    kind = type(value)
    if kind is str:
        return value.translate(_COPY_ESCAPES)
    if kind is int:
        return str(value)
    return _copy_text(value, is_json=False)


def _insert_resources(stack: Stack, specs: list[dict[str, Any]]) -> None:
    """Write a new stack's resource rows (``specs``: each row's fields other than their defaults).
    ``bulk_create`` prepares each of their ~15 fields per row; on PostgreSQL the columns every row shares
    are prepared and encoded once from one model object, the varying ones (JSON serialized directly)
    encoded per row, and the rows go in one ``COPY ... FROM STDIN`` (text format): the same values
    ``bulk_create`` writes (tests/orchestration/test_insert_resources.py compares them)."""
    if not specs:
        return
    if not _copy_rows():
        StackResource.objects.bulk_create([StackResource(stack=stack, **spec) for spec in specs])
        return
    sample = StackResource(stack=stack, **specs[0])
    fields = StackResource._meta.concrete_fields
    json_fields = {f.attname for f in fields if isinstance(f, JSONField)}
    varying = ["id", *specs[0]]
    shared = {f.attname: _copy_text(f.pre_save(sample, True) if f.attname in json_fields else
                                    f.get_db_prep_save(f.pre_save(sample, True), connection),
                                    is_json=f.attname in json_fields)
              for f in fields if f.attname not in varying}
    by_name = {f.attname: f for f in fields}
    # the shared columns first (one encoded text for every row), then the varying ones
    columns = [*shared, *varying]
    head = "\t".join(shared.values())
    coders = [(name, _copy_json if name in json_fields else _copy_plain) for name in varying[1:]]
    lines = []
    for row_id, spec in zip(_new_ids(len(specs)), specs, strict=True):
        lines.append(f"{head}\t{row_id}\t" + "\t".join([code(spec[name]) for name, code in coders]) + "\n")
    sql = "COPY {} ({}) FROM STDIN".format(  # the model's own table and column names
        connection.ops.quote_name(StackResource._meta.db_table),
        ", ".join(connection.ops.quote_name(by_name[c].column) for c in columns))
    with connection.cursor() as cursor:
        cursor.cursor.copy_expert(sql, io.StringIO("".join(lines)))


def _new_ids(count: int) -> list[str]:
    """``count`` ids as the model's default makes them (``str(uuid.uuid4())``: dashed random UUIDs, the
    version and variant bits set), from one read of the system's random source."""
    if StackResource._meta.pk.default is not new_uuid:
        return [_new_id() for _ in range(count)]
    raw = bytearray(os.urandom(16 * count))
    for at in range(0, 16 * count, 16):
        raw[at + 6] = (raw[at + 6] & 0x0F) | 0x40  # version 4
        raw[at + 8] = (raw[at + 8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return [f"{h[i:i + 8]}-{h[i + 8:i + 12]}-{h[i + 12:i + 16]}-{h[i + 16:i + 20]}-{h[i + 20:i + 32]}"
            for i in range(0, 32 * count, 32)]


def _prepared_stack(stack: Stack, prepared: Prepared, *, timeout_mins: int | None) -> list[dict[str, Any]]:
    """A new stack (a top-level one, or a nested stack's child) ready for its create walk: what
    ``prepared`` holds, its deadline, the walk at its first level. Returns its resources' rows
    (``_insert_resources``'s specs: one per enabled resource, with its level)."""
    bound = prepared.bound
    graph = bound.graph()
    _take_prepared(stack, prepared)
    stack.deadline = _deadline(timeout_mins)
    stack.level, stack.pending = 0, 0
    return [{"name": rname, "type": bound.resource_type(rname).type, "level": index,
             "requires": sorted(graph.requires[rname]), "required_by": sorted(graph.required_by[rname]),
             "deletion_policy": prepared.template.resources[rname].deletion_policy}
            for index, level in enumerate(prepared.levels) for rname in level]


def _create_started(stack: Stack, specs: list[dict[str, Any]]) -> None:
    """In the caller's transaction: the stack CREATE_IN_PROGRESS and its resources' rows written, its
    event, and its walk handed to the control queue."""
    stack.save()
    _insert_resources(stack, specs)
    Event.objects.bulk_create([_event(stack, states.CREATE_IN_PROGRESS, "Stack CREATE started")])
    enqueue(START, queue=_queue(), kwargs={"stack_id": stack.id}, action="create", resource_type="stack",
            resource_id=stack.id, project_id=stack.project_id, user_id=stack.user_id)
    _publish(stack)


def stack_create(*, actor: Actor, name: str, template: Any, files: Any = None, environment: Any = None,
                 parameters: Any = None, timeout_mins: int | None = None, disable_rollback: bool = True,
                 tags: list[str] | None = None) -> Stack:
    """Accept a stack: validate it all, count it against the project's stacks, write its rows (the stack
    CREATE_IN_PROGRESS, one row per enabled resource with its level) and hand the walk to the control
    queue."""
    require_write(actor, actor.project_id, what="stack")
    if timeout_mins is not None and (not isinstance(timeout_mins, int) or timeout_mins <= 0):
        raise StackValidationFailed("timeout_mins must be a positive integer.")
    stack = Stack(name=name, project_id=actor.project_id, user_id=actor.user_id, username=actor.user.name,
                  timeout_mins=timeout_mins, disable_rollback=disable_rollback, tags=list(tags or []))
    prepared = _prepare(name=name, stack_id=stack.id, project_id=actor.project_id or "", template=template,
                        files=files, environment=environment, parameters=parameters, actor=actor)
    specs = _prepared_stack(stack, prepared, timeout_mins=timeout_mins)
    with transaction.atomic():
        if Stack.objects.filter(project_id=actor.project_id, name=name, deleted_at__isnull=True).exists():
            raise StackExists(f"The Stack ({name}) already exists.")
        quota_reserve(project_id=actor.project_id or "", deltas={"stacks": 1})
        _create_started(stack, specs)
    return stack


def stack_preview(*, actor: Actor, name: str, template: Any, files: Any = None, environment: Any = None,
                  parameters: Any = None, timeout_mins: int | None = None, disable_rollback: bool = True
                  ) -> dict[str, Any]:
    """What ``stack_create`` would make, made of nothing: the stack and its resources with their
    properties as far as they resolve before anything exists."""
    require_write(actor, actor.project_id, what="stack")
    stack_id = "None"
    prepared = _prepare(name=name, stack_id=stack_id, project_id=actor.project_id or "", template=template,
                        files=files, environment=environment, parameters=parameters, actor=actor)
    bound = prepared.bound
    graph = bound.graph()
    resources = []
    for rname in [n for level in prepared.levels for n in level]:
        try:
            props = bound.properties(rname)
        except engine.TemplateError:
            props = dict(prepared.template.resources[rname].properties)
        resources.append({"resource_name": rname, "resource_type": bound.resource_type(rname).type,
                          "resource_action": states.INIT, "resource_status": states.COMPLETE,
                          "resource_status_reason": "", "physical_resource_id": "", "properties": props,
                          "required_by": sorted(graph.required_by[rname]), "stack_name": name,
                          "description": prepared.template.resources[rname].description,
                          "metadata": prepared.template.resources[rname].metadata})
    return {"stack_name": name, "id": stack_id, "description": prepared.template.description,
            "template_description": prepared.template.description, "timeout_mins": timeout_mins,
            "disable_rollback": disable_rollback, "parameters": bound.parameters.shown(), "resources": resources,
            "stack_owner": actor.user.name, "project": actor.project_id, "capabilities": [],
            "notification_topics": [], "links": []}


def stack_delete(*, actor: Actor, stack_id: str) -> Stack:
    """Start deleting a stack: its resources in the reverse order of their creation, each one that
    holds something through its type's delete (tolerant of what is already gone)."""
    with transaction.atomic():
        stack = selectors.stack_get(actor=actor, stack_id=stack_id, action="change", lock=True)
        if stack.state == states.DELETE_COMPLETE:
            raise NotFound(f"The Stack ({stack.name}) could not be found.")
        _move_stack(stack, states.DELETE_IN_PROGRESS, "Stack DELETE started", action="delete")
        stack.walk = {}
        stack.level = StackResource.objects.filter(stack=stack).order_by("-level").values_list(
            "level", flat=True).first() or 0
        stack.deadline = _deadline(stack.timeout_mins)
        _save(stack)
        enqueue(START, queue=_queue(), kwargs={"stack_id": stack.id}, action="delete", resource_type="stack",
                resource_id=stack.id, project_id=stack.project_id, user_id=actor.user_id)
    return stack
