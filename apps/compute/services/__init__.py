"""Every write of the compute app: validation, policy, quota, transactions."""
from __future__ import annotations

import base64
import hashlib
import re
import uuid
from collections.abc import Mapping
from datetime import timedelta

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
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

def _name(value: str, *, field: str = "name", pattern: str | None = None) -> str:
    """A name or id of at most 255 characters, not blank, of the characters ``pattern`` allows."""
    if not value.strip() or len(value) > 255:
        raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value}. "
                         "It must be a non-blank string of at most 255 characters.")
    if pattern is not None and not re.fullmatch(pattern, value):
        raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value}. "
                         "It contains characters that are not allowed.")
    return value


# ---- flavors ---------------------------------------------------------------------------------

FLAVOR_ID_PATTERN = r"(?! )[a-zA-Z0-9. _-]+(?<! )"
EXTRA_SPEC_KEY_PATTERN = r"[\w.:-]{1,255}"

DEFAULT_FLAVORS = (
    # each row: flavor id, name, vcpus, memory in MB, root disk in GB
    ("1", "m1.tiny", 1, 512, 1),
    ("2", "m1.small", 1, 2048, 20),
    ("3", "m1.medium", 2, 4096, 40),
    ("4", "m1.large", 4, 8192, 80),
    ("42", "m1.nano", 1, 128, 1),
)


@transaction.atomic
def flavor_create(*, actor: Actor, name: str, ram: int, vcpus: int, disk: int, flavor_id: str | None = None,
                  ephemeral: int = 0, swap: int = 0, rxtx_factor: float = 1.0, is_public: bool = True) -> Flavor:
    """Create a flavor (admin; a UUID for its id when none is given). A name or id already used is a 409."""
    require_admin(actor, action="create flavors")
    name = _name(name).strip()
    flavorid = _name(flavor_id, field="id", pattern=FLAVOR_ID_PATTERN) if flavor_id else str(uuid.uuid4())
    flavor = Flavor(flavorid=flavorid, name=name, memory_mb=ram, vcpus=vcpus, root_gb=disk, ephemeral_gb=ephemeral,
                    swap=swap, rxtx_factor=rxtx_factor, is_public=is_public)
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


MAX_FLAVOR_DESCRIPTION = 65535  # Nova's (2.55)


@transaction.atomic
def flavor_update(*, actor: Actor, flavor_id: str, description: str) -> Flavor:
    """Change a flavor's description (admin), the one thing Nova lets change (2.55): its name, sizes and
    id are fixed once created (a new flavor, then a resize, changes them)."""
    require_admin(actor, action="update flavors")
    flavor = selectors.flavor_get(actor=actor, flavor_id=flavor_id)
    if len(description) > MAX_FLAVOR_DESCRIPTION or not all(c.isprintable() or c in "\n\t" for c in description):
        raise BadRequest(f"Invalid input for field/attribute description: printable characters, at most "
                         f"{MAX_FLAVOR_DESCRIPTION}.")
    flavor.description = description
    flavor.save(update_fields=["description", "updated_at"])
    events.publish(project_id=None, kind="updated", resource="flavor", resource_id=flavor.flavorid)
    return flavor


def _private_flavor(actor: Actor, flavor_id: str) -> Flavor:
    require_admin(actor, action="change the access of a flavor")
    return selectors.flavor_get(actor=actor, flavor_id=flavor_id)


@transaction.atomic
def flavor_access_add(*, actor: Actor, flavor_id: str, project_id: str,
                      refuse_public: bool = True) -> list[FlavorAccess]:
    """Grant ``project_id`` a flavor. A public flavor is refused (409), unless ``refuse_public`` is
    False (Nova before microversion 2.7 recorded the grant, which changes nothing for a public one)."""
    flavor = _private_flavor(actor, flavor_id)
    if flavor.is_public and refuse_public:
        raise Conflict("Can not add access to a public flavor.")
    if not Project.objects.filter(pk=project_id).exists():
        raise BadRequest(f"Project ID {project_id} is not a valid project.")
    _, created = FlavorAccess.objects.get_or_create(flavor=flavor, project_id=project_id)
    if not created:
        raise Conflict(f"Flavor access already exists for flavor {flavor_id} and project {project_id} combination.")
    events.publish(project_id=project_id, kind="updated", resource="flavor", resource_id=flavor_id)
    return list(FlavorAccess.objects.filter(flavor=flavor).order_by("created_at", "id"))


@transaction.atomic
def flavor_access_remove(*, actor: Actor, flavor_id: str, project_id: str) -> list[FlavorAccess]:
    flavor = _private_flavor(actor, flavor_id)
    deleted, _ = FlavorAccess.objects.filter(flavor=flavor, project_id=project_id).delete()
    if not deleted:
        raise NotFound(f"Flavor access not found for {flavor_id} / {project_id} combination.")
    events.publish(project_id=project_id, kind="updated", resource="flavor", resource_id=flavor_id)
    return list(FlavorAccess.objects.filter(flavor=flavor).order_by("created_at", "id"))


@transaction.atomic
def flavor_extra_specs_set(*, actor: Actor, flavor_id: str, specs: Mapping[str, str]) -> dict[str, str]:
    """Create or update extra specs (admin); returns what was set."""
    require_admin(actor, action="set flavor extra specs")
    flavor = selectors.flavor_get(actor=actor, flavor_id=flavor_id)
    clean = dict(specs)
    for key, value in clean.items():
        if not re.fullmatch(EXTRA_SPEC_KEY_PATTERN, key):
            raise BadRequest(f"Invalid extra spec key {key!r}: 1-255 letters, digits, '_', '-', '.', ':'.")
        if len(value) > 255:
            raise BadRequest(f"Invalid extra spec value for {key}: a string of at most 255 characters.")
    for key, value in clean.items():
        FlavorExtraSpec.objects.update_or_create(flavor=flavor, key=key, defaults={"value": value})
    Flavor.objects.filter(pk=flavor.pk).update(updated_at=timezone.now())
    return clean


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


def x509_fingerprint(certificate: str) -> str:
    """Validate a PEM X.509 certificate (an ``x509`` key pair, microversion 2.2) and return Nova's
    fingerprint for it: the SHA-1 of the DER certificate, as colon-separated hex."""
    try:
        cert = x509.load_pem_x509_certificate(certificate.strip().encode("utf-8"))
    except (ValueError, UnicodeError, TypeError) as exc:
        raise BadRequest(f"Keypair data is invalid: failed to generate fingerprint ({exc}).") from None
    digest = cert.fingerprint(hashes.SHA1()).hex()
    return ":".join(digest[i:i + 2] for i in range(0, 40, 2))


def _generate_x509_cert(user_id: str) -> tuple[str, str]:
    """A new self-signed client certificate for ``user_id`` (what Nova generates for an ``x509`` key
    pair, used for WinRM): (private key PEM, certificate PEM), valid ten years."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user_id)])
    now = timezone.now()
    upn = f"{user_id}@localhost".encode()  # a DER UTF8String (user ids are at most 64 characters)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(private.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.OtherName(
                x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3"),  # Microsoft UPN, as WinRM expects
                b"\x0c" + bytes([len(upn)]) + upn)]), critical=False)
            .sign(private, hashes.SHA256()))
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    return pem, cert.public_bytes(serialization.Encoding.PEM).decode()


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


def keypair_create(*, actor: Actor, name: str, public_key: str | None = None, key_type: str = KeyPair.TYPE_SSH,
                   user_id: str | None = None) -> tuple[KeyPair, str | None]:
    """Import ``public_key`` (an OpenSSH public key, or for ``key_type`` x509 a PEM certificate), or
    generate a key pair and return its private key (once, never stored). Counted against the
    key_pairs quota of the owner (per user, as Nova does)."""
    name = _name(name, pattern=KEYPAIR_NAME_PATTERN)
    if key_type not in (KeyPair.TYPE_SSH, KeyPair.TYPE_X509):
        raise BadRequest(f"Invalid input for field/attribute type. Value: {key_type}. It must be ssh or x509.")
    owner_id = actor.user_id
    if user_id and user_id != actor.user_id:
        require_admin(actor, action="create key pairs for other users")
        owner_id = user_id
    if actor.project_id is None:
        raise BadRequest("A project-scoped token is needed to create a key pair.")
    require_write(actor, actor.project_id, what="key pair")
    private_key = None
    if public_key is None:
        private_key, public_key = (_generate_x509_cert(owner_id) if key_type == KeyPair.TYPE_X509
                                   else _generate_ssh_key())
    fingerprint = x509_fingerprint(public_key) if key_type == KeyPair.TYPE_X509 else keypair_fingerprint(public_key)
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
        keypair = KeyPair.objects.create(user_id=owner_id, name=name, type=key_type,
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
def server_group_create(*, actor: Actor, name: str, policy: str) -> ServerGroup:
    """A server group with one policy (of ``ServerGroup.POLICIES``), counted against the project's
    server_groups quota."""
    if actor.project_id is None:
        raise BadRequest("A project-scoped token is needed to create a server group.")
    require_write(actor, actor.project_id, what="server group")
    try:
        identity_services.quota_reserve(project_id=actor.project_id, deltas={"server_groups": 1})
    except QuotaExceeded as exc:
        raise NovaQuotaExceeded("Quota exceeded, too many server groups.", resource=exc.resource, limit=exc.limit,
                                in_use=exc.in_use, requested=exc.requested) from None
    group = ServerGroup.objects.create(name=name, project_id=actor.project_id, user_id=actor.user_id,
                                       policy=policy)
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

def quota_update(*, actor: Actor, project_id: str, limits: Mapping[str, int], force: bool = False) -> dict[str, int]:
    """Set a project's compute limits (admin), by resource name."""
    require_admin(actor, action="update quotas")
    return identity_services.quota_set(actor=actor, project_id=project_id, force=force, limits=dict(limits))


def quota_defaults_update(*, actor: Actor, class_name: str, limits: Mapping[str, int]) -> dict[str, int]:
    """Change the default limits (Nova's quota class ``default``; admin), by resource name."""
    require_admin(actor, action="update quota classes")
    if class_name != "default":
        raise BadRequest("Only the 'default' quota class is supported.")
    return identity_services.quota_default_set(actor=actor, limits=dict(limits))


def quota_revert(*, actor: Actor, project_id: str) -> None:
    """os-quota-sets DELETE: the project's compute limits (only Nova's own) back to the defaults."""
    from apps.identity import quotas

    identity_services.quota_delete(actor=actor, project_id=project_id, resources=quotas.service_resources("compute"))
