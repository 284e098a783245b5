"""Every write to identity data: validation, policy, state, guardian permissions, events, quotas.

Services are keyword-only. They raise apps.core.errors exceptions; each API renders them in its
own format. The dashboard and the Keystone API call exactly these functions.
"""
from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.contrib.auth.models import Group as AuthGroup
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Greatest
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from apps.core import events
from apps.core.errors import BadRequest, Conflict, Forbidden, NotFound, QuotaExceeded, Unauthorized
from apps.identity import quotas, selectors, signals
from apps.identity.models import (
    DEFAULT_DOMAIN_ID,
    PERM_ADMIN,
    PERM_READ,
    PERM_WRITE,
    ApplicationCredential,
    Domain,
    Endpoint,
    Group,
    ImpliedRole,
    Project,
    QuotaDefault,
    QuotaLimit,
    QuotaUsage,
    Region,
    Role,
    RoleAssignment,
    Service,
    Token,
    User,
)
from apps.identity.policy import Actor, require_admin, require_self_or_admin, require_write

UNAUTHENTICATED = "The request you have made requires authentication."

# What each well-known role lets its holder do on a project (any other role: read).
ROLE_PERMS: dict[str, set[str]] = {
    "reader": {PERM_READ},
    "member": {PERM_READ, PERM_WRITE},
    "admin": {PERM_READ, PERM_WRITE, PERM_ADMIN},
}


# ---- validation helpers ---------------------------------------------------------------------

def _name(value: Any, *, what: str, max_length: int = 255) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"Invalid input for field 'name': a {what} needs a non-empty name.")
    if len(value) > max_length:
        raise BadRequest(f"Invalid input for field 'name': '{value[:20]}...' is too long (max {max_length}).")
    return value


def _bool(value: Any, *, field: str) -> bool:
    if isinstance(value, bool):
        return value
    raise BadRequest(f"Invalid input for field '{field}': {value!r} is not of type 'boolean'.")


def _text(value: Any, *, field: str, max_length: int | None = None) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"Invalid input for field '{field}': {value!r} is not of type 'string'.")
    if max_length is not None and len(value) > max_length:
        raise BadRequest(f"Invalid input for field '{field}': '{value[:20]}...' is too long (max {max_length}).")
    return value


def _options(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise BadRequest(f"Invalid input for field 'options': {value!r} is not of type 'object'.")
    return dict(value)


MAX_TAGS = 80


def _tag(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 255 or "/" in value or "," in value:
        raise BadRequest(f"Invalid input for field 'tags': {value!r} is not a valid tag (a non-empty string of "
                         "at most 255 characters without '/' or ',').")
    return value


def _tags(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise BadRequest("Invalid input for field 'tags': must be a list of strings.")
    tags = list(dict.fromkeys(_tag(v) for v in value))
    if len(tags) > MAX_TAGS:
        raise BadRequest(f"Invalid input for field 'tags': at most {MAX_TAGS} tags.")
    return tags


def _duplicate(what: str, name: str, where: str) -> Conflict:
    return Conflict(f"Conflict occurred attempting to store {what} - Duplicate entry found with name "
                    f"{name} at {where}.")


def _save_unique(obj: Any, what: str, where: str) -> None:
    try:
        with transaction.atomic():
            obj.save()
    except IntegrityError:
        raise _duplicate(what, getattr(obj, "name", str(obj.pk)), where) from None


def _role_graph_changed() -> None:
    """Roles or inference rules changed: drop the cached role graph now (so this transaction reads
    its own changes) and again once it commits (so no reader keeps what it saw before)."""
    cache.delete(selectors.ROLE_GRAPH_KEY)
    transaction.on_commit(lambda: cache.delete(selectors.ROLE_GRAPH_KEY))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# ---- domains --------------------------------------------------------------------------------

@transaction.atomic
def domain_create(*, actor: Actor, name: str, description: str = "", enabled: bool = True,
                  tags: list[str] | None = None, domain_id: str | None = None) -> Domain:
    require_admin(actor, action="create domains")
    domain = Domain(id=domain_id or uuid.uuid4().hex, name=_name(name, what="domain", max_length=64),
                    description=_text(description, field="description"), enabled=_bool(enabled, field="enabled"),
                    tags=_tags(tags))
    _save_unique(domain, "domain", "the cloud")
    events.publish(project_id=None, kind="created", resource="domain", resource_id=domain.id)
    return domain


@transaction.atomic
def domain_update(*, actor: Actor, domain_id: str, changes: Mapping[str, Any]) -> Domain:
    require_admin(actor, action="update domains")
    domain = selectors.domain_get(domain_id=domain_id)
    if "name" in changes:
        domain.name = _name(changes["name"], what="domain", max_length=64)
    if "description" in changes:
        domain.description = _text(changes["description"], field="description")
    if "enabled" in changes:
        enabled = _bool(changes["enabled"], field="enabled")
        if domain.id == DEFAULT_DOMAIN_ID and not enabled:
            raise Forbidden("The default domain cannot be disabled.")
        domain.enabled = enabled
    if "tags" in changes:
        domain.tags = _tags(changes["tags"])
    _save_unique(domain, "domain", "the cloud")
    events.publish(project_id=None, kind="updated", resource="domain", resource_id=domain.id)
    return domain


@transaction.atomic
def domain_delete(*, actor: Actor, domain_id: str) -> None:
    require_admin(actor, action="delete domains")
    domain = selectors.domain_get(domain_id=domain_id)
    if domain.enabled:
        raise Forbidden("Cannot delete a domain that is enabled, please disable it first.")
    if domain.id == DEFAULT_DOMAIN_ID:
        raise Forbidden("The default domain cannot be deleted.")
    # Keystone deletes what the domain owns.
    Token.objects.filter(Q(user__domain=domain) | Q(project__domain=domain) | Q(domain=domain)).delete()
    ApplicationCredential.objects.filter(Q(user__domain=domain) | Q(project__domain=domain)).delete()
    RoleAssignment.objects.filter(Q(domain=domain) | Q(project__domain=domain) | Q(user__domain=domain)
                                  | Q(group__domain=domain)).delete()
    for group in Group.objects.filter(domain=domain):
        group.auth_group.delete()
    User.objects.filter(domain=domain).delete()
    Project.objects.filter(domain=domain, parent__isnull=False).delete()
    Project.objects.filter(domain=domain).delete()
    Role.objects.filter(domain=domain).delete()
    domain.delete()
    events.publish(project_id=None, kind="deleted", resource="domain", resource_id=domain_id)


# ---- projects -------------------------------------------------------------------------------

def _default_domain_for(actor: Actor) -> str:
    if actor.project is not None:
        return actor.project.domain_id
    if actor.domain is not None:
        return actor.domain.id
    return DEFAULT_DOMAIN_ID


@transaction.atomic
def project_create(*, actor: Actor, name: str, domain_id: str | None = None, description: str = "",
                   enabled: bool = True, parent_id: str | None = None, tags: list[str] | None = None,
                   extra: Mapping[str, Any] | None = None) -> Project:
    require_admin(actor, action="create projects")
    domain = selectors.domain_get(domain_id=domain_id or _default_domain_for(actor))
    parent = None
    if parent_id:
        parent = Project.objects.filter(id=parent_id).first()
        if parent is None:
            raise NotFound(f"Could not find project: {parent_id}.")
        if parent.domain_id != domain.id:
            raise BadRequest("A project's parent must be in the same domain.")
    project = Project(name=_name(name, what="project", max_length=64), domain=domain, parent=parent,
                      description=_text(description, field="description"),
                      enabled=_bool(enabled, field="enabled"), tags=_tags(tags), extra=dict(extra or {}))
    _save_unique(project, "project", f"domain ID {domain.id}")
    events.publish(project_id=None, kind="created", resource="project", resource_id=project.id,
                   data={"name": project.name})
    return project


@transaction.atomic
def project_update(*, actor: Actor, project_id: str, changes: Mapping[str, Any]) -> Project:
    require_admin(actor, action="update projects")
    project = selectors.project_get(actor=actor, project_id=project_id)
    if "domain_id" in changes and changes["domain_id"] != project.domain_id:
        raise BadRequest("Cannot change the domain of a project.")
    if "name" in changes:
        project.name = _name(changes["name"], what="project", max_length=64)
    if "description" in changes:
        project.description = _text(changes["description"], field="description")
    if "enabled" in changes:
        project.enabled = _bool(changes["enabled"], field="enabled")
    if "tags" in changes:
        project.tags = _tags(changes["tags"])
    for key, value in changes.items():
        if key not in {"name", "description", "enabled", "tags", "domain_id", "parent_id", "is_domain", "id",
                       "links"}:
            project.extra[key] = value
    _save_unique(project, "project", f"domain ID {project.domain_id}")
    if not project.enabled:
        Token.objects.filter(project=project).delete()
        events.access_changed(project_id=project.id)
    events.publish(project_id=None, kind="updated", resource="project", resource_id=project.id,
                   data={"name": project.name, "enabled": project.enabled})
    return project


@transaction.atomic
def project_delete(*, actor: Actor, project_id: str) -> None:
    require_admin(actor, action="delete projects")
    project = selectors.project_get(actor=actor, project_id=project_id)
    if project.children.exists():
        raise Forbidden("Cannot delete a project that has child projects; delete them first.")
    holding = sorted({name for _, names in signals.project_deleting.send(sender=project_delete, project_id=project.id)
                      for name in names or ()})
    if holding:
        raise Conflict(f"Cannot delete project {project.id}: it still has {', '.join(holding)}; delete them first.")
    project.delete()
    events.access_changed(project_id=project_id)
    events.publish(project_id=None, kind="deleted", resource="project", resource_id=project_id)


def _project_to_tag(actor: Actor, project_id: str) -> Project:
    """Tags are the project's own metadata: its members (and admins) change them, its readers may
    only look (403), anyone else does not see the project (404)."""
    project = selectors.project_get(actor=actor, project_id=project_id)
    require_write(actor, project.id, what="project")
    return project


@transaction.atomic
def project_tags_set(*, actor: Actor, project_id: str, tags: Any) -> Project:
    """Replace a project's tags (PUT /projects/{id}/tags)."""
    project = _project_to_tag(actor, project_id)
    project.tags = _tags(tags)
    project.save(update_fields=["tags", "updated_at"])
    return project


@transaction.atomic
def project_tag_add(*, actor: Actor, project_id: str, tag: str) -> Project:
    project = _project_to_tag(actor, project_id)
    project.tags = _tags([*project.tags, _tag(tag)])
    project.save(update_fields=["tags", "updated_at"])
    return project


@transaction.atomic
def project_tag_delete(*, actor: Actor, project_id: str, tag: str | None = None) -> None:
    """Remove one tag, or every tag when ``tag`` is None."""
    project = _project_to_tag(actor, project_id)
    if tag is not None and tag not in project.tags:
        raise NotFound(f"Could not find tag {tag} on project {project_id}.")
    project.tags = [t for t in project.tags if t != tag] if tag is not None else []
    project.save(update_fields=["tags", "updated_at"])


# ---- users ----------------------------------------------------------------------------------

def _check_password_value(password: Any) -> str:
    if not isinstance(password, str) or password == "":
        raise BadRequest("Invalid input for field 'password': a password must be a non-empty string.")
    if len(password) > 4096:
        raise BadRequest("Invalid input for field 'password': too long.")
    return password


@transaction.atomic
def user_create(*, actor: Actor, name: str, domain_id: str | None = None, password: str | None = None,
                enabled: bool = True, default_project_id: str | None = None, email: str = "",
                description: str = "", extra: Mapping[str, Any] | None = None,
                options: Mapping[str, Any] | None = None) -> User:
    require_admin(actor, action="create users")
    domain = selectors.domain_get(domain_id=domain_id or _default_domain_for(actor))
    user = User(name=_name(name, what="user"), domain=domain, enabled=_bool(enabled, field="enabled"),
                email=_text(email, field="email", max_length=255), description=_text(description, field="description"),
                extra=dict(extra or {}), options=_options(options))
    if default_project_id:
        user.default_project = Project.objects.filter(id=default_project_id).first()
        if user.default_project is None:
            raise NotFound(f"Could not find project: {default_project_id}.")
    if password is not None:
        user.password = make_password(_check_password_value(password))
    else:
        user.set_unusable_password()
    _save_unique(user, "user", f"domain ID {domain.id}")
    events.publish(project_id=None, kind="created", resource="user", resource_id=user.id, data={"name": user.name})
    return user


@transaction.atomic
def user_update(*, actor: Actor, user_id: str, changes: Mapping[str, Any]) -> User:
    require_admin(actor, action="update users")
    user = selectors.user_get(user_id=user_id)
    revoke = False
    if "domain_id" in changes and changes["domain_id"] != user.domain_id:
        raise BadRequest("Cannot change the domain of a user.")
    if "name" in changes:
        user.name = _name(changes["name"], what="user")
    if "enabled" in changes:
        user.enabled = _bool(changes["enabled"], field="enabled")
        revoke = revoke or not user.enabled
        if user.enabled:  # Keystone: enabling a user is how an admin unlocks it (lockout)
            user.failed_auth_count, user.failed_auth_at = 0, None
    if "email" in changes:
        user.email = _text(changes["email"], field="email", max_length=255)
    if "description" in changes:
        user.description = _text(changes["description"], field="description")
    if "default_project_id" in changes:
        pid = changes["default_project_id"]
        user.default_project = Project.objects.filter(id=pid).first() if pid else None
        if pid and user.default_project is None:
            raise NotFound(f"Could not find project: {pid}.")
    if "password" in changes:
        user.password = make_password(_check_password_value(changes["password"]))
        user.password_changed_at = timezone.now()
        revoke = True
    if "options" in changes:
        user.options.update(_options(changes["options"]))
    for key, value in changes.items():
        if key not in {"name", "enabled", "email", "description", "default_project_id", "password", "options",
                       "domain_id", "id", "links", "password_expires_at"}:
            user.extra[key] = value
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


@transaction.atomic
def user_change_password(*, actor: Actor | None, user_id: str, original_password: str, password: str) -> None:
    """Self-service password change (POST /users/{id}/password): proves the old one. Without an
    actor (the API call needs no token) an unknown user is refused like a wrong password."""
    original_password = _text(original_password, field="original_password", max_length=4096)
    try:
        user = selectors.user_get(user_id=user_id)
    except NotFound:
        if actor is None:
            raise Unauthorized(UNAUTHENTICATED) from None
        raise
    if actor is not None and actor.user_id != user_id:
        raise Forbidden("You can only change your own password.")
    if not user.enabled or not check_password(original_password or "", user.password):
        raise Unauthorized(UNAUTHENTICATED)
    user.password = make_password(_check_password_value(password))
    user.password_changed_at = timezone.now()
    user.save(update_fields=["password", "password_changed_at", "updated_at"])
    _revoke_user_tokens(user, keep_app_creds=True)


@transaction.atomic
def user_delete(*, actor: Actor, user_id: str) -> None:
    require_admin(actor, action="delete users")
    user = selectors.user_get(user_id=user_id)
    user.delete()  # cascades: tokens, assignments, application credentials
    events.access_changed(user_id=user_id)
    events.publish(project_id=None, kind="deleted", resource="user", resource_id=user_id)


# ---- groups ---------------------------------------------------------------------------------

@transaction.atomic
def group_create(*, actor: Actor, name: str, domain_id: str | None = None, description: str = "") -> Group:
    require_admin(actor, action="create groups")
    domain = selectors.domain_get(domain_id=domain_id or _default_domain_for(actor))
    group_id = uuid.uuid4().hex
    group = Group(id=group_id, name=_name(name, what="group"), domain=domain,
                  description=_text(description, field="description"))
    if Group.objects.filter(domain=domain, name=group.name).exists():
        raise _duplicate("group", group.name, f"domain ID {domain.id}")
    group.auth_group = AuthGroup.objects.create(name=f"keystone-group:{group_id}")
    _save_unique(group, "group", f"domain ID {domain.id}")
    return group


@transaction.atomic
def group_update(*, actor: Actor, group_id: str, changes: Mapping[str, Any]) -> Group:
    require_admin(actor, action="update groups")
    group = selectors.group_get(group_id=group_id)
    if "domain_id" in changes and changes["domain_id"] != group.domain_id:
        raise BadRequest("Cannot change the domain of a group.")
    if "name" in changes:
        group.name = _name(changes["name"], what="group")
    if "description" in changes:
        group.description = _text(changes["description"], field="description")
    _save_unique(group, "group", f"domain ID {group.domain_id}")
    return group


@transaction.atomic
def group_delete(*, actor: Actor, group_id: str) -> None:
    require_admin(actor, action="delete groups")
    group = selectors.group_get(group_id=group_id)
    members = list(group.auth_group.user_set.all())
    projects = set(group.assignments.exclude(project=None).values_list("project_id", flat=True))
    auth_group = group.auth_group
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
    group.auth_group.user_set.remove(user)
    projects = set(group.assignments.exclude(project=None).values_list("project_id", flat=True))
    _revoke_tokens_without_roles(user, projects)


# ---- roles and assignments ------------------------------------------------------------------

@transaction.atomic
def role_create(*, actor: Actor, name: str, domain_id: str | None = None, description: str = "",
                options: Mapping[str, Any] | None = None) -> Role:
    require_admin(actor, action="create roles")
    domain = selectors.domain_get(domain_id=domain_id) if domain_id else None
    role = Role(name=_name(name, what="role"), domain=domain, description=_text(description, field="description"),
                options=_options(options))
    _save_unique(role, "role", f"domain ID {domain.id}" if domain else "the cloud")
    _role_graph_changed()
    return role


@transaction.atomic
def role_update(*, actor: Actor, role_id: str, changes: Mapping[str, Any]) -> Role:
    require_admin(actor, action="update roles")
    role = selectors.role_get(role_id=role_id)
    if "name" in changes:
        new_name = _name(changes["name"], what="role")
        if role.name in ROLE_PERMS and new_name != role.name and role.domain_id is None:
            raise Forbidden(f"The built-in role '{role.name}' cannot be renamed.")
        role.name = new_name
    if "description" in changes:
        role.description = _text(changes["description"], field="description")
    if "options" in changes:
        role.options.update(_options(changes["options"]))
    _save_unique(role, "role", "the cloud")
    _role_graph_changed()
    return role


@transaction.atomic
def role_delete(*, actor: Actor, role_id: str) -> None:
    require_admin(actor, action="delete roles")
    role = selectors.role_get(role_id=role_id)
    if role.options.get("immutable"):
        raise Forbidden(f"The role '{role.name}' is immutable.")
    affected = list(role.assignments.select_related("user", "group", "project").all())
    role.delete()
    _role_graph_changed()
    for assignment in affected:
        _after_assignment_change(assignment)


@transaction.atomic
def implied_role_create(*, actor: Actor, prior_role_id: str, implied_role_id: str) -> ImpliedRole:
    require_admin(actor, action="create role inference rules")
    prior = selectors.role_get(role_id=prior_role_id)
    implied = selectors.role_get(role_id=implied_role_id)
    if prior.domain_id is None and implied.domain_id is not None:
        raise Forbidden("A global role cannot imply a domain-specific role.")
    if prior.id == implied.id or prior.id in selectors.expand_implied([implied.id]):
        raise BadRequest("A role inference rule cannot make a loop.")
    rule, _ = ImpliedRole.objects.get_or_create(prior=prior, implied=implied)
    _role_graph_changed()
    _resync_all_for_roles({prior.id})
    return rule


@transaction.atomic
def implied_role_delete(*, actor: Actor, prior_role_id: str, implied_role_id: str) -> None:
    require_admin(actor, action="delete role inference rules")
    deleted, _ = ImpliedRole.objects.filter(prior_id=prior_role_id, implied_id=implied_role_id).delete()
    if not deleted:
        raise NotFound(f"Could not find implied role {implied_role_id} of {prior_role_id}.")
    _role_graph_changed()
    _resync_all_for_roles({prior_role_id})


def _resolve_target(*, project_id: str | None, domain_id: str | None, system: bool
                    ) -> tuple[Project | None, Domain | None, str]:
    targets = sum(bool(x) for x in (project_id, domain_id, system))
    if targets != 1:
        raise BadRequest("Specify exactly one of project, domain or system.")
    if project_id:
        project = Project.objects.select_related("domain").filter(id=project_id).first()
        if project is None:
            raise NotFound(f"Could not find project: {project_id}.")
        return project, None, ""
    if domain_id:
        return None, selectors.domain_get(domain_id=domain_id), ""
    return None, None, RoleAssignment.SYSTEM_ALL


def _resolve_actor(*, user_id: str | None, group_id: str | None) -> tuple[User | None, Group | None]:
    if bool(user_id) == bool(group_id):
        raise BadRequest("Specify exactly one of user or group.")
    if user_id:
        return selectors.user_get(user_id=user_id), None
    return None, selectors.group_get(group_id=group_id or "")


@transaction.atomic
def role_grant(*, actor: Actor, role_id: str, user_id: str | None = None, group_id: str | None = None,
               project_id: str | None = None, domain_id: str | None = None, system: bool = False,
               inherited: bool = False) -> RoleAssignment:
    require_admin(actor, action="grant roles")
    role = selectors.role_get(role_id=role_id)
    user, group = _resolve_actor(user_id=user_id, group_id=group_id)
    project, domain, system_value = _resolve_target(project_id=project_id, domain_id=domain_id, system=system)
    assignment, _ = RoleAssignment.objects.get_or_create(
        role=role, user=user, group=group, project=project, domain=domain, system=system_value, inherited=inherited)
    _after_assignment_change(assignment)
    events.publish(project_id=project.id if project else None, kind="created", resource="role_assignment",
                   resource_id=str(assignment.id), data={"role": role.name})
    return assignment


@transaction.atomic
def role_revoke(*, actor: Actor, role_id: str, user_id: str | None = None, group_id: str | None = None,
                project_id: str | None = None, domain_id: str | None = None, system: bool = False,
                inherited: bool = False) -> None:
    require_admin(actor, action="revoke roles")
    user, group = _resolve_actor(user_id=user_id, group_id=group_id)
    project, domain, system_value = _resolve_target(project_id=project_id, domain_id=domain_id, system=system)
    assignment = RoleAssignment.objects.select_related("role").filter(
        role_id=role_id, user=user, group=group, project=project, domain=domain, system=system_value,
        inherited=inherited).first()
    if assignment is None:
        raise NotFound(f"Could not find role assignment with role: {role_id}.")
    assignment.delete()
    _after_assignment_change(assignment)
    events.publish(project_id=project.id if project else None, kind="deleted", resource="role_assignment",
                   resource_id=str(assignment.pk or ""), data={"role": assignment.role.name})


def _perms_for_roles(role_ids: Iterable[str]) -> set[str]:
    names = set(Role.objects.filter(id__in=selectors.expand_implied(role_ids), domain__isnull=True)
                .values_list("name", flat=True))
    perms: set[str] = set()
    for name in names:
        perms |= ROLE_PERMS.get(name, {PERM_READ})
    return perms


def _sync_guardian(*, user: User | None, group: Group | None, project: Project | None, system: bool) -> None:
    """Mirror the role assignments of one actor on one target into guardian permissions: object
    permissions on the project, or global permissions for a system assignment."""
    holder: User | AuthGroup = user if user is not None else group.auth_group  # type: ignore[union-attr]
    filt = Q(user=user) if user is not None else Q(group=group)
    if project is not None:
        role_ids = RoleAssignment.objects.filter(filt, project=project).values_list("role_id", flat=True)
        wanted = _perms_for_roles(role_ids)
        for perm in (PERM_READ, PERM_WRITE, PERM_ADMIN):
            if perm in wanted:
                assign_perm(f"identity.{perm}", holder, project)
            else:
                remove_perm(f"identity.{perm}", holder, project)
    elif system:
        role_ids = RoleAssignment.objects.filter(filt).exclude(system="").values_list("role_id", flat=True)
        wanted = _perms_for_roles(role_ids)
        perms = {p.codename: p for p in Permission.objects.filter(
            content_type__app_label="identity", codename__in=[PERM_READ, PERM_WRITE, PERM_ADMIN])}
        target = holder.user_permissions if isinstance(holder, User) else holder.permissions
        for codename, perm in perms.items():
            if codename in wanted:
                target.add(perm)
            else:
                target.remove(perm)


def _after_assignment_change(assignment: RoleAssignment) -> None:
    user = User.objects.filter(pk=assignment.user_id).first() if assignment.user_id else None
    group = Group.objects.select_related("auth_group").filter(pk=assignment.group_id).first() \
        if assignment.group_id else None
    if user is None and group is None:
        return
    project = Project.objects.filter(pk=assignment.project_id).first() if assignment.project_id else None
    _sync_guardian(user=user, group=group, project=project, system=bool(assignment.system))
    members = [user] if user is not None else list(group.auth_group.user_set.all())  # type: ignore[union-attr]
    for member in members:
        member.__dict__.pop("_is_admin_cache", None)
        _revoke_tokens_without_roles(member, {assignment.project_id} if assignment.project_id else set(),
                                     system=bool(assignment.system), domain_id=assignment.domain_id)


def _revoke_tokens_without_roles(user: User, project_ids: Iterable[str], *, system: bool = False,
                                 domain_id: str | None = None) -> None:
    """A scoped token dies when its user no longer holds any role on its scope; the user's live
    sockets check again which projects they may watch."""
    events.access_changed(user_id=str(user.pk))
    for project_id in project_ids:
        project = Project.objects.filter(pk=project_id).first()
        if project is None or not selectors.effective_roles(user, project=project):
            Token.objects.filter(user=user, project_id=project_id).delete()
    if system and not selectors.effective_roles(user, system=True):
        Token.objects.filter(user=user).exclude(system="").delete()
    if domain_id:
        domain = Domain.objects.filter(pk=domain_id).first()
        if domain is None or not selectors.effective_roles(user, domain=domain):
            Token.objects.filter(user=user, domain_id=domain_id).delete()


def _resync_all_for_roles(role_ids: set[str]) -> None:
    for assignment in RoleAssignment.objects.filter(role_id__in=role_ids):
        _after_assignment_change(assignment)


# ---- tokens ---------------------------------------------------------------------------------

def _authenticate_password(method: Mapping[str, Any]) -> User:
    ref = method.get("user") if isinstance(method, Mapping) else None
    if not isinstance(ref, Mapping) or "password" not in ref:
        raise BadRequest("Invalid input for field 'identity/password/user': expected a user and a password.")
    _check_ref(ref, "identity/password/user")
    return password_authenticate(user_ref=ref, password=str(ref["password"]))


def _locked(user: User, now: Any) -> bool:
    """Keystone's lockout: locked after STRATUS_LOCKOUT_FAILURE_ATTEMPTS wrong passwords in a row,
    for STRATUS_LOCKOUT_DURATION seconds after the last one (then the count starts again)."""
    attempts = settings.STRATUS_LOCKOUT_FAILURE_ATTEMPTS
    if attempts <= 0 or user.failed_auth_count < attempts or user.options.get("ignore_lockout_failure_attempts"):
        return False
    if user.failed_auth_at is not None and now - user.failed_auth_at >= timedelta(
            seconds=settings.STRATUS_LOCKOUT_DURATION):
        User.objects.filter(pk=user.pk).update(failed_auth_count=0, failed_auth_at=None)
        user.failed_auth_count, user.failed_auth_at = 0, None
        return False
    return True


def password_authenticate(*, user_ref: Mapping[str, Any], password: str) -> User:
    """The user that ``user_ref`` (Keystone's {"id"} or {"name", "domain"}) names, if ``password`` is
    its password and it may log in; Unauthorized otherwise. The one password check of the Keystone
    API and the dashboard.

    It costs one password hash whatever the outcome (an unknown user is checked against an unusable
    hash, which Django answers after hashing once), so the time taken does not tell whether a user
    exists. A wrong password counts against the user (lockout, when STRATUS_LOCKOUT_FAILURE_ATTEMPTS
    is set); the count is written at once, outside any transaction of the caller's that the
    refusal rolls back: call it outside one."""
    try:
        user = selectors.user_by_name_or_id(ref=dict(user_ref))
    except (NotFound, BadRequest):
        user = None
    if user is None:
        check_password(password, "!")  # same cost as a real check, always False
        raise Unauthorized(UNAUTHENTICATED)
    now = timezone.now()
    locked = _locked(user, now)
    correct = check_password(password, user.password)
    if locked:
        raise Unauthorized(UNAUTHENTICATED)  # Keystone's AccountLocked is this 401 too
    if not correct:
        if settings.STRATUS_LOCKOUT_FAILURE_ATTEMPTS > 0:
            User.objects.filter(pk=user.pk).update(failed_auth_count=F("failed_auth_count") + 1, failed_auth_at=now)
        raise Unauthorized(UNAUTHENTICATED)
    if not user.enabled or not user.domain.enabled:
        raise Unauthorized(UNAUTHENTICATED)
    if user.failed_auth_count:
        User.objects.filter(pk=user.pk).update(failed_auth_count=0, failed_auth_at=None)
        user.failed_auth_count, user.failed_auth_at = 0, None
    return user


def _authenticate_app_cred(method: Mapping[str, Any]) -> ApplicationCredential:
    secret = method.get("secret")
    if not isinstance(secret, str):
        raise BadRequest("Invalid input for field 'identity/application_credential/secret'.")
    qs = ApplicationCredential.objects.select_related("user", "user__domain", "project", "project__domain")
    if method.get("id"):
        cred = qs.filter(id=str(method["id"])).first()
    else:
        _check_ref(method.get("user"), "identity/application_credential/user")
        try:
            user = selectors.user_by_name_or_id(ref=method["user"])
        except NotFound:
            raise Unauthorized(UNAUTHENTICATED) from None
        cred = qs.filter(user=user, name=method.get("name", "")).first()
    if cred is None or not check_password(secret, cred.secret_hash):
        raise Unauthorized(UNAUTHENTICATED)
    if cred.expires_at is not None and cred.expires_at <= timezone.now():
        raise Unauthorized(UNAUTHENTICATED)
    if not cred.user.enabled:
        raise Unauthorized(UNAUTHENTICATED)
    return cred


def _check_ref(ref: Any, field: str) -> None:
    """A Keystone reference is an object ({id} or {name, domain: {id|name}})."""
    if not isinstance(ref, Mapping) or ("domain" in ref and not isinstance(ref["domain"], Mapping)):
        raise BadRequest(f"Invalid input for field '{field}': expected an object with an id, or a name and "
                         "a domain object.")


def _resolve_scope(scope: Any) -> tuple[Project | None, Domain | None, bool]:
    if not scope:
        return None, None, False
    if not isinstance(scope, Mapping):
        raise BadRequest("Invalid input for field 'auth/scope'.")
    for kind in ("project", "domain", "system"):
        if kind in scope:
            _check_ref(scope[kind], f"auth/scope/{kind}")
    if "project" in scope:
        try:
            return selectors.project_by_name_or_id(ref=scope["project"]), None, False
        except NotFound:
            raise Unauthorized(UNAUTHENTICATED) from None
    if "domain" in scope:
        try:
            return None, selectors.domain_by_name_or_id(ref=scope["domain"]), False
        except NotFound:
            raise Unauthorized(UNAUTHENTICATED) from None
    if "system" in scope:
        if scope["system"].get("all") is True:
            return None, None, True
        raise BadRequest("Invalid input for field 'auth/scope/system': only {'all': true} is supported.")
    if "OS-TRUST:trust" in scope:
        raise Forbidden("Trusts are not supported.")
    raise BadRequest("Invalid input for field 'auth/scope'.")


def token_issue(*, auth: Mapping[str, Any]) -> tuple[str, Actor]:
    """Authenticate (password, token or application credential) and issue a token.

    Returns the token string (shown once, stored only as a hash) and the actor it stands for.
    A password is checked before the token's transaction, so that a wrong one is counted
    (lockout) even though the request fails.
    """
    identity = auth.get("identity") if isinstance(auth, Mapping) else None
    password_user: User | None = None
    if (isinstance(identity, Mapping) and isinstance(identity.get("methods"), list) and identity["methods"]
            and str(identity["methods"][0]) == "password" and isinstance(identity.get("password"), Mapping)):
        password_user = _authenticate_password(identity["password"])
    return _token_issue(auth=auth, password_user=password_user)


@transaction.atomic
def _token_issue(*, auth: Mapping[str, Any], password_user: User | None) -> tuple[str, Actor]:
    identity = auth.get("identity") if isinstance(auth, Mapping) else None
    if not isinstance(identity, Mapping) or not isinstance(identity.get("methods"), list) or not identity["methods"]:
        raise BadRequest("Invalid input for field 'identity': 'methods' is a required property.")
    methods = [str(m) for m in identity["methods"]]
    method = methods[0]
    if not isinstance(identity.get(method), Mapping):
        raise BadRequest(f"Invalid input for field 'identity': '{method}' is a required object.")
    scope = auth.get("scope")
    now = timezone.now()
    expires_at = now + timedelta(seconds=settings.STRATUS_TOKEN_TTL_SECONDS)
    audit_chain = ""
    cred: ApplicationCredential | None = None
    if method == "password":
        assert password_user is not None  # checked by token_issue
        user = password_user
    elif method == "token":
        original = token_validate(token=str(identity["token"].get("id", "")), unauthorized=True)
        parent = original.token
        assert parent is not None
        if parent.application_credential_id is not None:
            raise Forbidden("A token made from an application credential cannot be rescoped.")
        if (parent.project_id or parent.domain_id or parent.system) and not scope:
            raise Forbidden("A scoped token cannot be used to make an unscoped one.")
        user = original.user
        expires_at = parent.expires_at
        audit_chain = parent.audit_chain_id or parent.audit_id
        methods = list(dict.fromkeys([*parent.methods, "token"]))
    elif method == "application_credential":
        cred = _authenticate_app_cred(identity["application_credential"])
        if scope:
            raise Unauthorized("An application credential is already scoped: do not give a scope.")
        user = cred.user
        if cred.expires_at is not None:
            expires_at = min(expires_at, cred.expires_at)
    else:
        raise Unauthorized(f"Authentication method '{method}' is not supported.")

    if cred is not None:
        project, domain, system = cred.project, None, False
    else:
        project, domain, system = _resolve_scope(scope)
        if not scope and user.default_project_id:
            default = Project.objects.select_related("domain").filter(id=user.default_project_id).first()
            if default is not None and default.enabled and selectors.effective_roles(user, project=default):
                project = default

    if project is not None and (not project.enabled or not project.domain.enabled):
        raise Unauthorized(f"Project {project.id} is disabled.")
    if domain is not None and not domain.enabled:
        raise Unauthorized(f"Domain {domain.id} is disabled.")

    # never a leading '-': the CLI would read such a token as an option (`openstack token revoke -x...`)
    raw = "s" + secrets.token_urlsafe(48)
    token = Token(id=token_hash(raw), user=user, project=project, domain=domain,
                  system=RoleAssignment.SYSTEM_ALL if system else "", application_credential=cred,
                  methods=methods, audit_id=_audit_id(), audit_chain_id=audit_chain,
                  issued_at=now, expires_at=expires_at)
    actor = _actor_for(token)
    if (project is not None or domain is not None or system) and not actor.roles:
        where = f"project {project.id}" if project else f"domain {domain.id}" if domain else "the system"
        raise Unauthorized(f"User {user.id} has no access to {where}.")
    token.save(force_insert=True)
    return raw, actor


def _audit_id() -> str:
    return secrets.token_urlsafe(16)[:22]


def _actor_for(token: Token) -> Actor:
    roles = selectors.effective_roles(token.user, project=token.project, domain=token.domain,
                                      system=bool(token.system))
    if token.application_credential is not None:
        allowed = set(token.application_credential.roles.values_list("id", flat=True))
        roles = [r for r in roles if r.id in allowed]
    return Actor(user=token.user, project=token.project, domain=token.domain, system=bool(token.system),
                 roles=frozenset(r.name for r in roles), role_ids=frozenset(r.id for r in roles),
                 role_refs=tuple((r.id, r.name) for r in roles), token=token,
                 application_credential=token.application_credential)


def token_validate(*, token: str, unauthorized: bool = False) -> Actor:
    """The actor a token stands for, or NotFound (Unauthorized with ``unauthorized``) when the
    token is unknown, expired, revoked, its user disabled, its password changed or its roles gone."""
    error = Unauthorized(UNAUTHENTICATED) if unauthorized else NotFound("Could not find token.")
    if not token:
        raise error
    try:
        record = selectors.token_get(token_hash=token_hash(token))
    except NotFound:
        raise error from None
    user = record.user
    if record.expires_at <= timezone.now() or not user.enabled or not user.domain.enabled:
        raise error
    if record.application_credential_id is None and record.issued_at < user.password_changed_at:
        raise error
    if record.project is not None and (not record.project.enabled or not record.project.domain.enabled):
        raise error
    actor = _actor_for(record)
    if (record.project_id or record.domain_id or record.system) and not actor.roles:
        raise error
    return actor


@transaction.atomic
def token_revoke(*, actor: Actor, token: str) -> None:
    """Revoke a token: one's own, or anyone's for an admin."""
    record = Token.objects.filter(id=token_hash(token)).first()
    if record is None or record.expires_at <= timezone.now():
        raise NotFound("Could not find token.")
    if record.user_id != actor.user_id and not actor.is_admin:
        raise Forbidden("You are not authorized to revoke this token.")
    record.delete()


def token_flush_expired(*, now: datetime | None = None) -> int:
    """Delete tokens past their expiry (a periodic task calls this)."""
    deleted, _ = Token.objects.filter(expires_at__lte=now or timezone.now()).delete()
    return deleted


def actor_for_session(*, user: User, project_id: str | None) -> Actor:
    """The actor the dashboard acts as: the logged-in user in the project chosen by the switcher."""
    project = None
    if project_id:
        project = selectors.projects_for_user(user).filter(id=project_id).first()
    roles = selectors.effective_roles(user, project=project) if project is not None else []
    if project is not None and not roles and user.is_superuser:
        roles = selectors.effective_roles(user, system=True) or list(Role.objects.filter(name="admin"))
    if project is None and user.is_superuser:
        roles = list(Role.objects.filter(name="admin"))
    return Actor(user=user, project=project, roles=frozenset(r.name for r in roles),
                 role_ids=frozenset(r.id for r in roles), role_refs=tuple((r.id, r.name) for r in roles))


# ---- application credentials ----------------------------------------------------------------

@transaction.atomic
def application_credential_create(*, actor: Actor, user_id: str, name: str, description: str = "",
                                  secret: str | None = None, roles: list[Mapping[str, str]] | None = None,
                                  expires_at: datetime | None = None, unrestricted: bool = False
                                  ) -> tuple[ApplicationCredential, str]:
    """Make an application credential of the caller's project; the secret is returned once."""
    if actor.user_id != user_id:
        raise Forbidden("You can only make application credentials for yourself.")
    if actor.project is None:
        raise Forbidden("Application credentials need a project-scoped token.")
    if actor.application_credential is not None and not actor.application_credential.unrestricted:
        raise Forbidden("A restricted application credential cannot make another one.")
    if expires_at is not None and expires_at <= timezone.now():
        raise BadRequest("Invalid input for field 'expires_at': it is in the past.")
    if secret is not None and (not isinstance(secret, str) or not secret):
        raise BadRequest("Invalid input for field 'secret': must be a non-empty string.")
    if roles is not None and (not isinstance(roles, list) or not all(isinstance(r, Mapping) for r in roles)):
        raise BadRequest("Invalid input for field 'roles': must be a list of {id} or {name} objects.")
    wanted: list[Role] = []
    if roles:
        by_id = {r.id: r for r in Role.objects.filter(id__in=actor.role_ids)}
        by_name = {r.name: r for r in by_id.values()}
        for ref in roles:
            role = by_id.get(str(ref.get("id", ""))) or by_name.get(str(ref.get("name", "")))
            if role is None:
                raise Forbidden(f"You do not hold the role {ref.get('id') or ref.get('name')} on this project.")
            wanted.append(role)
    else:
        wanted = list(Role.objects.filter(id__in=actor.role_ids))
    secret = secret or secrets.token_urlsafe(48)
    cred = ApplicationCredential(user=actor.user, project=actor.project,
                                 name=_name(name, what="application credential"),
                                 description=_text(description, field="description"),
                                 secret_hash=make_password(secret), expires_at=expires_at,
                                 unrestricted=_bool(unrestricted, field="unrestricted"))
    _save_unique(cred, "application credential", f"user ID {actor.user_id}")
    cred.roles.set(wanted)
    return cred, secret


@transaction.atomic
def application_credential_delete(*, actor: Actor, user_id: str, app_cred_id: str) -> None:
    require_self_or_admin(actor, user_id, action="delete this application credential")
    user = selectors.user_get(user_id=user_id)
    cred = selectors.application_credential_get(user=user, app_cred_id=app_cred_id)
    if actor.application_credential is not None and not actor.application_credential.unrestricted:
        raise Forbidden("A restricted application credential cannot delete application credentials.")
    cred.delete()


# ---- catalog --------------------------------------------------------------------------------

@transaction.atomic
def region_create(*, actor: Actor, region_id: str | None = None, description: str = "",
                  parent_region_id: str | None = None) -> Region:
    require_admin(actor, action="create regions")
    region_id = _text(region_id, field="id", max_length=255) or uuid.uuid4().hex
    if Region.objects.filter(id=region_id).exists():
        raise Conflict(f"Conflict occurred attempting to store region - Duplicate ID, {region_id}.")
    parent = selectors.region_get(region_id=str(parent_region_id)) if parent_region_id else None
    return Region.objects.create(id=region_id, description=_text(description, field="description"), parent=parent)


@transaction.atomic
def region_update(*, actor: Actor, region_id: str, changes: Mapping[str, Any]) -> Region:
    require_admin(actor, action="update regions")
    region = selectors.region_get(region_id=region_id)
    if "description" in changes:
        region.description = _text(changes["description"], field="description")
    if "parent_region_id" in changes:
        pid = changes["parent_region_id"]
        if pid == region.id:
            raise BadRequest("A region cannot be its own parent.")
        region.parent = selectors.region_get(region_id=pid) if pid else None
    region.save()
    return region


@transaction.atomic
def region_delete(*, actor: Actor, region_id: str) -> None:
    require_admin(actor, action="delete regions")
    region = selectors.region_get(region_id=region_id)
    if region.children.exists():
        raise Forbidden("Cannot delete a region that has child regions.")
    region.delete()


@transaction.atomic
def service_create(*, actor: Actor, type: str, name: str = "", description: str = "", enabled: bool = True
                   ) -> Service:
    require_admin(actor, action="create services")
    if not _text(type, field="type", max_length=255):
        raise BadRequest("Invalid input for field 'type': a service needs a type.")
    return Service.objects.create(type=type, name=_text(name, field="name", max_length=255),
                                  description=_text(description, field="description"),
                                  enabled=_bool(enabled, field="enabled"))


@transaction.atomic
def service_update(*, actor: Actor, service_id: str, changes: Mapping[str, Any]) -> Service:
    require_admin(actor, action="update services")
    service = selectors.service_get(service_id=service_id)
    for field in ("type", "name", "description"):
        if field in changes:
            setattr(service, field, _text(changes[field], field=field,
                                          max_length=None if field == "description" else 255))
    if "enabled" in changes:
        service.enabled = _bool(changes["enabled"], field="enabled")
    if not service.type:
        raise BadRequest("Invalid input for field 'type': a service needs a type.")
    service.save()
    return service


@transaction.atomic
def service_delete(*, actor: Actor, service_id: str) -> None:
    require_admin(actor, action="delete services")
    selectors.service_get(service_id=service_id).delete()


def _check_endpoint(interface: Any, url: Any) -> None:
    if not isinstance(interface, str) or interface not in {"public", "internal", "admin"}:
        raise BadRequest("Invalid input for field 'interface': must be public, internal or admin.")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")) or len(url) > 1024:
        raise BadRequest("Invalid input for field 'url': must be an http(s) URL.")


def _region_for_endpoint(region_id: Any) -> Region | None:
    """An endpoint's region; Keystone makes a region named in an endpoint when it does not exist."""
    if not region_id:
        return None
    if not isinstance(region_id, str) or len(region_id) > 255:
        raise BadRequest("Invalid input for field 'region_id': must be a string of at most 255 characters.")
    region, _ = Region.objects.get_or_create(id=region_id)
    return region


@transaction.atomic
def endpoint_create(*, actor: Actor, service_id: str, interface: str, url: str, region_id: str | None = None,
                    enabled: bool = True) -> Endpoint:
    require_admin(actor, action="create endpoints")
    _check_endpoint(interface, url)
    service = selectors.service_get(service_id=service_id)
    region = _region_for_endpoint(region_id)
    return Endpoint.objects.create(service=service, interface=interface, url=url, region=region,
                                   enabled=_bool(enabled, field="enabled"))


@transaction.atomic
def endpoint_update(*, actor: Actor, endpoint_id: str, changes: Mapping[str, Any]) -> Endpoint:
    require_admin(actor, action="update endpoints")
    endpoint = selectors.endpoint_get(endpoint_id=endpoint_id)
    if "interface" in changes:
        endpoint.interface = changes["interface"]
    if "url" in changes:
        endpoint.url = changes["url"]
    _check_endpoint(endpoint.interface, endpoint.url)
    if "service_id" in changes:
        endpoint.service = selectors.service_get(service_id=changes["service_id"])
    if "region_id" in changes or "region" in changes:
        endpoint.region = _region_for_endpoint(changes.get("region_id", changes.get("region")))
    if "enabled" in changes:
        endpoint.enabled = _bool(changes["enabled"], field="enabled")
    endpoint.save()
    return endpoint


@transaction.atomic
def endpoint_delete(*, actor: Actor, endpoint_id: str) -> None:
    require_admin(actor, action="delete endpoints")
    selectors.endpoint_get(endpoint_id=endpoint_id).delete()


# ---- quotas ---------------------------------------------------------------------------------

QUOTA_MAX = 2**31 - 1  # Nova's, Cinder's and Neutron's schemas: a limit is a 32-bit integer


def _registered(resource: str) -> None:
    if quotas.get(resource) is None:
        raise BadRequest(f"Unknown quota resource: {resource}.")


def quota_reserve(*, project_id: str, deltas: Mapping[str, int]) -> None:
    """Count ``deltas`` against the project's limits, or raise QuotaExceeded changing nothing.

    Call it inside the transaction that creates the resource rows: the usage rows are locked
    (SELECT ... FOR UPDATE, in resource order) until that transaction ends, so concurrent
    reservations never overshoot, and a rollback returns what was reserved.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("quota_reserve must run inside the transaction that creates the resource")
    wanted = {r: int(d) for r, d in deltas.items() if int(d) != 0}
    for resource in wanted:
        _registered(resource)
    if not wanted:
        return
    QuotaUsage.objects.bulk_create([QuotaUsage(project_id=project_id, resource=r) for r in sorted(wanted)],
                                   ignore_conflicts=True)
    locked = {u.resource: u for u in QuotaUsage.objects.select_for_update()
              .filter(project_id=project_id, resource__in=wanted).order_by("resource")}
    project = Project(id=project_id)
    limits = selectors.quota_limits(project=project)
    for resource, delta in sorted(wanted.items()):
        usage = locked[resource]
        limit = limits.get(resource, quotas.UNLIMITED)
        if delta > 0 and limit >= 0 and usage.in_use + delta > limit:
            raise QuotaExceeded(
                f"Quota exceeded for {resource}: requested {delta}, but already used {usage.in_use} "
                f"of {limit} {resource}.", resource=resource, limit=limit, in_use=usage.in_use, requested=delta)
    for resource, delta in wanted.items():
        QuotaUsage.objects.filter(pk=locked[resource].pk).update(in_use=Greatest(F("in_use") + delta, 0),
                                                                  updated_at=timezone.now())
    events.publish(project_id=project_id, kind="updated", resource="quota", resource_id=project_id,
                   data={"deltas": wanted})


def quota_release(*, project_id: str, deltas: Mapping[str, int]) -> None:
    """Give back what a deleted resource held (inside the transaction that deletes it)."""
    quota_reserve(project_id=project_id, deltas={r: -abs(int(d)) for r, d in deltas.items()})


@transaction.atomic
def quota_set(*, actor: Actor, project_id: str, limits: Mapping[str, Any], force: bool = False) -> dict[str, int]:
    """Set a project's own limits (admin). A limit below what is in use is refused unless forced."""
    require_admin(actor, action="set quotas")
    project = selectors.project_get(actor=actor, project_id=project_id)
    clean: dict[str, int] = {}
    for resource, value in limits.items():
        _registered(resource)
        if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).lstrip("-").isdigit():
            raise BadRequest(f"Quota limit {value!r} for {resource} must be an integer.")
        if int(value) < -1 or int(value) > QUOTA_MAX:
            raise BadRequest(f"Quota limit {value} for {resource} must be -1 (unlimited) or more, "
                             f"and at most {QUOTA_MAX}.")
        clean[resource] = int(value)
    used = dict(QuotaUsage.objects.select_for_update().filter(project=project, resource__in=clean)
                .values_list("resource", "in_use"))
    for resource, value in clean.items():
        if not force and value >= 0 and used.get(resource, 0) > value:
            raise BadRequest(f"Quota limit {value} for {resource} must be greater than or equal to the "
                             f"{used[resource]} already used.")
        QuotaLimit.objects.update_or_create(project=project, resource=resource, defaults={"hard_limit": value})
    events.publish(project_id=project.id, kind="updated", resource="quota", resource_id=project.id)
    return selectors.quota_limits(project=project)


@transaction.atomic
def quota_delete(*, actor: Actor, project_id: str, resources: Iterable[str]) -> None:
    """Return ``resources`` of a project to the default limits (admin). Each API resets only its
    own (``quotas.service_resources(service)``): a Nova reset never touches Cinder's limits."""
    require_admin(actor, action="reset quotas")
    project = selectors.project_get(actor=actor, project_id=project_id)
    names = list(resources)
    QuotaLimit.objects.filter(project=project, resource__in=names).delete()
    events.publish(project_id=project.id, kind="updated", resource="quota", resource_id=project.id)


def quota_resources_rename(*, resources: Mapping[str, str]) -> None:
    """Carry every project's usage and limits and the default of each ``old`` resource name over to
    its ``new`` one (``{old: new}``), as when the thing a family's names come from is renamed. Call it
    inside the transaction that renames that thing."""
    for old, new in resources.items():
        for model in (QuotaUsage, QuotaLimit, QuotaDefault):
            model.objects.filter(resource=old).update(resource=new)


def quota_resources_forget(*, resources: Iterable[str]) -> None:
    """Drop every project's usage and limits and the default of ``resources``, whose thing is gone
    (nothing of it remains to count). Call it inside the transaction that deletes that thing."""
    names = list(resources)
    for model in (QuotaUsage, QuotaLimit, QuotaDefault):
        model.objects.filter(resource__in=names).delete()


@transaction.atomic
def quota_default_set(*, actor: Actor, limits: Mapping[str, int]) -> dict[str, int]:
    require_admin(actor, action="set default quotas")
    for resource, value in limits.items():
        _registered(resource)
        if isinstance(value, bool) or not isinstance(value, int) or not -1 <= value <= QUOTA_MAX:
            raise BadRequest(f"Quota limit {value!r} for {resource} must be an integer, -1 or more, "
                             f"at most {QUOTA_MAX}.")
        QuotaDefault.objects.update_or_create(resource=resource, defaults={"hard_limit": value})
    return selectors.quota_defaults()


# ---- bootstrap --------------------------------------------------------------------------------

CATALOG_SERVICES: list[tuple[str, str, str]] = [
    # (type, name, path under the public URL)
    ("identity", "keystone", "/identity"),
    ("compute", "nova", "/compute/v2.1"),
    ("image", "glance", "/image"),
    ("network", "neutron", "/network"),
    ("block-storage", "cinder", "/volume/v3/$(project_id)s"),
    ("volumev3", "cinderv3", "/volume/v3/$(project_id)s"),
    ("object-store", "swift", "/object-store/v1/AUTH_$(project_id)s"),
    ("orchestration", "heat", "/orchestration/v1/$(project_id)s"),
]


def _ensure_user(*, name: str, domain: Domain, password: str, project: Project) -> User:
    user = User.objects.filter(domain=domain, name=name).first()
    if user is None:
        user = User(name=name, domain=domain, default_project=project)
        user.password = make_password(password)
        user.save()
    elif not check_password(password, user.password):
        user.password = make_password(password)
        user.password_changed_at = timezone.now()
        user.enabled = True
        user.save()
    return user


@transaction.atomic
def bootstrap(*, public_url: str, admin_password: str, demo_password: str, region_id: str = "RegionOne"
              ) -> dict[str, Any]:
    """Make what devstack makes; running it again changes only what differs (idempotent)."""
    domain, _ = Domain.objects.get_or_create(id=DEFAULT_DOMAIN_ID, defaults={
        "name": "Default", "description": "The default domain"})
    roles = {}
    for name in ("admin", "member", "reader"):
        roles[name] = Role.objects.filter(name=name, domain=None).first() or Role.objects.create(name=name)
    ImpliedRole.objects.get_or_create(prior=roles["admin"], implied=roles["member"])
    ImpliedRole.objects.get_or_create(prior=roles["member"], implied=roles["reader"])
    _role_graph_changed()

    projects = {}
    for name, description in (("admin", "Bootstrap project for the cloud's administrators"),
                              ("demo", "A project for trying Stratus")):
        projects[name], _ = Project.objects.get_or_create(domain=domain, name=name,
                                                          defaults={"description": description})
    admin = _ensure_user(name="admin", domain=domain, password=admin_password, project=projects["admin"])
    demo = _ensure_user(name="demo", domain=domain, password=demo_password, project=projects["demo"])
    for user, project, role in ((admin, projects["admin"], "admin"), (demo, projects["demo"], "member")):
        assignment, _ = RoleAssignment.objects.get_or_create(role=roles[role], user=user, project=project)
        _after_assignment_change(assignment)
    system_admin, _ = RoleAssignment.objects.get_or_create(role=roles["admin"], user=admin,
                                                           system=RoleAssignment.SYSTEM_ALL)
    _after_assignment_change(system_admin)

    region, _ = Region.objects.get_or_create(id=region_id)
    base = public_url.rstrip("/")
    for type_, name, path in CATALOG_SERVICES:
        service = Service.objects.filter(type=type_, name=name).first() or Service.objects.create(
            type=type_, name=name, description=f"{name} ({type_})")
        for interface in ("public", "internal", "admin"):
            url = base + path
            endpoint = Endpoint.objects.filter(service=service, interface=interface, region=region).first()
            if endpoint is None:
                Endpoint.objects.create(service=service, interface=interface, region=region, url=url)
            elif endpoint.url != url:
                endpoint.url = url
                endpoint.save(update_fields=["url", "updated_at"])
    result = {"domain": domain, "projects": projects, "admin": admin, "demo": demo, "region": region}
    signals.bootstrapped.send(sender=bootstrap, result=result)
    return result
