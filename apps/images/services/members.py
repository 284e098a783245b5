"""Image members: the owner shares a shared image with a project, which accepts or rejects it."""
from __future__ import annotations

from django.db import transaction

from apps.core import events
from apps.core.errors import BadRequest, Conflict, Forbidden, NotFound
from apps.identity.policy import Actor, require_write
from apps.images import selectors
from apps.images.models import Image, ImageMember
from apps.images.services._common import _may_modify, _publish

# ---- members ---------------------------------------------------------------------------------

def _owned_shared(actor: Actor, image_id: str) -> Image:
    image = selectors.image_get_for_update(actor=actor, image_id=image_id)
    if not actor.is_admin and image.owner != actor.project_id:
        raise Forbidden(f"Only the owner of image {image.id} may change its members.")
    _may_modify(actor, image)
    if image.visibility != Image.SHARED:
        raise Forbidden(f"Only shared images have members. Image {image.id} is {image.visibility}.")
    return image


def member_create(*, actor: Actor, image_id: str, member_id: str) -> ImageMember:
    """Share an image with a project (the owner does it; the member then accepts or rejects)."""
    if not member_id or len(member_id) > 255:
        raise BadRequest("Invalid member: a project id.")
    with transaction.atomic():
        image = _owned_shared(actor, image_id)
        if member_id == image.owner:
            raise BadRequest("The owner of an image cannot be one of its members.")
        if ImageMember.objects.filter(image=image, member=member_id).exists():
            raise Conflict(f"Member {member_id} is already associated with image {image.id}.")
        member = ImageMember.objects.create(image=image, member=member_id)
        _publish(image, "updated", member=member_id)
        events.publish(project_id=member_id, kind="created", resource="image_member", resource_id=image.id,
                       data={"status": member.status})
    return member


def member_update(*, actor: Actor, image_id: str, member_id: str, status: str) -> ImageMember:
    """Only the member project itself accepts, rejects or puts back to pending."""
    if status not in (ImageMember.PENDING, ImageMember.ACCEPTED, ImageMember.REJECTED):
        raise BadRequest(f"Invalid member status {status!r}: pending, accepted or rejected.")
    with transaction.atomic():
        member = selectors.member_get(actor=actor, image_id=image_id, member_id=member_id)
        if member.member != actor.project_id:
            raise Forbidden("Only the member project may change its membership status.")
        require_write(actor, actor.project_id, what="image member")
        member.status = status
        member.save(update_fields=["status", "updated_at"])
        events.publish(project_id=member.member, kind="updated", resource="image_member",
                       resource_id=member.image_id, data={"status": status})
        _publish(member.image, "updated", member=member_id, member_status=status)
    return member


def member_delete(*, actor: Actor, image_id: str, member_id: str) -> None:
    with transaction.atomic():
        image = _owned_shared(actor, image_id)
        deleted, _ = ImageMember.objects.filter(image=image, member=member_id).delete()
        if not deleted:
            raise NotFound(f"Member {member_id} not found")
        _publish(image, "updated", member=member_id)
        events.publish(project_id=member_id, kind="deleted", resource="image_member", resource_id=image.id)
