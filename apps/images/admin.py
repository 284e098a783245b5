"""Images in the operators' console: shown, never written past the services (status, size,
checksum, the store and its quota, sharing); its actions call the services."""
from django.contrib import admin

from apps.core.admin import ShownInline, ShownOnly, deletes
from apps.images import models, services


class MemberInline(ShownInline):
    model = models.ImageMember
    fields = ("member", "status", "created_at")
    readonly_fields = ("created_at",)


@admin.register(models.Image)
class ImageAdmin(ShownOnly):
    actions = [deletes(services.image_delete, "image_id", "images")]
    list_display = ("name", "id", "status", "visibility", "owner", "disk_format", "size", "protected", "created_at")
    list_filter = ("status", "visibility", "disk_format", "container_format", "protected", "os_hidden", "store")
    search_fields = ("name", "id", "owner", "checksum")
    readonly_fields = ("size", "checksum", "os_hash_algo", "os_hash_value", "store", "location", "bytes_reserved",
                       "created_at", "updated_at")
    inlines = [MemberInline]


@admin.register(models.ImageMember)
class ImageMemberAdmin(ShownOnly):
    actions = [deletes(services.member_delete, {"image_id": "image_id", "member_id": "member"}, "members",
                       description="Stop sharing with the selected projects", done="Unshared")]
    list_display = ("image", "member", "status", "created_at")
    list_filter = ("status",)
    search_fields = ("image__id", "image__name", "member")
    raw_id_fields = ("image",)


@admin.register(models.ImageTask)
class ImageTaskAdmin(ShownOnly):
    list_display = ("id", "type", "image_id", "status", "owner", "request_id", "created_at")
    list_filter = ("type", "status")
    search_fields = ("id", "image_id", "owner", "request_id")
