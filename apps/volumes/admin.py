from django.contrib import admin

from apps.core.admin import Inline
from apps.volumes import models


class VolumeMetadataInline(Inline):
    model = models.VolumeMetadata


class AttachmentInline(Inline):
    model = models.VolumeAttachment


@admin.register(models.Volume)
class VolumeAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "project", "size", "status", "bootable", "volume_type", "backend", "created_at")
    list_filter = ("status", "bootable", "volume_type", "backend")
    search_fields = ("id", "name", "project__id", "project__name")
    raw_id_fields = ("project",)
    inlines = [VolumeMetadataInline, AttachmentInline]


class SnapshotMetadataInline(Inline):
    model = models.SnapshotMetadata


@admin.register(models.Snapshot)
class SnapshotAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "project", "volume", "size", "status", "created_at")
    list_filter = ("status",)
    search_fields = ("id", "name", "volume__id", "project__id")
    raw_id_fields = ("project", "volume")
    inlines = [SnapshotMetadataInline]


@admin.register(models.VolumeType)
class VolumeTypeAdmin(admin.ModelAdmin):
    list_display = ("name", "id", "is_public", "description")


@admin.register(models.StorageBackend)
class StorageBackendAdmin(admin.ModelAdmin):
    list_display = ("host", "backend_name", "pool", "capacity_gb", "free_gb", "provisioned_gb", "disabled",
                    "last_heartbeat")
    list_filter = ("disabled",)


@admin.register(models.VolumeAttachment)
class VolumeAttachmentAdmin(admin.ModelAdmin):
    list_display = ("id", "volume", "server_id", "host_name", "device", "status", "attached_at")
    raw_id_fields = ("volume",)
