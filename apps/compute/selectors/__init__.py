"""Every read of the compute app, scoped to the caller."""
from __future__ import annotations

from dataclasses import dataclass, replace

from django.conf import settings
from django.db.models import QuerySet

from apps.compute.models import Flavor, FlavorAccess, FlavorExtraSpec, KeyPair, ServerGroup
from apps.core import pagination
from apps.core.access import restrict, restricted_get
from apps.core.errors import BadRequest, NotFound
from apps.identity import selectors as identity_selectors
from apps.identity.policy import Actor, require_admin

FLAVOR_SORT_KEYS = {
    "flavorid": "flavorid", "id": "flavorid", "name": "name", "memory_mb": "memory_mb", "vcpus": "vcpus",
    "root_gb": "root_gb", "ephemeral_gb": "ephemeral_gb", "swap": "swap", "rxtx_factor": "rxtx_factor",
    "created_at": "created_at", "updated_at": "updated_at", "disabled": "disabled", "is_public": "is_public",
}


@dataclass(frozen=True)
class FlavorQuery:
    is_public: bool | None = True  # None: public and private (admin only)
    min_disk: int | None = None
    min_ram: int | None = None
    sort_key: str = "flavorid"
    sort_dir: str = "asc"
    limit: int | None = None
    marker: str | None = None
    search: str = ""  # a part of the name (the dashboard's filter; Nova's API has none)


def _visible_flavors(actor: Actor) -> QuerySet[Flavor]:
    return restrict(Flavor.objects.all(), actor, "view")


def flavor_list(*, actor: Actor, query: FlavorQuery) -> list[Flavor]:
    """Public flavors plus the private ones the caller's project was given (an admin chooses with
    ``is_public``); filtered, sorted and paginated by flavor id as Nova does."""
    qs = _visible_flavors(actor)
    if actor.is_admin and query.is_public is not None:
        qs = qs.filter(is_public=query.is_public)
    if query.min_disk is not None:
        qs = qs.filter(root_gb__gte=query.min_disk)
    if query.min_ram is not None:
        qs = qs.filter(memory_mb__gte=query.min_ram)
    if query.search:
        qs = qs.filter(name__icontains=query.search)
    column = FLAVOR_SORT_KEYS.get(query.sort_key)
    if column is None:
        raise BadRequest(f"Invalid sort key: {query.sort_key}.")
    if query.sort_dir not in ("asc", "desc"):
        raise BadRequest(f"Invalid sort direction: {query.sort_dir}.")
    ascending = query.sort_dir == "asc"
    order = [(column, ascending), ("flavorid", ascending)] if column != "flavorid" else [("flavorid", ascending)]
    qs = pagination.keyset(qs.prefetch_related("extra_specs"), order=order, marker=query.marker,
                           marker_in=_visible_flavors(actor), marker_field="flavorid",
                           unknown=lambda marker: BadRequest(f"Marker {marker} could not be found."))
    if query.limit is not None:
        qs = qs[: query.limit]
    return list(qs)


def flavor_list_all(*, actor: Actor, query: FlavorQuery | None = None) -> list[Flavor]:
    """Every flavor, public or not (the admins' flavor panel), sorted, filtered and paged as ``query`` says."""
    require_admin(actor, action="manage flavors")
    return flavor_list(actor=actor, query=replace(query or FlavorQuery(), is_public=None))


def flavor_manage_get(*, actor: Actor, flavor_id: str) -> tuple[Flavor, list[FlavorAccess]]:
    """A flavor for the admins' flavor page, with the projects given a private one (none when public)."""
    require_admin(actor, action="manage flavors")
    flavor = flavor_get(actor=actor, flavor_id=flavor_id)
    return flavor, [] if flavor.is_public else flavor_access_list(actor=actor, flavor_id=flavor_id)


def flavor_get(*, actor: Actor, flavor_id: str) -> Flavor:
    """A flavor the caller may see; a private flavor of other projects is not found."""
    return restricted_get(Flavor.objects.prefetch_related("extra_specs"), actor, "view", flavorid=flavor_id,
                          not_found=NotFound(f"Flavor {flavor_id} could not be found."))


def flavor_access_list(*, actor: Actor, flavor_id: str) -> list[FlavorAccess]:
    flavor = flavor_get(actor=actor, flavor_id=flavor_id)
    if flavor.is_public:
        raise NotFound("Access list not available for public flavors.")
    require_admin(actor, action="list the access of a flavor")
    return list(FlavorAccess.objects.filter(flavor=flavor).order_by("created_at", "id"))


def flavor_extra_specs(*, actor: Actor, flavor_id: str) -> dict[str, str]:
    flavor = flavor_get(actor=actor, flavor_id=flavor_id)
    return {spec.key: spec.value for spec in flavor.extra_specs.all()}


def flavor_extra_spec_get(*, actor: Actor, flavor_id: str, key: str) -> FlavorExtraSpec:
    flavor = flavor_get(actor=actor, flavor_id=flavor_id)
    spec = FlavorExtraSpec.objects.filter(flavor=flavor, key=key).first()
    if spec is None:
        raise NotFound(f"Flavor {flavor_id} has no extra specs with key {key}.")
    return spec


def _keypair_owner(actor: Actor, user_id: str | None) -> str:
    if user_id and user_id != actor.user_id:
        require_admin(actor, action="see other users' key pairs")
        return user_id
    return actor.user_id


KEYPAIR_SORT_KEYS = {"name": "name", "type": "type", "created_at": "created_at"}


def keypair_list(*, actor: Actor, user_id: str | None = None, limit: int | None = None,
                 marker: str | None = None, sort_key: str = "name", ascending: bool = True,
                 search: str = "") -> list[KeyPair]:
    """A user's key pairs (the caller's; another user's for an admin), by name as Nova lists them, after
    the key pair named ``marker``; the dashboard also sorts by ``sort_key`` (then by name, unique per
    user) and filters by a part of the name (``search``)."""
    owner = _keypair_owner(actor, user_id)
    column = KEYPAIR_SORT_KEYS.get(sort_key)
    if column is None:
        raise BadRequest(f"Invalid sort key: {sort_key}.")
    qs = restrict(KeyPair.objects.all(), actor, "view").filter(user_id=owner)
    if search:
        qs = qs.filter(name__icontains=search)
    order = [(column, ascending), ("name", ascending)] if column != "name" else [("name", ascending)]
    qs = pagination.keyset(qs, order=order, marker=marker, marker_field="name",
                           unknown=lambda name: BadRequest(f"Marker {name} could not be found."))
    if limit is not None:
        qs = qs[:limit]
    return list(qs)


def keypair_get(*, actor: Actor, name: str, user_id: str | None = None) -> KeyPair:
    owner = _keypair_owner(actor, user_id)
    keypair = restrict(KeyPair.objects.all(), actor, "view").filter(user_id=owner, name=name).first()
    if keypair is None:
        raise NotFound(f"Keypair {name} not found for user {owner}")
    return keypair


def server_group_list(*, actor: Actor, all_projects: bool = False, limit: int | None = None,
                      offset: int = 0) -> list[ServerGroup]:
    qs = restrict(ServerGroup.objects.all(), actor, "view", all_projects=all_projects).order_by("created_at", "id")
    end = offset + limit if limit is not None else None
    return list(qs[offset:end])


def server_group_get(*, actor: Actor, group_id: str) -> ServerGroup:
    # another project's group answers exactly as a group that does not exist (no existence oracle)
    return restricted_get(ServerGroup.objects.all(), actor, "view", pk=group_id,
                          not_found=NotFound(f"Instance group {group_id} could not be found."))


def availability_zone_list(*, actor: Actor, detail: bool = False) -> list[str]:
    """The zones (os-availability-zone); their details (hosts) are for admins."""
    if detail:
        require_admin(actor, action="list availability zone details")
    return list(settings.STRATUS_AVAILABILITY_ZONES)


def project_limits(*, actor: Actor, tenant_id: str | None = None) -> dict[str, dict[str, int]]:
    """``{resource: {limit, in_use}}`` of the caller's project (/limits), or of ``tenant_id`` for an
    admin (another project's limits are a 403 for anyone else)."""

    project_id = tenant_id or actor.project_id
    if project_id != actor.project_id:
        require_admin(actor, action="see the limits of another project")
    if project_id is None:
        raise BadRequest("A project-scoped token is needed to show limits.")
    project = identity_selectors.project_get(actor=actor, project_id=project_id)
    return identity_selectors.quota_usage(project=project)


def keypair_count(*, user_id: str) -> int:
    return KeyPair.objects.filter(user_id=user_id).count()
