"""A server's metadata (merged or replaced, against the metadata_items quota) and tags."""
from __future__ import annotations

from collections.abc import Mapping

from django.db import transaction

from apps.compute import states
from apps.compute.models import InstanceTag
from apps.compute.services.instances import MAX_TAGS, for_update, metadata_quota_check, publish, save
from apps.core.errors import BadRequest, Conflict, NotFound
from apps.identity.policy import Actor

METADATA_STATES = frozenset({states.ACTIVE, states.PAUSED, states.SUSPENDED, states.STOPPED, states.RESIZED,
                             states.RESCUED, states.SHELVED, states.SHELVED_OFFLOADED, states.BUILDING,
                             states.ERROR})


def server_metadata_set(*, actor: Actor, server_id: str, metadata: Mapping[str, str], replace: bool
                        ) -> dict[str, str]:
    """Replace (PUT) or merge (POST) the server's metadata; returns the whole metadata."""
    with transaction.atomic():
        instance = for_update(actor, server_id)
        if instance.vm_state not in METADATA_STATES:
            raise Conflict(f"Cannot 'update_instance_metadata' instance {instance.id} while it is in vm_state "
                           f"{instance.vm_state}")
        merged = dict(metadata) if replace else {**(instance.metadata or {}), **dict(metadata)}
        instance.metadata = metadata_quota_check(project_id=instance.project_id, metadata=merged)
        save(instance, "metadata")
        publish(instance, "updated")
        return dict(instance.metadata)


def server_metadata_item_set(*, actor: Actor, server_id: str, key: str, value: str) -> dict[str, str]:
    server_metadata_set(actor=actor, server_id=server_id, metadata={key: value}, replace=False)
    return {key: value}


def server_metadata_delete(*, actor: Actor, server_id: str, key: str) -> None:
    with transaction.atomic():
        instance = for_update(actor, server_id)
        if key not in (instance.metadata or {}):
            raise NotFound(f"Metadata item was not found: {key}")
        instance.metadata = {k: v for k, v in instance.metadata.items() if k != key}
        save(instance, "metadata")
        publish(instance, "updated")


def server_tags_set(*, actor: Actor, server_id: str, tags: list[str]) -> list[str]:
    """Replace the server's tags (at most MAX_TAGS, checked by the API's parser)."""
    clean = list(dict.fromkeys(tags))
    with transaction.atomic():
        instance = for_update(actor, server_id)
        InstanceTag.objects.filter(instance=instance).delete()
        InstanceTag.objects.bulk_create([InstanceTag(instance=instance, tag=t) for t in clean])
        save(instance)
        publish(instance, "updated")
    return sorted(clean)


def server_tag_add(*, actor: Actor, server_id: str, tag: str) -> bool:
    """Add one tag; True when it was new."""
    with transaction.atomic():
        instance = for_update(actor, server_id)
        existing = set(InstanceTag.objects.filter(instance=instance).values_list("tag", flat=True))
        if tag in existing:
            return False
        if len(existing) >= MAX_TAGS:
            raise BadRequest(f"The number of tags exceeded the per-server limit {MAX_TAGS}")
        InstanceTag.objects.create(instance=instance, tag=tag)
        save(instance)
        publish(instance, "updated")
    return True


def server_tag_delete(*, actor: Actor, server_id: str, tag: str | None = None) -> None:
    """Delete one tag (404 when absent) or, with no tag, all of them."""
    with transaction.atomic():
        instance = for_update(actor, server_id)
        qs = InstanceTag.objects.filter(instance=instance)
        if tag is not None:
            qs = qs.filter(tag=tag)
            if not qs.exists():
                raise NotFound(f"Tag {tag} could not be found.")
        qs.delete()
        save(instance)
        publish(instance, "updated")
