"""Block storage in the operators' console: shown, never written past the services (a volume's
state, quota and backend claim, its attachments); its actions call the services."""
from django.contrib import admin

from apps.core.admin import ShownInline, ShownOnly, service_action
from apps.volumes import models, services


class VolumeMetadataInline(ShownInline):
    model = models.VolumeMetadata


class AttachmentInline(ShownInline):
    model = models.VolumeAttachment


@admin.register(models.Volume)
class VolumeAdmin(ShownOnly):
    actions = [service_action("delete_volumes", "Delete selected volumes",
                              lambda actor, row: services.volume_delete(actor=actor, volume_id=row.id),
                              done="Deleted")]
    list_display = ("id", "name", "project", "size", "status", "bootable", "volume_type", "backend", "created_at")
    list_filter = ("status", "bootable", "volume_type", "backend")
    search_fields = ("id", "name", "project__id", "project__name")
    raw_id_fields = ("project",)
    inlines = [VolumeMetadataInline, AttachmentInline]


class SnapshotMetadataInline(ShownInline):
    model = models.SnapshotMetadata


@admin.register(models.Snapshot)
class SnapshotAdmin(ShownOnly):
    actions = [service_action("delete_snapshots", "Delete selected snapshots",
                              lambda actor, row: services.snapshot_delete(actor=actor, snapshot_id=row.id),
                              done="Deleted")]
    list_display = ("id", "name", "project", "volume", "size", "status", "created_at")
    list_filter = ("status",)
    search_fields = ("id", "name", "volume__id", "project__id")
    raw_id_fields = ("project", "volume")
    inlines = [SnapshotMetadataInline]


@admin.register(models.VolumeType)
class VolumeTypeAdmin(ShownOnly):
    actions = [service_action("delete_volume_types", "Delete selected volume types",
                              lambda actor, row: services.volume_type_delete(actor=actor, type_id=row.id),
                              done="Deleted")]
    list_display = ("name", "id", "is_public", "description")


@admin.register(models.StorageBackend)
class StorageBackendAdmin(ShownOnly):
    list_display = ("host", "backend_name", "pool", "capacity_gb", "free_gb", "provisioned_gb", "disabled",
                    "last_heartbeat")
    list_filter = ("disabled",)


@admin.register(models.VolumeAttachment)
class VolumeAttachmentAdmin(ShownOnly):
    actions = [service_action("delete_attachments", "Detach selected attachments",
                              lambda actor, row: services.attachment_delete(actor=actor, attachment_id=row.id),
                              done="Detached")]
    list_display = ("id", "volume", "server_id", "host_name", "device", "status", "attached_at")
    raw_id_fields = ("volume",)
