"""Domains and projects (and a project's tags)."""
from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.db.models import Q

from apps.core import events
from apps.core.errors import BadRequest, Conflict, Forbidden, NotFound
from apps.core.validators import UNSET, Unset, assign
from apps.identity import selectors, signals
from apps.identity.models import (
    DEFAULT_DOMAIN_ID,
    ApplicationCredential,
    Domain,
    Group,
    Project,
    Role,
    RoleAssignment,
    Token,
    User,
)
from apps.identity.policy import Actor, require_admin, require_write
from apps.identity.services._common import _default_domain_for, _name, _save_unique, _tags
from apps.identity.services.admins import admins_kept

# ---- domains --------------------------------------------------------------------------------

@transaction.atomic
def domain_create(*, actor: Actor, name: str, description: str = "", enabled: bool = True,
                  tags: list[str] | None = None, domain_id: str | None = None) -> Domain:
    require_admin(actor, action="create domains")
    domain = Domain(id=domain_id or uuid.uuid4().hex, name=_name(name, max_length=64),
                    description=description, enabled=enabled, tags=_tags(tags or []))
    _save_unique(domain, "domain", "the cloud")
    events.publish(project_id=None, kind="created", resource="domain", resource_id=domain.id)
    return domain


@transaction.atomic
def domain_update(*, actor: Actor, domain_id: str, name: str | Unset = UNSET, description: str | Unset = UNSET,
                  enabled: bool | Unset = UNSET, tags: list[str] | Unset = UNSET) -> Domain:
    """Change what is given (UNSET: unchanged)."""
    require_admin(actor, action="update domains")
    domain = selectors.domain_get(domain_id=domain_id)
    if domain.id == DEFAULT_DOMAIN_ID and enabled is False:
        raise Forbidden("The default domain cannot be disabled.")
    assign(domain, name=_name(name, max_length=64), description=description, enabled=enabled, tags=_tags(tags))
    with admins_kept(actor=actor, doing="disable the domain of", applies=enabled is False):
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

@transaction.atomic
def project_create(*, actor: Actor, name: str, domain_id: str | None = None, description: str = "",
                   enabled: bool = True, parent_id: str | None = None, tags: list[str] | None = None,
                   extra: Mapping[str, Any] | None = None) -> Project:
    """A project; a ``parent_id`` naming its domain (Keystone's parent of a top-level project) makes a
    top-level one."""
    require_admin(actor, action="create projects")
    domain = selectors.domain_get(domain_id=domain_id or _default_domain_for(actor))
    parent = None
    if parent_id and parent_id == (domain_id or parent_id) and \
            selectors.domain_visible(actor=actor, domain_id=parent_id):
        parent_id = None
    if parent_id:
        parent = Project.objects.filter(id=parent_id).first()
        if parent is None:
            raise NotFound(f"Could not find project: {parent_id}.")
        if parent.domain_id != domain.id:
            raise BadRequest("A project's parent must be in the same domain.")
    project = Project(name=_name(name, max_length=64), domain=domain, parent=parent,
                      description=description, enabled=enabled, tags=_tags(tags or []), extra=dict(extra or {}))
    _save_unique(project, "project", f"domain ID {domain.id}")
    events.publish(project_id=None, kind="created", resource="project", resource_id=project.id,
                   data={"name": project.name})
    return project


@transaction.atomic
def project_update(*, actor: Actor, project_id: str, name: str | Unset = UNSET, description: str | Unset = UNSET,
                   enabled: bool | Unset = UNSET, tags: list[str] | Unset = UNSET, domain_id: str | Unset = UNSET,
                   extra: Mapping[str, Any] | None = None) -> Project:
    """Change what is given (UNSET: unchanged); ``extra`` keys are added to the project's own
    attributes; a ``domain_id`` other than the project's is refused (a project never moves)."""
    require_admin(actor, action="update projects")
    project = selectors.project_get(actor=actor, project_id=project_id)
    if domain_id is not UNSET and domain_id != project.domain_id:
        raise BadRequest("Cannot change the domain of a project.")
    assign(project, name=_name(name, max_length=64), description=description, enabled=enabled, tags=_tags(tags))
    project.extra.update(extra or {})
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
def project_tags_set(*, actor: Actor, project_id: str, tags: list[str]) -> Project:
    """Replace a project's tags (PUT /projects/{id}/tags)."""
    project = _project_to_tag(actor, project_id)
    project.tags = _tags(tags)
    project.save(update_fields=["tags", "updated_at"])
    return project


@transaction.atomic
def project_tag_add(*, actor: Actor, project_id: str, tag: str) -> Project:
    project = _project_to_tag(actor, project_id)
    project.tags = _tags([*project.tags, tag])
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
