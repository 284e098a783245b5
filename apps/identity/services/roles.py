"""Roles, role inference rules and role assignments, mirrored into guardian permissions; a
scoped token dies with its user's last role on its scope."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.contrib.auth.models import Group as AuthGroup
from django.contrib.auth.models import Permission
from django.db import transaction
from django.db.models import Q
from guardian.shortcuts import assign_perm, remove_perm

from apps.core import events
from apps.core.errors import BadRequest, Forbidden, NotFound
from apps.core.validators import UNSET, Unset
from apps.identity import selectors
from apps.identity.models import (
    PERM_ADMIN,
    PERM_READ,
    PERM_WRITE,
    Domain,
    Group,
    ImpliedRole,
    Project,
    Role,
    RoleAssignment,
    Token,
    User,
)
from apps.identity.policy import Actor, require_admin
from apps.identity.services._common import ROLE_PERMS, _name, _role_graph_changed, _save_unique
from apps.identity.services.admins import admins_kept

# ---- roles and assignments ------------------------------------------------------------------

@transaction.atomic
def role_create(*, actor: Actor, name: str, domain_id: str | None = None, description: str = "",
                options: Mapping[str, Any] | None = None) -> Role:
    require_admin(actor, action="create roles")
    domain = selectors.domain_get(domain_id=domain_id) if domain_id else None
    role = Role(name=_name(name), domain=domain, description=description, options=dict(options or {}))
    _save_unique(role, "role", f"domain ID {domain.id}" if domain else "the cloud")
    _role_graph_changed()
    return role


@transaction.atomic
def role_update(*, actor: Actor, role_id: str, name: str | Unset = UNSET, description: str | Unset = UNSET,
                options: Mapping[str, Any] | None = None) -> Role:
    """Change what is given (UNSET: unchanged); ``options`` are merged into the role's."""
    require_admin(actor, action="update roles")
    role = selectors.role_get(role_id=role_id)
    if name is not UNSET:
        new_name = _name(name)
        if role.name in ROLE_PERMS and new_name != role.name and role.domain_id is None:
            raise Forbidden(f"The built-in role '{role.name}' cannot be renamed.")
        role.name = new_name
    if description is not UNSET:
        role.description = description
    role.options.update(options or {})
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
    with admins_kept(actor=actor, doing="remove the admin role from", applies=role.name == "admin"):
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
    with admins_kept(actor=actor, doing="remove the admin role from", applies=assignment.role.name == "admin"):
        assignment.delete()
    _after_assignment_change(assignment)
    events.publish(project_id=project.id if project else None, kind="deleted", resource="role_assignment",
                   resource_id=str(assignment.pk or ""), data={"role": assignment.role.name})


@transaction.atomic
def project_member_remove(*, actor: Actor, project_id: str, user_id: str | None = None,
                          group_id: str | None = None) -> list[str]:
    """Remove a user or a group from a project: every role it holds there, in one transaction (all or
    nothing: each revoke keeps role_revoke's rules, so the admin role of one's own account or of the last
    enabled admin is refused and the rest stays). The names of the roles it held."""
    require_admin(actor, action="remove project members")
    user, group = _resolve_actor(user_id=user_id, group_id=group_id)
    project, _, _ = _resolve_target(project_id=project_id, domain_id=None, system=False)
    held = list(RoleAssignment.objects.select_related("role").filter(user=user, group=group, project=project)
                .order_by("role__name", "id"))
    if not held:
        raise NotFound(f"{(user or group).name} has no role on project {project.name}.")  # type: ignore[union-attr]
    for assignment in held:
        role_revoke(actor=actor, role_id=assignment.role_id, user_id=user_id, group_id=group_id,
                    project_id=project.id, inherited=assignment.inherited)  # type: ignore[union-attr]
    return [a.role.name for a in held]


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
