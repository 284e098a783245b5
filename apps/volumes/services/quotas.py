"""Cinder's quota sets and the default quota class (the limits themselves are identity's), and the
per-volume size limit."""
from __future__ import annotations

from collections.abc import Mapping

from django.db import transaction

from apps.core.errors import BadRequest, QuotaExceeded
from apps.identity import services as identity_services
from apps.identity.policy import Actor, require_admin
from apps.volumes import selectors


def volume_quota_update(*, actor: Actor, project_id: str, limits: Mapping[str, int]) -> dict[str, int]:
    """Set a project's volume limits (admin). Backups and groups are not offered here: only 0 is
    accepted for them. Each volume type's own resources (``volumes_<type>`` ...) are set the same way."""
    known = set(selectors.volume_quota_names())
    clean: dict[str, int] = {}
    for key, value in limits.items():
        if key in selectors.NOT_OFFERED:
            if value not in (0, -1):
                raise BadRequest(f"Quota {key} is not offered by this cloud (no backups or groups).")
            continue
        if key not in known:
            raise BadRequest(f"Bad key(s) in quota set: {key}")
        clean[key] = value
    identity_services.quota_set(actor=actor, project_id=project_id, limits=clean)
    return {k: v["limit"] for k, v in selectors.volume_quota(actor=actor, project_id=project_id).items()}


@transaction.atomic
def volume_quota_defaults_update(*, actor: Actor, class_name: str, limits: Mapping[str, int]) -> dict[str, int]:
    """The ``default`` quota class is the default limits (admin); no other class exists."""
    require_admin(actor, action="set default quotas")
    if class_name != "default":
        raise BadRequest("Only the 'default' quota class exists here.")
    known = set(selectors.volume_quota_names())
    clean: dict[str, int] = {}
    for key, value in limits.items():
        if key in selectors.NOT_OFFERED:
            continue
        if key not in known:
            raise BadRequest(f"Bad key(s) in quota class set: {key}")
        clean[key] = value
    identity_services.quota_default_set(actor=actor, limits=clean)
    return selectors.volume_quota_defaults()


@transaction.atomic
def volume_quota_delete(*, actor: Actor, project_id: str) -> None:
    """Cinder's os-quota-sets DELETE: the project's volume limits (only Cinder's own) back to the defaults."""
    require_admin(actor, action="reset quotas")
    identity_services.quota_delete(actor=actor, project_id=project_id, resources=selectors.volume_quota_names())


def _per_volume_limit(project_id: str, size: int) -> None:
    from apps.identity import selectors as identity_selectors
    from apps.identity.models import Project

    limit = identity_selectors.quota_limits(project=Project(id=project_id)).get("per_volume_gigabytes", -1)
    if 0 <= limit < size:
        raise QuotaExceeded(f"Requested volume size {size}G is larger than maximum allowed limit {limit}G.",
                            resource="per_volume_gigabytes", limit=limit, in_use=0, requested=size)
