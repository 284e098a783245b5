"""Neutron's quota API over identity's quota services."""
from __future__ import annotations

from collections.abc import Mapping

from django.db import transaction

from apps.identity import services as identity_services
from apps.identity.policy import Actor, require_admin
from apps.networks import errors, selectors

# ---- quotas --------------------------------------------------------------------------------

@transaction.atomic
def network_quota_set(*, actor: Actor, project_id: str, limits: Mapping[str, int]) -> dict[str, int]:
    unknown = set(limits) - set(selectors.QUOTA_RESOURCES)
    if unknown:
        raise errors.InvalidInput(f"Unrecognized attribute(s) '{', '.join(sorted(unknown))}'")
    return identity_services.quota_set(actor=actor, project_id=project_id, limits=limits, force=True)


@transaction.atomic
def network_quota_reset(*, actor: Actor, project_id: str) -> None:
    """Neutron's quota DELETE: the project's network limits (only Neutron's own) back to the defaults."""
    require_admin(actor, action="reset quotas")
    identity_services.quota_delete(actor=actor, project_id=project_id, resources=selectors.QUOTA_RESOURCES)
