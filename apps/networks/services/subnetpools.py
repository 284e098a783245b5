"""Subnet pools."""
from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from django.db import transaction

from apps.identity.policy import Actor, require_admin
from apps.networks import errors, ipam, selectors
from apps.networks.models import (
    Subnet,
    SubnetPool,
)
from apps.networks.services.common import (
    _bool,
    _int,
    _tags,
    _text,
    owning_project,
    publish,
    release,
    require_write,
    reserve,
    touch,
)

# ---- subnet pools --------------------------------------------------------------------------

def _pool_prefixes(value: Any) -> tuple[list[str], int]:
    if not isinstance(value, list) or not value:
        raise errors.InvalidInput("Invalid input for prefixes. Reason: a non-empty list of CIDRs is required.")
    nets = [ipam.parse_network(p, field="prefixes", strict=False) for p in value]
    versions = {n.version for n in nets}
    if len(versions) != 1:
        raise errors.InvalidInput("Invalid input for prefixes. Reason: all prefixes must be of one IP version.")
    collapsed = [str(n) for n in ipaddress.collapse_addresses(nets)]  # type: ignore[type-var]
    return collapsed, versions.pop()


@transaction.atomic
def subnetpool_create(*, actor: Actor, name: str = "", prefixes: Any = None, default_prefixlen: Any = None,
                      min_prefixlen: Any = None, max_prefixlen: Any = None, shared: bool = False,
                      is_default: bool = False, default_quota: Any = None, description: str = "",
                      project_id: str | None = None, tags: list[str] | None = None) -> SubnetPool:
    owner = owning_project(actor, project_id)
    prefix_list, version = _pool_prefixes(prefixes)
    top = 32 if version == 4 else 128
    min_len = _int(min_prefixlen, field="min_prefixlen", low=0, high=top) if min_prefixlen is not None else (
        8 if version == 4 else 64)
    min_len = max(min_len, 0)
    max_len = _int(max_prefixlen, field="max_prefixlen", low=0, high=top) if max_prefixlen is not None else top
    default_len = (_int(default_prefixlen, field="default_prefixlen", low=0, high=top)
                   if default_prefixlen is not None else min_len)
    if not min_len <= default_len <= max_len:
        raise errors.InvalidInput("Invalid input: min_prefixlen <= default_prefixlen <= max_prefixlen is required.")
    shared = _bool(shared, field="shared")
    is_default = _bool(is_default, field="is_default")
    if (shared or is_default) and not actor.is_admin:
        raise errors.PolicyNotAuthorized("Only an admin may create shared or default subnet pools.")
    reserve(owner, {"subnetpool": 1})
    pool = SubnetPool.objects.create(
        project_id=owner, name=_text(name, field="name"), description=_text(description, field="description"),
        ip_version=version, prefixes=prefix_list, default_prefixlen=default_len, min_prefixlen=min_len,
        max_prefixlen=max_len, shared=shared, is_default=is_default,
        default_quota=None if default_quota is None else _int(default_quota, field="default_quota", low=0),
        tags=_tags(tags) if tags is not None else [])
    publish("created", "subnetpool", pool)
    return pool


@transaction.atomic
def subnetpool_update(*, actor: Actor, subnetpool_id: str, changes: Mapping[str, Any]) -> SubnetPool:
    pool = selectors.subnetpool_get(actor=actor, subnetpool_id=subnetpool_id)
    require_write(actor, pool, errors.SubnetPoolNotFound, f"Subnet pool {subnetpool_id} could not be found.")
    pool = SubnetPool.objects.select_for_update().get(pk=pool.pk)
    fields = []
    for key, value in changes.items():
        if key in ("name", "description"):
            setattr(pool, key, _text(value, field=key))
        elif key == "prefixes":
            prefix_list, version = _pool_prefixes(value)
            old = [ipaddress.ip_network(p) for p in pool.prefixes]
            new = [ipaddress.ip_network(p) for p in prefix_list]
            if version != pool.ip_version or not all(any(o.subnet_of(n) for n in new) for o in old):  # type: ignore[arg-type]
                raise errors.InvalidInput("Existing prefixes must be a subset of the new prefixes.")
            pool.prefixes = prefix_list
        elif key in ("default_prefixlen", "min_prefixlen", "max_prefixlen"):
            setattr(pool, key, _int(value, field=key, low=0, high=32 if pool.ip_version == 4 else 128))
        elif key == "is_default":
            require_admin(actor, action="change is_default")
            pool.is_default = _bool(value, field=key)
        elif key == "default_quota":
            pool.default_quota = None if value is None else _int(value, field=key, low=0)
        elif key == "tags":
            pool.tags = _tags(value)
        else:
            raise errors.InvalidInput(f"Cannot update read-only attribute {key}.")
        fields.append(key)
    if not pool.min_prefixlen <= pool.default_prefixlen <= pool.max_prefixlen:
        raise errors.InvalidInput("Invalid input: min_prefixlen <= default_prefixlen <= max_prefixlen is required.")
    touch(pool, fields)
    publish("updated", "subnetpool", pool)
    return pool


@transaction.atomic
def subnetpool_delete(*, actor: Actor, subnetpool_id: str) -> None:
    pool = selectors.subnetpool_get(actor=actor, subnetpool_id=subnetpool_id)
    require_write(actor, pool, errors.SubnetPoolNotFound, f"Subnet pool {subnetpool_id} could not be found.")
    if Subnet.objects.filter(subnetpool=pool).exists():
        raise errors.SubnetPoolInUse(f"Unable to delete subnet pool {pool.id}: subnets are allocated from it.")
    pool.delete()
    release(pool.project_id, {"subnetpool": 1})
    publish("deleted", "subnetpool", pool)
