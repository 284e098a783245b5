"""Glance's tables: images (with their free-form properties and tags) and their members."""
from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Exists, OuterRef, Q

from apps.core.access import NOTHING, AccessRule, Caller
from apps.core.models import TimeStamped
from apps.images import states


def new_image_id() -> str:
    """Glance ids are dashed UUIDs (the clients and tempest expect that form)."""
    return str(uuid.uuid4())


def _image_view_also(caller: Caller) -> Q:
    """Glance: public and community images, and shared ones the caller's project is a member of
    (whatever its member status)."""
    q = Q(visibility__in=[Image.PUBLIC, Image.COMMUNITY])
    if caller.project_id is not None:
        member = ImageMember.objects.filter(image=OuterRef("pk"), member=caller.project_id)
        q |= Q(Exists(member), visibility=Image.SHARED)
    return q


def _member_view_also(caller: Caller) -> Q:
    """A member project sees its own membership; the image's owner sees them all."""
    return NOTHING if caller.project_id is None else Q(member=caller.project_id)


class Image(TimeStamped):
    QUEUED = states.QUEUED
    SAVING = states.SAVING
    ACTIVE = states.ACTIVE
    KILLED = states.KILLED
    DEACTIVATED = states.DEACTIVATED
    UPLOADING = states.UPLOADING
    IMPORTING = states.IMPORTING
    STATUSES = [(s, s) for s in states.IMAGE_STATUSES]

    PUBLIC = "public"
    PRIVATE = "private"
    SHARED = "shared"
    COMMUNITY = "community"
    VISIBILITIES = [(v, v) for v in (PUBLIC, PRIVATE, SHARED, COMMUNITY)]

    id = models.CharField(primary_key=True, max_length=36, default=new_image_id, editable=False)
    name = models.CharField(max_length=255, null=True, blank=True, db_index=True)
    status = models.CharField(max_length=16, choices=STATUSES, default=QUEUED, db_index=True)
    visibility = models.CharField(max_length=16, choices=VISIBILITIES, default=SHARED, db_index=True)
    protected = models.BooleanField(default=False)
    os_hidden = models.BooleanField(default=False)
    # the owning project's id (Glance keeps it a free string: an admin may set any owner)
    owner = models.CharField(max_length=255, null=True, blank=True, db_index=True)
    disk_format = models.CharField(max_length=32, null=True, blank=True)
    container_format = models.CharField(max_length=32, null=True, blank=True)
    size = models.BigIntegerField(null=True, blank=True)
    virtual_size = models.BigIntegerField(null=True, blank=True)
    checksum = models.CharField(max_length=32, null=True, blank=True)
    os_hash_algo = models.CharField(max_length=64, null=True, blank=True)
    os_hash_value = models.CharField(max_length=128, null=True, blank=True)
    min_disk = models.PositiveIntegerField(default=0)
    min_ram = models.PositiveIntegerField(default=0)
    tags = models.JSONField(default=list, blank=True)
    properties = models.JSONField(default=dict, blank=True)  # free-form extra properties (strings)
    # where the data is: the store's name and the object's key in it (empty until an upload completes)
    store = models.CharField(max_length=16, blank=True, default="")
    location = models.CharField(max_length=1024, blank=True, default="")
    # bytes counted against the owner's image_bytes quota (released on delete)
    bytes_reserved = models.BigIntegerField(default=0)

    access_rule = AccessRule(project="owner", view_also=_image_view_also)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["owner", "visibility"])]

    def __str__(self) -> str:
        return f"{self.name or '(no name)'} ({self.id})"


class ImageMember(TimeStamped):
    PENDING = states.PENDING
    ACCEPTED = states.ACCEPTED
    REJECTED = states.REJECTED
    STATUSES = [(s, s) for s in states.MEMBER_STATUSES]

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="members")
    member = models.CharField(max_length=255, db_index=True)  # a project id
    status = models.CharField(max_length=16, choices=STATUSES, default=PENDING)

    access_rule = AccessRule(project="image__owner", view_also=_member_view_also)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["image", "member"], name="images_member_unique")]

    def __str__(self) -> str:
        return f"{self.member} on {self.image_id} ({self.status})"


class ImageTask(TimeStamped):
    """A record of asynchronous-style work on an image (Glance's image tasks: an import)."""

    PENDING = states.PENDING
    PROCESSING = states.PROCESSING
    SUCCESS = states.SUCCESS
    FAILURE = states.FAILURE
    STATUSES = [(s, s) for s in states.TASK_STATUSES]

    id = models.CharField(primary_key=True, max_length=36, default=new_image_id, editable=False)
    image_id = models.CharField(max_length=36, db_index=True)  # kept after the image is deleted
    type = models.CharField(max_length=64, default="api_image_import")
    status = models.CharField(max_length=16, choices=STATUSES, default=PENDING)
    owner = models.CharField(max_length=255, blank=True, default="")
    user_id = models.CharField(max_length=64, blank=True, default="")
    request_id = models.CharField(max_length=64, blank=True, default="")
    input = models.JSONField(default=dict, blank=True)
    result = models.JSONField(null=True, blank=True)
    message = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.type} {self.image_id} ({self.status})"
