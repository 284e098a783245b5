"""Keystone's credentials (/v3/credentials) and their EC2 view (/v3/users/{id}/credentials/OS-EC2),
and the authentication of a request signed with an EC2 credential (the S3 face).

Policy, as Keystone's: a user manages their own credentials, an admin everyone's; a restricted
application credential manages none. A credential names a project only where its user holds a
role, and an EC2 credential must name one (the project its signed requests act in)."""
from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction

from apps.core.errors import BadRequest, Conflict, Forbidden, Unauthorized
from apps.core.models import new_id
from apps.core.validators import UNSET, Unset
from apps.identity import selectors, token_cache
from apps.identity.crypto import ec2_credential_id, encrypt
from apps.identity.models import Credential, Project, User
from apps.identity.policy import Actor, require_self_or_admin

EC2 = "ec2"


class UnknownAccessKey(Unauthorized):
    """No EC2 credential has this access key (or its user, project or roles are gone)."""


class SignatureMismatch(Unauthorized):
    """The request's signature is not the one the credential's secret makes."""


def _unrestricted(actor: Actor, action: str) -> None:
    if actor.application_credential is not None and not actor.application_credential.unrestricted:
        raise Forbidden(f"A restricted application credential cannot {action} credentials.")


def _user(actor: Actor, user_id: str, action: str) -> User:
    require_self_or_admin(actor, user_id, action=f"{action} credentials of another user")
    return selectors.user_get(user_id=user_id)


def _project(user: User, project_id: str) -> Project:
    """A project ``user`` holds a role on (directly or by a group), else a 400 naming it."""
    project = selectors.user_projects(user=user).filter(id=project_id).first()
    if project is None:
        raise BadRequest(f"Invalid input for field 'project_id': user {user.id} holds no role on project "
                         f"{project_id}.")
    return project


def _ec2_access(blob: str) -> str:
    """The access key of an EC2 blob (a JSON object with ``access`` and ``secret`` strings)."""
    try:
        data = json.loads(blob)
    except ValueError:
        raise BadRequest("Invalid input for field 'blob': an ec2 credential's blob is a JSON object.") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) and data[k] for k in ("access", "secret")):
        raise BadRequest("Invalid input for field 'blob': an ec2 credential's blob holds 'access' and 'secret' "
                         "strings.")
    return data["access"]


def _save(cred: Credential, *, insert: bool) -> None:
    try:
        with transaction.atomic():
            cred.save(force_insert=insert)
    except IntegrityError:
        raise Conflict(f"Conflict occurred attempting to store credential - Duplicate entry found with ID "
                       f"{cred.id}.") from None


@transaction.atomic
def credential_create(*, actor: Actor, user_id: str, type: str, blob: str, project_id: str = "") -> Credential:
    """Store a credential of ``type`` for ``user_id`` (the caller, or anyone for an admin). An EC2
    credential's id is the SHA-256 of its access key; a second one with the same key is a 409."""
    _unrestricted(actor, "create")
    user = _user(actor, user_id, "create")
    if not type.strip():
        raise BadRequest("Invalid input for field 'type': a credential has a type.")
    project = _project(user, project_id) if project_id else None
    if type == EC2:
        if project is None:
            raise BadRequest("Invalid input for field 'project_id': an ec2 credential names its project.")
        cred_id = ec2_credential_id(_ec2_access(blob))
    else:
        cred_id = new_id()
    cred = Credential(id=cred_id, user=user, project=project, type=type, encrypted_blob=encrypt(blob))
    _save(cred, insert=True)
    return cred


@transaction.atomic
def credential_update(*, actor: Actor, credential_id: str, user_id: str | Unset = UNSET,
                      project_id: str | Unset = UNSET, type: str | Unset = UNSET,
                      blob: str | Unset = UNSET) -> Credential:
    """Change a credential (one's own; anyone's for an admin). It cannot be given to another user by
    a non-admin, and an EC2 credential keeps the access key its id is made from."""
    _unrestricted(actor, "update")
    cred = selectors.credential_get(actor=actor, credential_id=credential_id)
    cred = Credential.objects.select_for_update().select_related("user").get(pk=cred.pk)
    if user_id is not UNSET and user_id != cred.user_id:
        cred.user = _user(actor, user_id, "move")
    if type is not UNSET:
        if not type.strip():
            raise BadRequest("Invalid input for field 'type': a credential has a type.")
        cred.type = type
    if project_id is not UNSET:
        cred.project = _project(cred.user, project_id) if project_id else None
    elif user_id is not UNSET and cred.project_id is not None:
        cred.project = _project(cred.user, cred.project_id)
    plain = blob if blob is not UNSET else cred.blob
    if cred.type == EC2:
        if cred.project is None:
            raise BadRequest("Invalid input for field 'project_id': an ec2 credential names its project.")
        if ec2_credential_id(_ec2_access(plain)) != cred.id:
            raise BadRequest("Invalid input for field 'blob': an ec2 credential keeps its access key (its id is "
                             "made from it).")
    if blob is not UNSET:
        cred.encrypted_blob = encrypt(blob)
    _save(cred, insert=False)
    return cred


@transaction.atomic
def credential_delete(*, actor: Actor, credential_id: str) -> None:
    _unrestricted(actor, "delete")
    selectors.credential_get(actor=actor, credential_id=credential_id).delete()


# ---- OS-EC2 ---------------------------------------------------------------------------------------

@transaction.atomic
def ec2_credential_create(*, actor: Actor, user_id: str, project_id: str) -> Credential:
    """A new EC2 key pair (access and secret made here) for ``user_id`` in ``project_id``."""
    blob = json.dumps({"access": secrets.token_hex(16), "secret": secrets.token_hex(16), "trust_id": None})
    return credential_create(actor=actor, user_id=user_id, type=EC2, blob=blob, project_id=project_id)


@transaction.atomic
def ec2_credential_delete(*, actor: Actor, user_id: str, access: str) -> None:
    _unrestricted(actor, "delete")
    selectors.ec2_credential_get(actor=actor, user_id=user_id, access=access).delete()


def ec2_blob(cred: Credential) -> dict[str, Any]:
    """An EC2 credential's blob as an object ({} when unreadable)."""
    try:
        data = json.loads(cred.blob or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def ec2_authenticate(*, access: str, check: Callable[[str], bool]) -> Actor:
    """The caller a request signed with the EC2 key ``access`` acts as: its user in its project with
    the roles the user holds there now. ``check(secret)`` says whether the request's signature is the
    one the secret makes (the signature's rules are the caller's: apps/objects/s3/sigv4.py).
    UnknownAccessKey when no usable credential has the key (its user or project disabled, no role
    left), SignatureMismatch when ``check`` refuses. What a key authenticated to is kept in each worker
    until anything identity changes (token_cache: the identity epoch); the signature is checked each time."""
    epoch = token_cache.current_epoch()
    cached = token_cache.ec2_get(access, epoch)
    if cached is not None:
        if not check(cached[0]):
            raise SignatureMismatch("The request signature we calculated does not match the signature you provided.")
        return cached[1]
    cred = (Credential.objects.select_related("user", "user__domain", "project", "project__domain")
            .filter(pk=ec2_credential_id(access), type=EC2).first())
    if cred is None or cred.project is None:
        raise UnknownAccessKey("The AWS access key Id you provided does not exist in our records.")
    user, project = cred.user, cred.project
    if not (user.enabled and user.domain.enabled and project.enabled and project.domain.enabled):
        raise UnknownAccessKey("The AWS access key Id you provided does not exist in our records.")
    secret = ec2_blob(cred).get("secret")
    if not isinstance(secret, str) or not secret:
        raise UnknownAccessKey("The AWS access key Id you provided does not exist in our records.")
    if not check(secret):
        raise SignatureMismatch("The request signature we calculated does not match the signature you provided.")
    roles = selectors.effective_roles(user, project=project)
    if not roles:
        raise UnknownAccessKey("The AWS access key Id you provided does not exist in our records.")
    actor = Actor(user=user, project=project, roles=frozenset(r.name for r in roles),
                  role_ids=frozenset(r.id for r in roles), role_refs=tuple((r.id, r.name) for r in roles))
    token_cache.ec2_put(access, epoch, secret, actor)
    return actor
