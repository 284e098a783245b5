"""Tags (Neutron's standard-attr-tag, on every resource)."""
from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction

from apps.identity.policy import Actor
from apps.networks import errors, selectors
from apps.networks.models import FloatingIP, Network, Port, Router, SecurityGroup, Subnet, SubnetPool
from apps.networks.services.common import require_write, touch

# ---- tags (Neutron's standard-attr-tag, on every resource) ---------------------------------

TAGGABLE = {"networks": (Network, selectors.network_get, "network_id", errors.NetworkNotFound),
            "subnets": (Subnet, selectors.subnet_get, "subnet_id", errors.SubnetNotFound),
            "ports": (Port, selectors.port_get, "port_id", errors.PortNotFound),
            "routers": (Router, selectors.router_get, "router_id", errors.RouterNotFound),
            "floatingips": (FloatingIP, selectors.floatingip_get, "floatingip_id", errors.FloatingIPNotFound),
            "security-groups": (SecurityGroup, selectors.security_group_get, "security_group_id",
                                errors.SecurityGroupNotFound),
            "subnetpools": (SubnetPool, selectors.subnetpool_get, "subnetpool_id", errors.SubnetPoolNotFound)}


def tags_get(*, actor: Actor, collection: str, resource_id: str) -> list[str]:
    if collection not in TAGGABLE:
        raise errors.NotFound(f"Tags are not supported on {collection}.")
    _model, get, arg, _nf = TAGGABLE[collection]
    return list(get(actor=actor, **{arg: resource_id}).tags)


@transaction.atomic
def tags_change(*, actor: Actor, collection: str, resource_id: str, set_to: Sequence[str] | None = None,
                add: str | None = None, remove: str | None = None) -> list[str]:
    if collection not in TAGGABLE:
        raise errors.NotFound(f"Tags are not supported on {collection}.")
    model, get, arg, not_found = TAGGABLE[collection]
    obj = get(actor=actor, **{arg: resource_id})
    require_write(actor, obj, not_found, f"{model.__name__} {resource_id} could not be found.")
    obj = model.objects.select_for_update().get(pk=obj.pk)
    tags = list(obj.tags)
    if set_to is not None:
        tags = list(dict.fromkeys(set_to))
    if add is not None:
        tags = list(dict.fromkeys([*tags, add]))
    if remove is not None:
        if remove == "*":
            tags = []
        elif remove not in tags:
            raise errors.NotFound(f"Tag {remove} could not be found for {model.__name__.lower()} {resource_id}.")
        else:
            tags.remove(remove)
    obj.tags = tags
    touch(obj, ["tags"])
    return tags
