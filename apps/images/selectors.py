"""Every read of images, scoped to the caller (Glance's visibility rules). A list costs a constant
number of queries whatever its length: the page's ids in one query, the page's rows in another."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q, QuerySet

from apps.core import pagination
from apps.core.access import restrict, restrict_to_project
from apps.core.errors import BadRequest, NotFound
from apps.identity.policy import Actor
from apps.images.models import Image, ImageMember, ImageTask

DEFAULT_LIMIT = 25
MAX_LIMIT = 1000
SORT_KEYS = {"name", "status", "container_format", "disk_format", "size", "id", "created_at", "updated_at",
             "visibility", "owner", "min_disk", "min_ram", "virtual_size"}
CORE_FILTERS = {"size", "name", "status", "visibility", "owner", "member_status", "tag", "id", "disk_format",
                "container_format", "size_min", "size_max", "protected", "os_hidden", "checksum",
                "os_hash_value", "limit", "marker", "sort_key", "sort_dir", "sort", "created_at", "updated_at"}
TRUE = {"true", "1", "yes", "on"}


def _membership(actor: Actor, statuses: tuple[str, ...] | None) -> Exists:
    members = ImageMember.objects.filter(image=OuterRef("pk"), member=actor.project_id or "")
    if statuses is not None:
        members = members.filter(status__in=statuses)
    return Exists(members)


def image_get(*, actor: Actor, image_id: str) -> Image:
    """An image the caller may see at all (show, download): Image's access rule (its project's,
    public and community ones, shared ones it is a member of whatever its member status)."""
    try:
        return restrict(Image.objects.all(), actor, "view").get(pk=image_id)
    except (Image.DoesNotExist, ValueError):
        raise NotFound(f"No image found with ID {image_id}") from None


def image_get_for_project(*, project_id: str, image_id: str) -> Image:
    """The image as a member of ``project_id`` may read it (Glance's visibility: the project's own,
    public, community, and shared ones it is a member of), whoever asks: every image a server of that
    project uses (its boot image's kernel_id and ramdisk_id too) is checked through this at create and
    rebuild, and the node loads them through it, so another project's private image never boots."""
    try:
        return restrict_to_project(Image.objects.all(), project_id=project_id).get(pk=image_id)
    except (Image.DoesNotExist, ValueError):
        raise NotFound(f"No image found with ID {image_id}") from None


def image_get_for_update(*, actor: Actor, image_id: str) -> Image:
    """The image row locked (FOR UPDATE) for a service's transaction; NotFound when not visible."""
    image = image_get(actor=actor, image_id=image_id)
    return Image.objects.select_for_update().get(pk=image.pk)


@dataclass
class Page:
    images: list[Image]
    next_marker: str | None
    query: dict[str, list[str]]


def _member_statuses(value: str) -> tuple[str, ...] | None:
    value = value or ImageMember.ACCEPTED
    if value == "all":
        return None
    if value not in {ImageMember.ACCEPTED, ImageMember.PENDING, ImageMember.REJECTED}:
        raise BadRequest(f"Invalid status value: {value}")
    return (value,)


def _visibility_q(actor: Actor, visibility: str | None) -> Q:
    """Glance's list rules. Without a filter: the caller's own images, public ones and shared ones
    it is a member of with the wanted member status (accepted unless ``member_status`` says else);
    community images only with visibility=community (or all). An admin lists every image."""
    mine = Q(owner=actor.project_id) if actor.project_id else Q(pk__in=[])
    shared_with_me = Q(visibility=Image.SHARED) & Q(_member_ok=True)
    if visibility in (None, "", "all"):
        if actor.is_admin:
            return Q()
        base = mine | Q(visibility=Image.PUBLIC) | shared_with_me
        if visibility == "all":
            base |= Q(visibility=Image.COMMUNITY)
        return base
    if visibility not in {Image.PUBLIC, Image.PRIVATE, Image.SHARED, Image.COMMUNITY}:
        raise BadRequest(f"Invalid visibility value: {visibility}")
    q = Q(visibility=visibility)
    if visibility in (Image.PUBLIC, Image.COMMUNITY) or actor.is_admin:
        return q
    if visibility == Image.PRIVATE:
        return q & mine
    return q & (mine | shared_with_me)


def _in_list(value: str) -> list[str] | None:
    if value.startswith("in:"):
        body = value[3:]
        items: list[str] = []
        current = ""
        quoted = False
        for char in body:  # values may be quoted to hold commas: in:"a,b",c
            if char == '"':
                quoted = not quoted
            elif char == "," and not quoted:
                items.append(current)
                current = ""
            else:
                current += char
        items.append(current)
        return items
    return None


def _eq_or_in(field: str, value: str) -> Q:
    items = _in_list(value)
    if items is not None:
        return Q(**{f"{field}__in": items})
    if value.startswith("eq:"):
        value = value[3:]
    return Q(**{field: value})


def _sort(query: dict[str, list[str]]) -> list[tuple[str, str]]:
    keys: list[tuple[str, str]] = []
    if query.get("sort"):
        if query.get("sort_key") or query.get("sort_dir"):
            raise BadRequest("The 'sort' parameter cannot be combined with sort_key or sort_dir.")
        for part in ",".join(query["sort"]).split(","):
            key, _, direction = part.strip().partition(":")
            keys.append((key, direction or "desc"))
    else:
        sort_keys = [k for v in query.get("sort_key", []) for k in v.split(",") if k] or ["created_at"]
        dirs = [d for v in query.get("sort_dir", []) for d in v.split(",") if d]
        if len(dirs) > 1 and len(dirs) != len(sort_keys):
            raise BadRequest("The number of sort_dir values must match the number of sort_key values.")
        for i, key in enumerate(sort_keys):
            keys.append((key, dirs[i] if len(dirs) > 1 else (dirs[0] if dirs else "desc")))
    for key, direction in keys:
        if key not in SORT_KEYS:
            raise BadRequest(f"Invalid sort key: {key}")
        if direction not in ("asc", "desc"):
            raise BadRequest(f"Invalid sort direction: {direction}")
    return keys


def _int_param(value: str, name: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise BadRequest(f"{name} param must be an integer") from None
    if number < 0:
        raise BadRequest(f"{name} param must be positive")
    return number


def image_filter(*, actor: Actor, query: dict[str, list[str]], search: str = "") -> QuerySet[Image]:
    """The images a list shows for ``query`` (the request's parameters, each a list), unordered;
    ``search``: only those whose name holds it (the dashboard's filter; Glance's API has none)."""
    first = {k: v[-1] for k, v in query.items() if v}
    statuses = _member_statuses(first.get("member_status", ""))
    qs = restrict(Image.objects.all(), actor, "view").annotate(_member_ok=_membership(actor, statuses))
    qs = qs.filter(_visibility_q(actor, first.get("visibility")))
    # os_hidden=true lists only the hidden images; without it (or false) they are left out
    qs = qs.filter(os_hidden=first.get("os_hidden", "false").lower() in TRUE)
    for field in ("name", "status", "owner", "id", "disk_format", "container_format", "checksum", "os_hash_value"):
        if field in first:
            qs = qs.filter(_eq_or_in(field, first[field]))
    if "protected" in first:
        qs = qs.filter(protected=first["protected"].lower() in TRUE)
    if "size" in first:
        qs = qs.filter(size=_int_param(first["size"], "size"))
    if "size_min" in first:
        qs = qs.filter(size__gte=_int_param(first["size_min"], "size_min"))
    if "size_max" in first:
        qs = qs.filter(size__lte=_int_param(first["size_max"], "size_max"))
    for tag in query.get("tag", []):
        qs = qs.filter(tags__contains=[tag])
    if search:
        qs = qs.filter(name__icontains=search)
    for key, value in first.items():  # any other parameter filters on an extra property
        if key not in CORE_FILTERS:
            qs = qs.filter(**{f"properties__{key}": value})
    return qs


def image_list(*, actor: Actor, query: dict[str, list[str]], search: str = "") -> Page:
    first = {k: v[-1] for k, v in query.items() if v}
    limit = min(_int_param(first["limit"], "limit"), MAX_LIMIT) if "limit" in first else DEFAULT_LIMIT
    order = [(key, direction == "asc") for key, direction in _sort(query)]
    if not any(key == "id" for key, _ in order):
        order.append(("id", order[-1][1] if order else True))
    rows = list(pagination.keyset(image_filter(actor=actor, query=query, search=search), order=order,
                                  marker=first.get("marker") or None,
                                  unknown=lambda marker: BadRequest(f"marker not found: {marker}"))[:limit + 1])
    images = rows[:limit]
    return Page(images=images, next_marker=images[-1].id if len(rows) > limit and images else None, query=query)


def image_list_all(*, actor: Actor, visibility: str | None = None) -> QuerySet[Image]:
    """What the dashboard shows: the list rules above (an admin sees every image)."""
    query: dict[str, list[str]] = {}
    if visibility:
        query["visibility"] = [visibility]
    return image_filter(actor=actor, query=query).order_by("-created_at", "-id")


def image_names(*, actor: Actor, active: bool = False) -> dict[str, str]:
    """Image id → its name (its id when unnamed) for what the dashboard lists, newest first; with
    ``active`` only the images a server or volume can be made from."""
    qs = image_list_all(actor=actor).only("id", "name")
    if active:
        qs = qs.filter(status=Image.ACTIVE)
    return {image.id: image.name or image.id for image in qs}


def image_pending_shares(*, actor: Actor) -> list[Image]:
    """Images other projects shared with the caller's that it has not accepted or rejected yet."""
    pending = image_filter(actor=actor, query={"visibility": ["shared"], "member_status": ["pending"]})
    return list(pending.exclude(owner=actor.project_id or "").order_by("-created_at"))


def member_list(*, actor: Actor, image_id: str) -> QuerySet[ImageMember]:
    """The owner (or an admin) sees every member; a member sees only itself."""
    image = image_get(actor=actor, image_id=image_id)
    _require_shared(image)
    return restrict(ImageMember.objects.filter(image=image).select_related("image"), actor, "view")


def member_get(*, actor: Actor, image_id: str, member_id: str) -> ImageMember:
    try:
        return member_list(actor=actor, image_id=image_id).get(member=member_id)
    except ImageMember.DoesNotExist:
        raise NotFound(f"Member {member_id} not found") from None


def _require_shared(image: Image) -> None:
    from apps.core.errors import Forbidden

    if image.visibility != Image.SHARED:
        raise Forbidden(f"Only shared images have members. Image {image.id} is {image.visibility}.")


def image_data(*, actor: Actor, image_id: str, offset: int = 0, length: int | None = None
               ) -> tuple[Image, Iterator[bytes] | None]:
    """The image and its bytes in chunks (None when it has no data yet: Glance answers 204).
    A deactivated image's data is only for admins (403 otherwise)."""
    from apps.core.errors import Forbidden
    from apps.images.storage import get_store

    image = image_get(actor=actor, image_id=image_id)
    if image.status == Image.DEACTIVATED and not actor.is_admin:
        raise Forbidden("The requested image has been deactivated. Image data download is forbidden.")
    if not image.location or image.status not in (Image.ACTIVE, Image.DEACTIVATED):
        return image, None
    return image, get_store().reader(image.location, offset=offset, length=length)


def task_list(*, actor: Actor, image_id: str) -> QuerySet[ImageTask]:
    """The image's tasks (imports), for whoever may see the image."""
    image = image_get(actor=actor, image_id=image_id)
    return ImageTask.objects.filter(image_id=image.id).order_by("created_at", "id")


# ---- signed URLs for nodes (issue 16) ---------------------------------------------------------------

def _node_url_key() -> bytes:
    """The key of the nodes' image URLs: STRATUS_IMAGE_URL_KEY, else one derived from SECRET_KEY (only the
    control tier holds either; a node never needs it)."""
    import hashlib
    import hmac

    from django.conf import settings

    if settings.STRATUS_IMAGE_URL_KEY:
        return settings.STRATUS_IMAGE_URL_KEY.encode()
    return hmac.new(settings.SECRET_KEY.encode(), b"stratus image URLs for nodes", hashlib.sha256).digest()


def image_node_url(*, image_id: str, purpose: str, node: str, now: float | None = None) -> dict[str, str]:
    """What lets node ``node`` ``purpose`` (``read``/``write``) the data of image ``image_id`` and nothing
    else, for STRATUS_IMAGE_URL_TTL_SECONDS: ``path``, the path and query (relative to the controller's
    URL, STRATUS_PUBLIC_URL, which the node has; the query holds only the non-secret fields: purpose,
    node, expiry) and ``signature``, which the node sends in the ``X-Stratus-Image-Signature`` header,
    never in the URL (access logs record request lines). No access check: the control tier calls it for
    what it decided a node needs (a boot image, a snapshot's image), never on a user's request."""
    import time
    from urllib.parse import urlencode

    from django.conf import settings

    from lib import imageurl

    expires = int((time.time() if now is None else now) + settings.STRATUS_IMAGE_URL_TTL_SECONDS)
    grant = imageurl.Grant(image_id=str(image_id), purpose=purpose, node=node, expires=expires)
    query = urlencode({"purpose": purpose, "node": node, "expires": expires})
    return {"path": f"{imageurl.node_path(str(image_id))}?{query}",
            "signature": imageurl.signature(_node_url_key(), grant)}


def image_node_grant(*, image_id: str, purpose: str, node: str, expires: str, signature: str,
                     now: float | None = None) -> Image:
    """The image a signed node URL names, when its signature (from the request's header) is right for
    this image, this purpose and this node (403 otherwise: tampered, or made for another image or
    purpose) and it has not expired (401). The image itself must still exist (404)."""
    import time

    from apps.core.errors import Forbidden, Unauthorized
    from lib import imageurl

    try:
        grant = imageurl.Grant(image_id=str(image_id), purpose=str(purpose), node=str(node), expires=int(expires))
        imageurl.verify(_node_url_key(), grant, str(signature), now=time.time() if now is None else now)
    except (ValueError, imageurl.Invalid):
        raise Forbidden(f"The signed URL does not allow {purpose or 'this'} access to image {image_id}.") from None
    except imageurl.Expired:
        raise Unauthorized(f"The signed URL of image {image_id} has expired.") from None
    image = Image.objects.filter(pk=image_id).first()
    if image is None:
        raise NotFound(f"No image found with ID {image_id}")
    return image


def image_data_for_node(*, image_id: str, node: str, expires: str, signature: str
                        ) -> tuple[Image, Iterator[bytes] | None]:
    """``image_data`` through a signed read URL (``image_node_url``): the image and its bytes (None when
    it has none)."""
    from apps.images.storage import get_store

    image = image_node_grant(image_id=image_id, purpose="read", node=node, expires=expires, signature=signature)
    if not image.location or image.status not in (Image.ACTIVE, Image.DEACTIVATED):
        return image, None
    return image, get_store().reader(image.location)
