"""Volume types and their extra specs (admin); a type's own quotas follow its name."""
from __future__ import annotations

from collections.abc import Mapping

from django.db import transaction

from apps.core import validators
from apps.core.errors import BadRequest, Conflict, NotFound
from apps.core.validators import UNSET, Unset, assign
from apps.identity import services as identity_services
from apps.identity.policy import Actor, require_admin
from apps.volumes import selectors
from apps.volumes.models import Volume, VolumeType


def volume_type_default() -> VolumeType:
    """The default type (``__DEFAULT__``, on the file backends), made on first use."""
    found = VolumeType.objects.filter(name=VolumeType.DEFAULT_NAME).first()
    if found is not None:
        return found
    vtype, _ = VolumeType.objects.get_or_create(
        name=VolumeType.DEFAULT_NAME,
        defaults={"description": "Default Volume Type", "extra_specs": {"volume_backend_name": "file"}})
    return vtype


@transaction.atomic
def volume_type_create(*, actor: Actor, name: str, description: str | None = None, is_public: bool = True,
                       extra_specs: Mapping[str, str] | None = None) -> VolumeType:
    require_admin(actor, action="create volume types")
    if not name.strip():
        raise BadRequest("Volume type name can not be empty.")
    extra_specs = validators.string_map(extra_specs, field="extra_specs")
    if VolumeType.objects.filter(name=name).exists():
        raise Conflict(f"Volume Type {name} already exists.")
    return VolumeType.objects.create(name=name, description=description, is_public=is_public,
                                     extra_specs=extra_specs)


@transaction.atomic
def volume_type_update(*, actor: Actor, type_id: str, name: str | Unset = UNSET,
                       description: str | Unset | None = UNSET, is_public: bool | Unset = UNSET) -> VolumeType:
    """Set what is given (``UNSET``: left as it is); a new name carries the type's quotas along."""
    require_admin(actor, action="update volume types")
    vtype = selectors.volume_type_get(actor=actor, type_id=type_id)
    if not isinstance(name, Unset):
        if VolumeType.objects.filter(name=name).exclude(pk=vtype.pk).exists():
            raise Conflict(f"Volume Type {name} already exists.")
        _rename_type_quotas(vtype.name, name)
    assign(vtype, name=name, description=description, is_public=is_public)
    vtype.save()
    return vtype


@transaction.atomic
def volume_type_delete(*, actor: Actor, type_id: str) -> None:
    require_admin(actor, action="delete volume types")
    vtype = selectors.volume_type_get(actor=actor, type_id=type_id)
    if vtype.name == VolumeType.DEFAULT_NAME:
        raise BadRequest("Default volume type can not be deleted.")
    if Volume.objects.filter(volume_type=vtype).exists():
        raise BadRequest(f"Target volume type {vtype.id} is still in use.")
    _rename_type_quotas(vtype.name, None)
    vtype.delete()


def _rename_type_quotas(old: str, new: str | None) -> None:
    """A renamed type keeps its limits and usage under its new name (as Cinder does); a deleted one's
    go (nothing of it remains to count)."""
    olds = [f"{resource}_{old}" for resource in selectors.TYPE_QUOTAS]
    if new is not None and len(new) <= selectors.type_quota_room():
        identity_services.quota_resources_rename(
            resources={name: f"{resource}_{new}" for name, resource in zip(olds, selectors.TYPE_QUOTAS, strict=True)})
    else:
        identity_services.quota_resources_forget(resources=olds)


@transaction.atomic
def volume_type_extra_specs_set(*, actor: Actor, type_id: str, specs: Mapping[str, str]) -> dict[str, str]:
    """Merge ``specs`` into the type's extra specs (admin); keys and values are the API's (1 to 255
    characters, values at most 255), whoever calls."""
    require_admin(actor, action="change volume type extra specs")
    specs = validators.string_map(specs, field="extra_specs")
    vtype = selectors.volume_type_get(actor=actor, type_id=type_id)
    vtype = VolumeType.objects.select_for_update().get(pk=vtype.pk)
    vtype.extra_specs = {**(vtype.extra_specs or {}), **specs}
    vtype.save(update_fields=["extra_specs", "updated_at"])
    return dict(specs)


@transaction.atomic
def volume_type_extra_spec_delete(*, actor: Actor, type_id: str, key: str) -> None:
    require_admin(actor, action="change volume type extra specs")
    vtype = selectors.volume_type_get(actor=actor, type_id=type_id)
    vtype = VolumeType.objects.select_for_update().get(pk=vtype.pk)
    specs = dict(vtype.extra_specs or {})
    if key not in specs:
        raise NotFound(f"Volume Type {vtype.id} has no extra specs with key {key}.")
    del specs[key]
    vtype.extra_specs = specs
    vtype.save(update_fields=["extra_specs", "updated_at"])
