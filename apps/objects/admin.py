"""Object storage in the operators' console: accounts, containers and objects shown (usage per
account is the containers' counters), never written past the services."""
from django.contrib import admin

from apps.core.admin import ShownOnly
from apps.objects import models


@admin.register(models.Account)
class AccountAdmin(ShownOnly):
    list_display = ("project_id", "created_at", "updated_at")
    search_fields = ("project_id",)


@admin.register(models.Container)
class ContainerAdmin(ShownOnly):
    list_display = ("name", "project_id", "object_count", "bytes_used", "read_acl", "write_acl", "created_at")
    search_fields = ("name", "project_id")


@admin.register(models.Object)
class ObjectAdmin(ShownOnly):
    list_display = ("name", "container", "size", "etag", "content_type", "delete_at", "updated_at", "audited_at",
                    "audit_error")
    search_fields = ("name", "etag", "container__name", "container__project_id")
    raw_id_fields = ("container",)
    list_select_related = ("container",)
