"""Every write of the compute app: validation, policy, quota, transactions."""
from __future__ import annotations

import base64
import hashlib
import re
import uuid
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.compute import selectors
from apps.compute.models import Flavor, FlavorAccess, FlavorExtraSpec, KeyPair, ServerGroup
from apps.core import events
from apps.core.errors import BadRequest, Conflict, NotFound, QuotaExceeded
from apps.identity import selectors as identity_selectors
from apps.identity import services as identity_services
from apps.identity.models import Project, User
from apps.identity.policy import Actor, require_admin, require_write


class NovaQuotaExceeded(QuotaExceeded):
    """Nova answers an exceeded key pair or server group quota with 403."""

    status = 403


# ---- helpers ---------------------------------------------------------------------------------

def _int(value: Any, *, field: str, minimum: int, maximum: int = 2**31 - 1) -> int:
    if isinstance(value, bool) or value is None:
        raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value}. It must be an integer.")
    if isinstance(value, str):
        if not re.fullmatch(r"\s*-?\d+\s*", value):
            raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value}. It must be an integer.")
        value = int(value)
    if not isinstance(value, int):
        raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value}. It must be an integer.")
    if value < minimum or value > maximum:
        raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value}. "
                         f"It must be between {minimum} and {maximum}.")
    return value


def _bool(value: Any, *, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false", "1", "0", "yes", "no", "on", "off"}:
        return value.lower() in {"true", "1", "yes", "on"}
    raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value}. It must be a boolean.")


def _name(value: Any, *, field: str = "name", pattern: str | None = None) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 255:
        raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value}. "
                         "It must be a non-blank string of at most 255 characters.")
    if pattern is not None and not re.fullmatch(pattern, value):
        raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value}. "
                         "It contains characters that are not allowed.")
    return value


# ---- flavors ---------------------------------------------------------------------------------

FLAVOR_ID_PATTERN = r"(?! )[a-zA-Z0-9. _-]+(?<! )"

DEFAULT_FLAVORS = (
    # each row: flavor id, name, vcpus, memory in MB, root disk in GB
    ("1", "m1.tiny", 1, 512, 1),
    ("2", "m1.small", 1, 2048, 20),
    ("3", "m1.medium", 2, 4096, 40),
    ("4", "m1.large", 4, 8192, 80),
    ("42", "m1.nano", 1, 128, 1),
)


@transaction.atomic
def flavor_create(*, actor: Actor, name: Any, ram: Any, vcpus: Any, disk: Any, flavor_id: Any = None,
                  ephemeral: Any = 0, swap: Any = 0, rxtx_factor: Any = 1.0, is_public: Any = True,
                  description: Any = None) -> Flavor:
    """Create a flavor (admin). A name or id already used is a 409."""
    require_admin(actor, action="create flavors")
    name = _name(name).strip()
    if flavor_id is None or flavor_id == "":
        flavorid = str(uuid.uuid4())
    else:
        flavorid = _name(str(flavor_id) if isinstance(flavor_id, int) and not isinstance(flavor_id, bool)
                         else flavor_id, field="id", pattern=FLAVOR_ID_PATTERN)
    try:
        factor = float(rxtx_factor)
    except (TypeError, ValueError):
        raise BadRequest(f"Invalid input for field/attribute rxtx_factor. Value: {rxtx_factor}.") from None
    if isinstance(rxtx_factor, bool) or not 0 < factor <= 3.40282e38:
        raise BadRequest(f"Invalid input for field/attribute rxtx_factor. Value: {rxtx_factor}.")
    if description is not None and (not isinstance(description, str) or len(description) > 65535):
        raise BadRequest("Invalid input for field/attribute description.")
    flavor = Flavor(
        flavorid=flavorid, name=name, memory_mb=_int(ram, field="ram", minimum=1),
        vcpus=_int(vcpus, field="vcpus", minimum=1), root_gb=_int(disk, field="disk", minimum=0),
        ephemeral_gb=_int(ephemeral, field="OS-FLV-EXT-DATA:ephemeral", minimum=0),
        swap=_int(swap if swap != "" else 0, field="swap", minimum=0), rxtx_factor=factor,
        is_public=_bool(is_public, field="os-flavor-access:is_public"), description=description or "")
    if Flavor.objects.filter(name=name).exists():
        raise Conflict(f"Flavor with name {name} already exists.")
    if Flavor.objects.filter(flavorid=flavorid).exists():
        raise Conflict(f"Flavor with ID {flavorid} already exists.")
    try:
        with transaction.atomic():
            flavor.save()
    except IntegrityError:
        raise Conflict(f"Flavor with name {name} or ID {flavorid} already exists.") from None
    events.publish(project_id=None, kind="created", resource="flavor", resource_id=flavor.flavorid)
    return flavor


@transaction.atomic
def flavor_delete(*, actor: Actor, flavor_id: str) -> None:
    require_admin(actor, action="delete flavors")
    flavor = selectors.flavor_get(actor=actor, flavor_id=flavor_id)
    flavor.delete()
    events.publish(project_id=None, kind="deleted", resource="flavor", resource_id=flavor_id)


def flavor_defaults_ensure() -> list[Flavor]:
    """The usual flavors, created once (bootstrap); an existing flavor of that name is kept."""
    flavors = []
    with transaction.atomic():
        for flavorid, name, vcpus, memory_mb, root_gb in DEFAULT_FLAVORS:
            flavor = Flavor.objects.filter(name=name).first()
            if flavor is None:
                if Flavor.objects.filter(flavorid=flavorid).exists():
                    flavorid = str(uuid.uuid4())
                flavor = Flavor.objects.create(flavorid=flavorid, name=name, vcpus=vcpus, memory_mb=memory_mb,
                                               root_gb=root_gb)
            flavors.append(flavor)
    return flavors


def _private_flavor(actor: Actor, flavor_id: str) -> Flavor:
    require_admin(actor, action="change the access of a flavor")
    return selectors.flavor_get(actor=actor, flavor_id=flavor_id)


@transaction.atomic
def flavor_access_add(*, actor: Actor, flavor_id: str, project_id: Any) -> list[FlavorAccess]:
    flavor = _private_flavor(actor, flavor_id)
    if not isinstance(project_id, str) or not project_id:
        raise BadRequest("Missing tenant parameter")
    if flavor.is_public:
        raise Conflict("Can not add access to a public flavor.")
    if not Project.objects.filter(pk=project_id).exists():
        raise BadRequest(f"Project ID {project_id} is not a valid project.")
    _, created = FlavorAccess.objects.get_or_create(flavor=flavor, project_id=project_id)
    if not created:
        raise Conflict(f"Flavor access already exists for flavor {flavor_id} and project {project_id} combination.")
    events.publish(project_id=project_id, kind="updated", resource="flavor", resource_id=flavor_id)
    return list(FlavorAccess.objects.filter(flavor=flavor).order_by("created_at", "id"))


@transaction.atomic
def flavor_access_remove(*, actor: Actor, flavor_id: str, project_id: Any) -> list[FlavorAccess]:
    flavor = _private_flavor(actor, flavor_id)
    if not isinstance(project_id, str) or not project_id:
        raise BadRequest("Missing tenant parameter")
    deleted, _ = FlavorAccess.objects.filter(flavor=flavor, project_id=project_id).delete()
    if not deleted:
        raise NotFound(f"Flavor access not found for {flavor_id} / {project_id} combination.")
    events.publish(project_id=project_id, kind="updated", resource="flavor", resource_id=flavor_id)
    return list(FlavorAccess.objects.filter(flavor=flavor).order_by("created_at", "id"))


def _spec(key: Any, value: Any) -> tuple[str, str]:
    if not isinstance(key, str) or not re.fullmatch(r"[\w.:-]{1,255}", key):
        raise BadRequest(f"Invalid extra spec key {key!r}: 1-255 letters, digits, '_', '-', '.', ':'.")
    if isinstance(value, bool):
        value = str(value).lower()
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str) or len(value) > 255:
        raise BadRequest(f"Invalid extra spec value for {key}: a string of at most 255 characters.")
    return key, value


@transaction.atomic
def flavor_extra_specs_set(*, actor: Actor, flavor_id: str, specs: Any) -> dict[str, str]:
    """Create or update extra specs (admin); returns what was set."""
    require_admin(actor, action="set flavor extra specs")
    flavor = selectors.flavor_get(actor=actor, flavor_id=flavor_id)
    if not isinstance(specs, Mapping) or not specs:
        raise BadRequest("Invalid input: extra_specs must be a non-empty object.")
    clean = dict(_spec(k, v) for k, v in specs.items())
    for key, value in clean.items():
        FlavorExtraSpec.objects.update_or_create(flavor=flavor, key=key, defaults={"value": value})
    Flavor.objects.filter(pk=flavor.pk).update(updated_at=timezone.now())
    return clean


@transaction.atomic
def flavor_extra_spec_update(*, actor: Actor, flavor_id: str, key: str, body: Any) -> dict[str, str]:
    require_admin(actor, action="set flavor extra specs")
    if not isinstance(body, Mapping) or len(body) != 1:
        raise BadRequest("Request body contains too many items: exactly one extra spec is expected.")
    if key not in body:
        raise BadRequest("Request body and URI mismatch")
    return flavor_extra_specs_set(actor=actor, flavor_id=flavor_id, specs=body)


@transaction.atomic
def flavor_extra_spec_delete(*, actor: Actor, flavor_id: str, key: str) -> None:
    require_admin(actor, action="delete flavor extra specs")
    spec = selectors.flavor_extra_spec_get(actor=actor, flavor_id=flavor_id, key=key)
    spec.delete()


# ---- key pairs -------------------------------------------------------------------------------

KEYPAIR_NAME_PATTERN = r"[a-zA-Z0-9 _-]+"


def keypair_fingerprint(public_key: str) -> str:
    """Validate an OpenSSH public key (ssh-rsa, ssh-ed25519, ecdsa-sha2-*) and return Nova's
    fingerprint: the MD5 of the key blob, as colon-separated hex."""
    try:
        key = serialization.load_ssh_public_key(public_key.strip().encode("utf-8"))
        blob = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        raw = base64.b64decode(blob.split()[1])
    except (ValueError, IndexError, UnicodeError, TypeError, UnsupportedAlgorithm) as exc:
        raise BadRequest(f"Keypair data is invalid: failed to generate fingerprint ({exc}).") from None
    digest = hashlib.md5(raw, usedforsecurity=False).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, 32, 2))


def _generate_ssh_key() -> tuple[str, str]:
    """A new RSA key: (private key PEM, OpenSSH public key)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                               serialization.PublicFormat.OpenSSH).decode()
    return pem, f"{public} Generated-by-Stratus"


def _keypair_events_project(actor: Actor, owner_id: str) -> str | None:
    """Where a key pair's event goes: the project the owner works in; an admin's change to another
    user's key goes to the admins only (the admin's project is not the owner's)."""
    return actor.project_id if owner_id == actor.user_id else None


def keypair_create(*, actor: Actor, name: Any, public_key: Any = None, key_type: Any = KeyPair.TYPE_SSH,
                   user_id: str | None = None) -> tuple[KeyPair, str | None]:
    """Import ``public_key``, or generate a key pair and return its private key (once, never
    stored). Counted against the key_pairs quota of the owner (per user, as Nova does)."""
    name = _name(name, pattern=KEYPAIR_NAME_PATTERN)
    if key_type != KeyPair.TYPE_SSH:
        raise BadRequest(f"Invalid input for field/attribute type. Value: {key_type}. Only 'ssh' is supported.")
    owner_id = actor.user_id
    if user_id and user_id != actor.user_id:
        require_admin(actor, action="create key pairs for other users")
        owner_id = user_id
    if actor.project_id is None:
        raise BadRequest("A project-scoped token is needed to create a key pair.")
    require_write(actor, actor.project_id, what="key pair")
    private_key = None
    if public_key is None:
        private_key, public_key = _generate_ssh_key()
    elif not isinstance(public_key, str) or not public_key.strip():
        raise BadRequest("Keypair data is invalid: public_key must be a non-empty string.")
    fingerprint = keypair_fingerprint(public_key)
    with transaction.atomic():
        owner = User.objects.select_for_update().filter(pk=owner_id).first()
        if owner is None:
            raise NotFound(f"User {owner_id} could not be found.")
        limit = identity_selectors.quota_limits(project=Project(id=actor.project_id)).get("key_pairs", -1)
        used = selectors.keypair_count(user_id=owner_id)
        if limit >= 0 and used + 1 > limit:
            raise NovaQuotaExceeded("Quota exceeded, too many key pairs.", resource="key_pairs", limit=limit,
                                    in_use=used, requested=1)
        if KeyPair.objects.filter(user_id=owner_id, name=name).exists():
            raise Conflict(f"Key pair '{name}' already exists.")
        keypair = KeyPair.objects.create(user_id=owner_id, name=name, type=KeyPair.TYPE_SSH,
                                         public_key=public_key.strip(), fingerprint=fingerprint)
        events.publish(project_id=_keypair_events_project(actor, owner_id), kind="created", resource="keypair",
                       resource_id=name)
    return keypair, private_key


@transaction.atomic
def keypair_delete(*, actor: Actor, name: str, user_id: str | None = None) -> None:
    keypair = selectors.keypair_get(actor=actor, name=name, user_id=user_id)
    if actor.project_id is not None and not actor.is_admin:
        require_write(actor, actor.project_id, what="key pair")
    keypair.delete()
    events.publish(project_id=_keypair_events_project(actor, keypair.user_id), kind="deleted", resource="keypair",
                   resource_id=name)


# ---- server groups ---------------------------------------------------------------------------

@transaction.atomic
def server_group_create(*, actor: Actor, name: Any, policy: Any, rules: Any = None) -> ServerGroup:
    """A server group with one policy, counted against the project's server_groups quota."""
    name = _name(name)
    if policy not in ServerGroup.POLICIES:
        raise BadRequest(f"Invalid input for field/attribute policies. Value: {policy}. "
                         f"It must be one of {', '.join(ServerGroup.POLICIES)}.")
    rules = rules if rules is not None else {}
    if not isinstance(rules, Mapping):
        raise BadRequest("Invalid input for field/attribute rules: an object is expected.")
    if rules:
        if policy != "anti-affinity" or set(rules) - {"max_server_per_host"}:
            raise BadRequest("Only the anti-affinity policy accepts the rule max_server_per_host.")
        rules = {"max_server_per_host": _int(rules["max_server_per_host"], field="max_server_per_host",
                                              minimum=1)}
    if actor.project_id is None:
        raise BadRequest("A project-scoped token is needed to create a server group.")
    require_write(actor, actor.project_id, what="server group")
    try:
        identity_services.quota_reserve(project_id=actor.project_id, deltas={"server_groups": 1})
    except QuotaExceeded as exc:
        raise NovaQuotaExceeded("Quota exceeded, too many server groups.", resource=exc.resource, limit=exc.limit,
                                in_use=exc.in_use, requested=exc.requested) from None
    group = ServerGroup.objects.create(name=name, project_id=actor.project_id, user_id=actor.user_id,
                                       policy=policy, rules=dict(rules))
    events.publish(project_id=actor.project_id, kind="created", resource="server_group", resource_id=group.id)
    return group


@transaction.atomic
def server_group_delete(*, actor: Actor, group_id: str) -> None:
    group = selectors.server_group_get(actor=actor, group_id=group_id)
    require_write(actor, group.project_id, what=f"instance group {group_id}")
    identity_services.quota_release(project_id=group.project_id, deltas={"server_groups": 1})
    group.delete()
    events.publish(project_id=group.project_id, kind="deleted", resource="server_group", resource_id=group_id)


# ---- quotas ----------------------------------------------------------------------------------

def quota_update(*, actor: Actor, project_id: str, limits: Mapping[str, Any], resource_map: Mapping[str, str],
                 force: bool = False) -> dict[str, int]:
    """Set a project's compute limits (admin), given by Nova's names (``resource_map``: Nova key →
    registered resource). Unknown keys are a 400, nothing changed."""
    require_admin(actor, action="update quotas")
    unknown = set(limits) - set(resource_map)
    if unknown:
        raise BadRequest(f"Invalid input for field/attribute quota_set. Additional properties are not allowed "
                         f"({', '.join(sorted(unknown))} were unexpected)")
    return identity_services.quota_set(actor=actor, project_id=project_id, force=force,
                                       limits={resource_map[k]: v for k, v in limits.items()})


def quota_defaults_update(*, actor: Actor, class_name: str, limits: Mapping[str, Any],
                          resource_map: Mapping[str, str]) -> dict[str, int]:
    """Change the default limits (Nova's quota class ``default``; admin)."""
    require_admin(actor, action="update quota classes")
    if class_name != "default":
        raise BadRequest("Only the 'default' quota class is supported.")
    unknown = set(limits) - set(resource_map)
    if unknown:
        raise BadRequest(f"Invalid input for field/attribute quota_class_set. Additional properties are not allowed "
                         f"({', '.join(sorted(unknown))} were unexpected)")
    clean = {}
    for key, value in limits.items():
        clean[resource_map[key]] = _int(value, field=key, minimum=-1)
    return identity_services.quota_default_set(actor=actor, limits=clean)


def quota_revert(*, actor: Actor, project_id: str) -> None:
    """os-quota-sets DELETE: the project's compute limits (only Nova's own) back to the defaults."""
    from apps.identity import quotas

    identity_services.quota_delete(actor=actor, project_id=project_id, resources=quotas.service_resources("compute"))
