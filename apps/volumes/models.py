"""Cinder's tables: storage backends (the storage nodes), volume types, volumes, snapshots, their
metadata and attachments. States live in ``apps.volumes.states`` (one table of transitions)."""
from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from apps.core.access import AccessRule
from apps.core.models import TimeStamped
from apps.volumes import states


def new_uuid() -> str:
    """Cinder's ids are dashed UUIDs."""
    return str(uuid.uuid4())


class StorageBackend(TimeStamped):
    """A storage node: one agent (workers/storage.py) on the queue ``storage.<host>`` keeping its
    volumes as files. ``provisioned_gb`` is the sum of the sizes of the volumes and snapshots placed
    on it (claimed when a volume is scheduled, released when it is deleted)."""

    host = models.CharField(max_length=255, unique=True)
    backend_name = models.CharField(max_length=64, default="file")
    pool = models.CharField(max_length=64, default="file")
    availability_zone = models.CharField(max_length=255, default="nova")
    capacity_gb = models.FloatField(default=0)
    free_gb = models.FloatField(default=0)
    provisioned_gb = models.BigIntegerField(default=0)
    max_over_subscription_ratio = models.FloatField(default=20.0)
    disabled = models.BooleanField(default=False)
    last_heartbeat = models.DateTimeField(null=True, blank=True)
    path = models.CharField(max_length=1024, blank=True, default="")

    class Meta:
        ordering = ["host"]

    def __str__(self) -> str:
        return self.full_host

    @property
    def full_host(self) -> str:
        """Cinder's ``host@backend#pool``."""
        return f"{self.host}@{self.backend_name}#{self.pool}"


class VolumeType(TimeStamped):
    DEFAULT_NAME = "__DEFAULT__"

    id = models.CharField(primary_key=True, max_length=36, default=new_uuid, editable=False)
    name = models.CharField(max_length=255, unique=True)
    description = models.CharField(max_length=255, null=True, blank=True)
    is_public = models.BooleanField(default=True)
    extra_specs = models.JSONField(default=dict, blank=True)

    access_rule = AccessRule(project=None, view_also=lambda _caller: Q(is_public=True))

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class _Owned(TimeStamped):
    """What a volume and a snapshot both are: a project's and its creator's, named, sized, with the
    reason of its last status (its ``status`` is each one's own vocabulary)."""

    id = models.CharField(primary_key=True, max_length=36, default=new_uuid, editable=False)
    project = models.ForeignKey("identity.Project", on_delete=models.CASCADE, related_name="+")
    user_id = models.CharField(max_length=64)
    name = models.CharField(max_length=255, null=True, blank=True, db_index=True)
    description = models.CharField(max_length=255, null=True, blank=True)
    size = models.PositiveIntegerField()
    status_reason = models.TextField(blank=True, default="")

    access_rule = AccessRule(project="project_id")

    class Meta:
        abstract = True
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name or '(no name)'} ({self.id})"


class Volume(_Owned):
    status = models.CharField(max_length=32, choices=[(s, s) for s in states.VOLUME_STATUSES],
                              default=states.CREATING, db_index=True)
    availability_zone = models.CharField(max_length=255, default="nova")
    bootable = models.BooleanField(default=False)
    volume_type = models.ForeignKey(VolumeType, on_delete=models.PROTECT, related_name="volumes")
    backend = models.ForeignKey(StorageBackend, on_delete=models.PROTECT, null=True, blank=True,
                                related_name="volumes")
    snapshot_id = models.CharField(max_length=36, null=True, blank=True)
    source_volid = models.CharField(max_length=36, null=True, blank=True)
    image_id = models.CharField(max_length=36, null=True, blank=True)
    image_metadata = models.JSONField(null=True, blank=True)
    previous_size = models.PositiveIntegerField(null=True, blank=True)  # while extending
    # what this volume counts against the project's quota (gigabytes); released on delete
    gigabytes_reserved = models.PositiveIntegerField(default=0)


class VolumeMetadata(models.Model):
    volume = models.ForeignKey(Volume, on_delete=models.CASCADE, related_name="metadata_items")
    key = models.CharField(max_length=255)
    value = models.CharField(max_length=255)

    access_rule = AccessRule(project="volume__project_id")

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["volume", "key"], name="volumes_volume_metadata_unique")]
        indexes = [models.Index(fields=["key", "value"])]


class Snapshot(_Owned):
    volume = models.ForeignKey(Volume, on_delete=models.PROTECT, related_name="snapshots")
    status = models.CharField(max_length=32, choices=[(s, s) for s in states.SNAPSHOT_STATUSES],
                              default=states.CREATING, db_index=True)
    progress = models.CharField(max_length=8, default="0%")


class SnapshotMetadata(models.Model):
    snapshot = models.ForeignKey(Snapshot, on_delete=models.CASCADE, related_name="metadata_items")
    key = models.CharField(max_length=255)
    value = models.CharField(max_length=255)

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["snapshot", "key"], name="volumes_snapshot_metadata_unique")]


class VolumeAttachment(TimeStamped):
    """A volume attached (or being attached) to a server: made by the compute side through
    ``services.volume_reserve`` / ``volume_attach`` and removed by ``volume_detach``."""

    id = models.CharField(primary_key=True, max_length=36, default=new_uuid, editable=False)
    volume = models.ForeignKey(Volume, on_delete=models.CASCADE, related_name="attachments")
    server_id = models.CharField(max_length=36, null=True, blank=True, db_index=True)
    host_name = models.CharField(max_length=255, null=True, blank=True)
    device = models.CharField(max_length=64, null=True, blank=True)
    attach_mode = models.CharField(max_length=4, default="rw")
    status = models.CharField(max_length=32, choices=[(s, s) for s in states.ATTACHMENT_STATUSES],
                              default=states.RESERVED)
    attached_at = models.DateTimeField(null=True, blank=True)

    access_rule = AccessRule(project="volume__project_id")

    class Meta:
        ordering = ["created_at", "id"]
