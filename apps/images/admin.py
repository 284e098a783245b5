from django.contrib import admin

from apps.core.admin import Inline
from apps.images import models


class MemberInline(Inline):
    model = models.ImageMember
    fields = ("member", "status", "created_at")
    readonly_fields = ("created_at",)


@admin.register(models.Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ("name", "id", "status", "visibility", "owner", "disk_format", "size", "protected", "created_at")
    list_filter = ("status", "visibility", "disk_format", "container_format", "protected", "os_hidden", "store")
    search_fields = ("name", "id", "owner", "checksum")
    readonly_fields = ("size", "checksum", "os_hash_algo", "os_hash_value", "store", "location", "bytes_reserved",
                       "created_at", "updated_at")
    inlines = [MemberInline]


@admin.register(models.ImageMember)
class ImageMemberAdmin(admin.ModelAdmin):
    list_display = ("image", "member", "status", "created_at")
    list_filter = ("status",)
    search_fields = ("image__id", "image__name", "member")
    raw_id_fields = ("image",)


@admin.register(models.ImageTask)
class ImageTaskAdmin(admin.ModelAdmin):
    list_display = ("id", "type", "image_id", "status", "owner", "request_id", "created_at")
    list_filter = ("type", "status")
    search_fields = ("id", "image_id", "owner", "request_id")
