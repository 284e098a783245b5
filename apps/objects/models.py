"""Swift's index: an account is a project; its containers and their objects are rows here, the bytes
are in the storage engine (``apps.objects.storage``) under each object's ``location``. Listings read
only these tables (ordered by name, bytewise under PostgreSQL's C collation and SQLite's BINARY)."""
from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import F, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce

from apps.core.access import AccessRule
from apps.core.models import TimeStamped


class Account(TimeStamped):
    """An account's own metadata (``X-Account-Meta-*``, temp URL keys, quota): a row only once set."""

    project_id = models.CharField(primary_key=True, max_length=64)
    metadata = models.JSONField(default=dict, blank=True)

    access_rule = AccessRule(project="project_id")

    def __str__(self) -> str:
        return f"AUTH_{self.project_id}"


class ContainerManager(models.Manager["Container"]):
    """Every container read through ``Container.objects`` carries its exact counters: the folded base
    plus its pending changes (``CounterChange``), summed in the same query (a subquery per counter), so
    a listing stays one query and a reader sees a PUT or DELETE as soon as it returned."""

    def get_queryset(self) -> models.QuerySet[Container]:
        pending = CounterChange.objects.filter(container=OuterRef("pk")).values("container")
        objects = Subquery(pending.annotate(n=Sum("d_objects")).values("n"), output_field=models.BigIntegerField())
        size = Subquery(pending.annotate(n=Sum("d_bytes")).values("n"), output_field=models.BigIntegerField())
        return super().get_queryset().annotate(object_count=F("base_count") + Coalesce(objects, 0),
                                               bytes_used=F("base_bytes") + Coalesce(size, 0))


class Container(TimeStamped):
    project_id = models.CharField(max_length=64, db_index=True)
    name = models.CharField(max_length=256)
    metadata = models.JSONField(default=dict, blank=True)  # X-Container-Meta-* (lowercase keys after the prefix)
    read_acl = models.TextField(blank=True, default="")    # X-Container-Read
    write_acl = models.TextField(blank=True, default="")   # X-Container-Write
    # The counters folded so far; a PUT or DELETE adds a CounterChange row in its own transaction instead
    # of updating these (no shared row lock), and the fold (services.counters_fold) moves them in here.
    # Read them as ``object_count`` and ``bytes_used``: base plus pending, exact.
    base_count = models.BigIntegerField(default=0)
    base_bytes = models.BigIntegerField(default=0)

    objects = ContainerManager()

    access_rule = AccessRule(project="project_id")

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["project_id", "name"], name="objects_container_unique")]

    def __str__(self) -> str:
        return f"{self.name} (AUTH_{self.project_id})"

    # ``object_count`` and ``bytes_used``: set by ContainerManager's annotations (or by a service that read
    # them under the container's lock); a row that came another way (a raw statement) reads them once.
    def _counters(self) -> tuple[int, int]:
        if "_object_count" not in self.__dict__ or "_bytes_used" not in self.__dict__:
            found = None
            if self.pk is not None:
                found = Container.objects.filter(pk=self.pk).values_list("object_count", "bytes_used").first()
            self._object_count, self._bytes_used = found or (self.base_count, self.base_bytes)
        return self._object_count, self._bytes_used

    @property
    def object_count(self) -> int:
        return self._counters()[0]

    @object_count.setter
    def object_count(self, value: int) -> None:
        self._object_count = value

    @property
    def bytes_used(self) -> int:
        return self._counters()[1]

    @bytes_used.setter
    def bytes_used(self, value: int) -> None:
        self._bytes_used = value

    def refresh_from_db(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__.pop("_object_count", None)
        self.__dict__.pop("_bytes_used", None)
        super().refresh_from_db(*args, **kwargs)


class CounterChange(models.Model):
    """One PUT's or DELETE's change to its container's counters, written in that request's transaction
    (an INSERT: no row shared by concurrent writers). Readers add a container's pending changes to its
    base in the same query; ``services.counters_fold`` deletes them and adds them to the base in one
    transaction (Swift's container updaters, made exact)."""

    id = models.BigAutoField(primary_key=True)
    container = models.ForeignKey(Container, on_delete=models.CASCADE, related_name="counter_changes")
    d_objects = models.BigIntegerField()
    d_bytes = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.container_id}: {self.d_objects:+d} objects, {self.d_bytes:+d} bytes"


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
    # the auditor's last look at the blob (services.objects_audit): when, and what was wrong ("" = sound)
    audited_at = models.DateTimeField(null=True, blank=True)
    audit_error = models.CharField(max_length=512, blank=True, default="")

    access_rule = AccessRule(project="container__project_id")

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["container", "name"], name="objects_object_unique")]
        indexes = [models.Index(fields=["audited_at", "id"], name="objects_object_audit")]

    def __str__(self) -> str:
        return f"{self.container_id}/{self.name}"

