"""Block storage in the operators' console: shown, never written past the services (a volume's
state, quota and backend claim, its attachments); its actions call the services."""
from django.contrib import admin

from apps.core.admin import ShownInline, ShownOnly, deletes
from apps.volumes import models, services


class VolumeMetadataInline(ShownInline):
    model = models.VolumeMetadata


class AttachmentInline(ShownInline):
    model = models.VolumeAttachment


@admin.register(models.Volume)
class VolumeAdmin(ShownOnly):
    actions = [deletes(services.volume_delete, "volume_id", "volumes")]
    list_display = ("id", "name", "project", "size", "status", "bootable", "volume_type", "backend", "created_at")
    list_filter = ("status", "bootable", "volume_type", "backend")
    search_fields = ("id", "name", "project__id", "project__name")
    raw_id_fields = ("project",)
    inlines = [VolumeMetadataInline, AttachmentInline]


class SnapshotMetadataInline(ShownInline):
    model = models.SnapshotMetadata


@admin.register(models.Snapshot)
class SnapshotAdmin(ShownOnly):
    actions = [deletes(services.snapshot_delete, "snapshot_id", "snapshots")]
    list_display = ("id", "name", "project", "volume", "size", "status", "created_at")
    list_filter = ("status",)
    search_fields = ("id", "name", "volume__id", "project__id")
    raw_id_fields = ("project", "volume")
    inlines = [SnapshotMetadataInline]


@admin.register(models.VolumeType)
class VolumeTypeAdmin(ShownOnly):
    actions = [deletes(services.volume_type_delete, "type_id", "volume types")]
    list_display = ("name", "id", "is_public", "description")


@admin.register(models.StorageBackend)
class StorageBackendAdmin(ShownOnly):
    list_display = ("host", "backend_name", "pool", "capacity_gb", "free_gb", "provisioned_gb", "disabled",
                    "last_heartbeat")
    list_filter = ("disabled",)


@admin.register(models.VolumeAttachment)
class VolumeAttachmentAdmin(ShownOnly):
    actions = [deletes(services.attachment_delete, "attachment_id", "attachments",
                       description="Detach selected attachments", done="Detached")]
    list_display = ("id", "volume", "server_id", "host_name", "device", "status", "attached_at")
    raw_id_fields = ("volume",)
