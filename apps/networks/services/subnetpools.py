"""Subnet pools."""
from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import TypedDict

from django.db import transaction

from apps.identity.policy import Actor, require_admin
from apps.networks import errors, ipam, selectors
from apps.networks.models import Subnet, SubnetPool
from apps.networks.services.common import owning_project, publish, release, require_write, reserve, touch


def _pool_prefixes(value: Sequence[str]) -> tuple[list[str], int]:
    if not value:
        raise errors.InvalidInput("Invalid input for prefixes. Reason: a non-empty list of CIDRs is required.")
    nets = [ipam.parse_network(p, field="prefixes", strict=False) for p in value]
    versions = {n.version for n in nets}
    if len(versions) != 1:
        raise errors.InvalidInput("Invalid input for prefixes. Reason: all prefixes must be of one IP version.")
    collapsed = [str(n) for n in ipaddress.collapse_addresses(nets)]  # type: ignore[type-var]
    return collapsed, versions.pop()


def _prefixlen(value: int, field: str, version: int) -> int:
    high = 32 if version == 4 else 128
    if not 0 <= value <= high:
        raise errors.InvalidInput(f"Invalid input for {field}. Reason: '{value}' is not in range 0..{high}.")
    return value


def _check_lengths(min_len: int, default_len: int, max_len: int) -> None:
    if not min_len <= default_len <= max_len:
        raise errors.InvalidInput("Invalid input: min_prefixlen <= default_prefixlen <= max_prefixlen is required.")


@transaction.atomic
def subnetpool_create(*, actor: Actor, name: str = "", prefixes: Sequence[str] = (),
                      default_prefixlen: int | None = None, min_prefixlen: int | None = None,
                      max_prefixlen: int | None = None, shared: bool = False, is_default: bool = False,
                      default_quota: int | None = None, description: str = "", project_id: str | None = None,
                      tags: list[str] | None = None) -> SubnetPool:
    owner = owning_project(actor, project_id)
    prefix_list, version = _pool_prefixes(prefixes)
    top = 32 if version == 4 else 128
    min_len = _prefixlen(min_prefixlen, "min_prefixlen", version) if min_prefixlen is not None else (
        8 if version == 4 else 64)
    max_len = _prefixlen(max_prefixlen, "max_prefixlen", version) if max_prefixlen is not None else top
    default_len = (_prefixlen(default_prefixlen, "default_prefixlen", version)
                   if default_prefixlen is not None else min_len)
    _check_lengths(min_len, default_len, max_len)
    if (shared or is_default) and not actor.is_admin:
        raise errors.PolicyNotAuthorized("Only an admin may create shared or default subnet pools.")
    reserve(owner, {"subnetpool": 1})
    pool = SubnetPool.objects.create(
        project_id=owner, name=name, description=description, ip_version=version, prefixes=prefix_list,
        default_prefixlen=default_len, min_prefixlen=min_len, max_prefixlen=max_len, shared=shared,
        is_default=is_default, default_quota=default_quota, tags=list(tags or []))
    publish("created", "subnetpool", pool)
    return pool


class SubnetPoolChanges(TypedDict, total=False):
    name: str
    description: str
    prefixes: list[str]
    default_prefixlen: int
    min_prefixlen: int
    max_prefixlen: int
    is_default: bool
    default_quota: int | None
    tags: list[str]


@transaction.atomic
def subnetpool_update(*, actor: Actor, subnetpool_id: str, changes: SubnetPoolChanges) -> SubnetPool:
    pool = selectors.subnetpool_get(actor=actor, subnetpool_id=subnetpool_id)
    require_write(actor, pool, errors.SubnetPoolNotFound, f"Subnet pool {subnetpool_id} could not be found.")
    pool = SubnetPool.objects.select_for_update().get(pk=pool.pk)
    for key, value in changes.items():
        if key == "prefixes":
            prefix_list, version = _pool_prefixes(value)
            old = [ipaddress.ip_network(p) for p in pool.prefixes]
            new = [ipaddress.ip_network(p) for p in prefix_list]
            if version != pool.ip_version or not all(any(o.subnet_of(n) for n in new) for o in old):  # type: ignore[arg-type]
                raise errors.InvalidInput("Existing prefixes must be a subset of the new prefixes.")
            value = prefix_list
        elif key in ("default_prefixlen", "min_prefixlen", "max_prefixlen"):
            _prefixlen(value, key, pool.ip_version)
        elif key == "is_default":
            require_admin(actor, action="change is_default")
        setattr(pool, key, value)
    _check_lengths(pool.min_prefixlen, pool.default_prefixlen, pool.max_prefixlen)
    touch(pool, list(changes))
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
