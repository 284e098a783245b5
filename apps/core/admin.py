"""The operators' console's bases. The console shows every model, and writes none of the rows the
services own (state, claims, quota, ports, tokens...): a raw "Add", "Delete selected" or field edit
would skip their rules (quota released, node told, tokens revoked, the last admin kept). What an
operator does here goes through the services, as the API and the dashboard do: ``service_action``
makes an admin action that calls one service per selected row, as the signed-in operator."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from apps.core import models
from apps.core.errors import StratusError

if TYPE_CHECKING:
    from apps.identity.policy import Actor


class NeverWritten:
    """No Add, no field edit, no Delete: for a model admin and its inlines alike."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class ShownOnly(NeverWritten, admin.ModelAdmin):
    """Rows the console shows and never writes: they change only through the services (which keep
    what depends on them in step) or are a log others write. Its ``actions`` call the services."""


class ShownInline(NeverWritten, admin.TabularInline):
    """Rows inside a ShownOnly parent's page, shown and never written (and no blank rows)."""

    extra = 0


def console_actor(request: HttpRequest) -> Actor:
    """The signed-in operator as the services see it (an admin of no one project)."""
    from apps.identity.services import actor_for_session

    return actor_for_session(user=request.user, project_id=None)  # type: ignore[arg-type]


def service_action(name: str, description: str, call: Callable[[Actor, Any], object], *, done: str
                   ) -> Callable[[admin.ModelAdmin, HttpRequest, QuerySet], None]:
    """An admin action named ``name`` that calls ``call(actor, row)`` (one service call) for each
    selected row: the rows done in one success message (``done``: "Deleted"), each refusal in its
    own error message with the service's words."""

    def action(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Model]) -> None:
        actor = console_actor(request)
        succeeded = []
        for row in queryset:
            try:
                call(actor, row)
            except StratusError as exc:
                modeladmin.message_user(request, f"{row}: {exc.shown}", messages.ERROR)
            else:
                succeeded.append(str(row))
        if succeeded:
            modeladmin.message_user(request, f"{done}: {', '.join(succeeded)}.", messages.SUCCESS)

    action.__name__ = name
    return admin.action(description=description)(action)


def deletes(service: Callable[..., object], key: str | Mapping[str, str], label: str, *, done: str = "Deleted",
            description: str = "") -> Callable[[admin.ModelAdmin, HttpRequest, QuerySet], None]:
    """The ``service_action`` that calls ``service`` (a ``<thing>_delete``) for each selected row:
    named ``delete_<thing>s``, described "Delete selected <label>". ``key`` is the keyword that
    takes the row's id (``"network_id"``), or maps each keyword to the row's field that gives it
    (``{"name": "name", "user_id": "user_id"}``)."""
    thing = service.__name__.removesuffix("_delete")
    if thing == service.__name__:
        raise ValueError(f"{service.__name__} is not a <thing>_delete service")
    fields = {key: "id"} if isinstance(key, str) else dict(key)
    return service_action(
        f"delete_{thing}s", description or f"Delete selected {label}",
        lambda actor, row: service(actor=actor, **{kw: getattr(row, field) for kw, field in fields.items()}),
        done=done)


@admin.register(models.TaskRecord)
class TaskRecordAdmin(ShownOnly):
    """The task log, read-only: what an operator reads when work for a node is stuck (the worker and
    ``apps.core.tasks`` write it; the beat task sends again what the broker refused)."""

    list_display = ("created_at", "name", "action", "resource_type", "resource_id", "status", "queue",
                    "project_id", "attempts", "started_at", "finished_at")
    list_filter = ("status", "resource_type", "name", "queue")
    search_fields = ("id", "resource_id", "project_id", "user_id", "name", "queue", "error")
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in models.TaskRecord._meta.fields]
