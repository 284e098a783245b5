"""Swift's index: an account is a project; its containers and their objects are rows here, the bytes
are in the storage engine (``apps.objects.storage``) under each object's ``location``. Listings read
only these tables (ordered by name, bytewise under PostgreSQL's C collation and SQLite's BINARY)."""
from __future__ import annotations

from django.db import models

from apps.core.access import AccessRule
from apps.core.models import TimeStamped


class Account(TimeStamped):
    """An account's own metadata (``X-Account-Meta-*``, temp URL keys, quota): a row only once set."""

    project_id = models.CharField(primary_key=True, max_length=64)
    metadata = models.JSONField(default=dict, blank=True)

    access_rule = AccessRule(project="project_id")

    def __str__(self) -> str:
        return f"AUTH_{self.project_id}"


class Container(TimeStamped):
    project_id = models.CharField(max_length=64, db_index=True)
    name = models.CharField(max_length=256)
    metadata = models.JSONField(default=dict, blank=True)  # X-Container-Meta-* (lowercase keys after the prefix)
    read_acl = models.TextField(blank=True, default="")    # X-Container-Read
    write_acl = models.TextField(blank=True, default="")   # X-Container-Write
    # kept by the services in the transaction that changes an object (the account's totals sum them)
    object_count = models.BigIntegerField(default=0)
    bytes_used = models.BigIntegerField(default=0)

    access_rule = AccessRule(project="project_id")

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["project_id", "name"], name="objects_container_unique")]

    def __str__(self) -> str:
        return f"{self.name} (AUTH_{self.project_id})"


class Object(TimeStamped):
    container = models.ForeignKey(Container, on_delete=models.CASCADE, related_name="entries")
    name = models.CharField(max_length=1024)
    size = models.BigIntegerField(default=0)
    etag = models.CharField(max_length=64)          # md5 hex of the bytes (an SLO's: of its segments' etags)
    content_type = models.CharField(max_length=256, default="application/octet-stream")
    metadata = models.JSONField(default=dict, blank=True)  # X-Object-Meta-* (lowercase keys after the prefix)
    headers = models.JSONField(default=dict, blank=True)   # Content-Disposition, Content-Encoding, ...
    delete_at = models.BigIntegerField(null=True, blank=True, db_index=True)  # unix time (X-Delete-At)
    manifest = models.CharField(max_length=2048, blank=True, default="")  # DLO: X-Object-Manifest
    # SLO: the segments [{"path": "/container/name", "etag", "size_bytes", "range"?}] (no blob of its own)
    segments = models.JSONField(null=True, blank=True)
    timestamp = models.DecimalField(max_digits=16, decimal_places=5)  # X-Timestamp of the last PUT/POST
    engine = models.CharField(max_length=16, default="file")
    location = models.CharField(max_length=256, blank=True, default="")  # the engine's key

    access_rule = AccessRule(project="container__project_id")

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["container", "name"], name="objects_object_unique")]

    def __str__(self) -> str:
        return f"{self.container_id}/{self.name}"

