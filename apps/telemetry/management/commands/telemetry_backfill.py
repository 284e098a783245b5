"""python manage.py telemetry_backfill: the lifecycle records of what existed before telemetry did
(or while it failed): every launched instance, deleted or not, from its launched_at (to its
terminated_at), and every volume, snapshot, image, floating IP and router that has no resource yet,
from its created_at. Idempotent: what is already recorded is left alone (an instance that the pollster
made first gets its start moved back to its launch), so usage summaries equal os-simple-tenant-usage
for older instances too."""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from apps.telemetry.models import Resource


def _recorded(type_name: str) -> set[str]:
    return set(Resource.objects.filter(type_id=type_name).values_list("original_resource_id", flat=True))


class Command(BaseCommand):
    help = "Record in telemetry the instances, volumes, snapshots, images, floating IPs and routers it lacks."

    def handle(self, *args: Any, **opts: Any) -> None:
        from apps.compute.models import Instance
        from apps.compute.services.instances import telemetry_record as instance_record
        from apps.images.models import Image
        from apps.images.services._common import telemetry_record as image_record
        from apps.networks.models import FloatingIP, Router
        from apps.networks.services.common import telemetry_record as network_record
        from apps.volumes.models import Snapshot, Volume
        from apps.volumes.services.common import telemetry_record as volume_record

        counts: dict[str, int] = {}
        started = dict(Resource.objects.filter(type_id="instance").values_list("original_resource_id", "started_at"))
        for instance in Instance.objects.filter(launched_at__isnull=False).order_by("launched_at").iterator():
            known = started.get(instance.id)
            if known is not None and known <= instance.launched_at:
                continue
            instance_record(instance, "create")  # outside a transaction: applied at once
            if instance.terminated_at or instance.deleted_at:
                instance.terminated_at = instance.terminated_at or instance.deleted_at
                instance_record(instance, "delete")
            counts["instance"] = counts.get("instance", 0) + 1
        volumes = ((Volume.objects.select_related("volume_type"), "volume"), (Snapshot.objects.all(), "snapshot"))
        for rows, kind in volumes:
            # a row still creating is recorded when it is made; one that failed to be made never existed
            for row in rows.exclude(pk__in=_recorded(kind)).exclude(status__in=("creating", "error")):
                volume_record(row, "create", at=row.created_at)
                counts[kind] = counts.get(kind, 0) + 1
        for image in Image.objects.exclude(pk__in=_recorded("image")).iterator():
            image_record(image, "create", at=image.created_at)
            counts["image"] = counts.get("image", 0) + 1
        for model, kind in ((FloatingIP, "floatingip"), (Router, "router")):
            for row in model.objects.exclude(pk__in=_recorded(kind)).iterator():
                network_record(kind, row, "create", at=row.created_at)
                counts[kind] = counts.get(kind, 0) + 1
        self.stdout.write(", ".join(f"{kind}: {n}" for kind, n in sorted(counts.items())) or "nothing to record")
