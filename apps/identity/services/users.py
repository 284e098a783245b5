"""Users (and their passwords) and groups."""
from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group as AuthGroup
from django.db import transaction
from django.utils import timezone

from apps.core import events
from apps.core.errors import BadRequest, Forbidden, NotFound
from apps.core.validators import UNSET, Unset, assign
from apps.identity import selectors
from apps.identity.models import Group, Project, Token, User
from apps.identity.policy import Actor, require_admin
from apps.identity.services._common import (
    _default_domain_for,
    _duplicate,
    _name,
    _save_unique,
)
from apps.identity.services.admins import admins_kept
from apps.identity.services.roles import _revoke_tokens_without_roles, role_grant
from apps.identity.services.tokens import password_authenticate

# ---- users ----------------------------------------------------------------------------------

def _password(password: str) -> str:
    """A password's hash; a password is a non-empty string of at most 4096 characters."""
    if not password:
        raise BadRequest("Invalid input for field 'password': a password must be a non-empty string.")
    if len(password) > 4096:
        raise BadRequest("Invalid input for field 'password': too long.")
    return make_password(password)


def _default_project(project_id: str) -> Project | None:
    """The project a user lands in ("": none)."""
    if not project_id:
        return None
    project = Project.objects.filter(id=project_id).first()
    if project is None:
        raise NotFound(f"Could not find project: {project_id}.")
    return project


@transaction.atomic
def user_create(*, actor: Actor, name: str, domain_id: str | None = None, password: str | None = None,
                enabled: bool = True, default_project_id: str | None = None, email: str = "",
                description: str = "", extra: Mapping[str, Any] | None = None,
                options: Mapping[str, Any] | None = None, default_project_role_id: str | None = None) -> User:
    """A user; with ``default_project_role_id``, also granted that role on its default project, in
    the same transaction (a user whose role could not be granted is not left behind)."""
    require_admin(actor, action="create users")
    domain = selectors.domain_get(domain_id=domain_id or _default_domain_for(actor))
    user = User(name=_name(name), domain=domain, enabled=enabled, email=email,
                description=description, extra=dict(extra or {}), options=dict(options or {}),
                default_project=_default_project(default_project_id or ""))
    if password is not None:
        user.password = _password(password)
    else:
        user.set_unusable_password()
    _save_unique(user, "user", f"domain ID {domain.id}")
    events.publish(project_id=None, kind="created", resource="user", resource_id=user.id, data={"name": user.name})
    if default_project_role_id:
        if user.default_project_id is None:
            raise BadRequest("A role is granted on the user's default project: give one.")
        role_grant(actor=actor, role_id=default_project_role_id, user_id=user.id, project_id=user.default_project_id)
    return user


@transaction.atomic
def user_update(*, actor: Actor, user_id: str, name: str | Unset = UNSET, enabled: bool | Unset = UNSET,
                email: str | Unset = UNSET, description: str | Unset = UNSET, default_project_id: str | Unset = UNSET,
                password: str | Unset = UNSET, options: Mapping[str, Any] | None = None,
                extra: Mapping[str, Any] | None = None, domain_id: str | Unset = UNSET) -> User:
    """Change what is given (UNSET: unchanged; ``default_project_id=""`` clears it). ``options`` and
    ``extra`` are merged into the user's; a new password or disabling revokes the user's tokens; a
    ``domain_id`` other than the user's is refused."""
    require_admin(actor, action="update users")
    user = selectors.user_get(user_id=user_id)
    revoke = False
    if domain_id is not UNSET and domain_id != user.domain_id:
        raise BadRequest("Cannot change the domain of a user.")
    assign(user, name=_name(name), enabled=enabled, email=email, description=description)
    if enabled is not UNSET:
        revoke = not enabled
        if enabled:  # Keystone: enabling a user is how an admin unlocks it (lockout)
            user.failed_auth_count, user.failed_auth_at = 0, None
    if default_project_id is not UNSET:
        user.default_project = _default_project(default_project_id)
    if password is not UNSET:
        user.password = _password(password)
        user.password_changed_at = timezone.now()
        revoke = True
    user.options.update(options or {})
    user.extra.update(extra or {})
    with admins_kept(actor=actor, doing="disable", applies=enabled is False):
        _save_unique(user, "user", f"domain ID {user.domain_id}")
    if revoke:
        _revoke_user_tokens(user, keep_app_creds=user.enabled)
    if not user.enabled:
        events.access_changed(user_id=user.id)
    events.publish(project_id=None, kind="updated", resource="user", resource_id=user.id,
                   data={"name": user.name, "enabled": user.enabled})
    return user


def _revoke_user_tokens(user: User, *, keep_app_creds: bool) -> None:
    tokens = Token.objects.filter(user=user)
    if keep_app_creds:
        tokens = tokens.filter(application_credential__isnull=True)
    tokens.delete()


def user_change_password(*, actor: Actor | None, user_id: str, original_password: str, password: str) -> User:
    """Self-service password change (POST /users/{id}/password, the dashboard's Settings): proves the
    old one as a sign-in does (``password_authenticate``: one hash whatever the outcome, a wrong one
    counts towards the lockout, a locked or disabled user is refused), so guessing through it is no
    easier than guessing at sign-in. Without an actor (the API call needs no token) an unknown user is
    refused like a wrong password. Call it outside a transaction (the failure count must stay); the
    user's tokens are revoked (application credentials stay)."""
    if actor is not None:
        selectors.user_get(user_id=user_id)
        if actor.user_id != user_id:
            raise Forbidden("You can only change your own password.")
    hashed = _password(password)
    user = password_authenticate(user_ref={"id": user_id}, password=original_password or "")
    with transaction.atomic():
        user.password = hashed
        user.password_changed_at = timezone.now()
        user.save(update_fields=["password", "password_changed_at", "updated_at"])
        _revoke_user_tokens(user, keep_app_creds=True)
    return user


@transaction.atomic
def user_delete(*, actor: Actor, user_id: str) -> None:
    require_admin(actor, action="delete users")
    user = selectors.user_get(user_id=user_id)
    with admins_kept(actor=actor, doing="delete"):
        user.delete()  # cascades: tokens, assignments, application credentials
    events.access_changed(user_id=user_id)
    events.publish(project_id=None, kind="deleted", resource="user", resource_id=user_id)


# ---- groups ---------------------------------------------------------------------------------

@transaction.atomic
def group_create(*, actor: Actor, name: str, domain_id: str | None = None, description: str = "") -> Group:
    require_admin(actor, action="create groups")
    domain = selectors.domain_get(domain_id=domain_id or _default_domain_for(actor))
    group_id = uuid.uuid4().hex
    group = Group(id=group_id, name=_name(name), domain=domain, description=description)
    if Group.objects.filter(domain=domain, name=group.name).exists():
        raise _duplicate("group", group.name, f"domain ID {domain.id}")
    group.auth_group = AuthGroup.objects.create(name=f"keystone-group:{group_id}")
    _save_unique(group, "group", f"domain ID {domain.id}")
    return group


@transaction.atomic
def group_update(*, actor: Actor, group_id: str, name: str | Unset = UNSET, description: str | Unset = UNSET,
                 domain_id: str | Unset = UNSET) -> Group:
    """Change what is given (UNSET: unchanged); a ``domain_id`` other than the group's is refused."""
    require_admin(actor, action="update groups")
    group = selectors.group_get(group_id=group_id)
    if domain_id is not UNSET and domain_id != group.domain_id:
        raise BadRequest("Cannot change the domain of a group.")
    assign(group, name=_name(name), description=description)
    _save_unique(group, "group", f"domain ID {group.domain_id}")
    return group


@transaction.atomic
def group_delete(*, actor: Actor, group_id: str) -> None:
    require_admin(actor, action="delete groups")
    group = selectors.group_get(group_id=group_id)
    members = list(group.auth_group.user_set.all())
    projects = set(group.assignments.exclude(project=None).values_list("project_id", flat=True))
    auth_group = group.auth_group
    with admins_kept(actor=actor, doing="remove the admin role from"):
        group.delete()
        auth_group.delete()  # guardian's group permissions go with it
    for user in members:
        _revoke_tokens_without_roles(user, projects)


@transaction.atomic
def group_add_user(*, actor: Actor, group_id: str, user_id: str) -> None:
    require_admin(actor, action="change group membership")
    group = selectors.group_get(group_id=group_id)
    user = selectors.user_get(user_id=user_id)
    group.auth_group.user_set.add(user)


@transaction.atomic
def group_remove_user(*, actor: Actor, group_id: str, user_id: str) -> None:
    require_admin(actor, action="change group membership")
    group = selectors.group_get(group_id=group_id)
    user = selectors.user_get(user_id=user_id)
    if not group.auth_group.user_set.filter(pk=user.pk).exists():
        raise NotFound(f"Could not find user {user_id} in group {group_id}.")
    with admins_kept(actor=actor, doing="remove the admin role from"):
        group.auth_group.user_set.remove(user)
    projects = set(group.assignments.exclude(project=None).values_list("project_id", flat=True))
    _revoke_tokens_without_roles(user, projects)
