from django.contrib import admin
from django.http import HttpRequest

from apps.core import models


class ShownOnly(admin.ModelAdmin):
    """Rows the console shows and never writes: they change only through the services (which keep
    what depends on them in step) or are a log others write."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class Inline(admin.TabularInline):
    """A model's rows inside its parent's page, with no blank rows to fill in."""

    extra = 0


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
