"""Who may do what. An Actor is the caller as one request sees it (from a token for the API, from
the session for the dashboard); the checks below are the only policy, called from services.

- reader: reads inside its project
- member: reads and writes inside its project
- admin: anything, in any project (and the identity administration)
Another project's object is reported as not found, never as forbidden.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from apps.core.errors import Forbidden, NotFound

if TYPE_CHECKING:
    from apps.identity.models import ApplicationCredential, Domain, Project, Token, User

READ_ROLES = frozenset({"reader", "member", "admin"})
WRITE_ROLES = frozenset({"member", "admin"})


@dataclass(frozen=True)
class Actor:
    user: User
    project: Project | None = None
    domain: Domain | None = None
    system: bool = False
    roles: frozenset[str] = field(default_factory=frozenset)
    role_ids: frozenset[str] = field(default_factory=frozenset)
    role_refs: tuple[tuple[str, str], ...] = ()  # (id, name), sorted by name
    token: Token | None = None
    application_credential: ApplicationCredential | None = None

    @property
    def user_id(self) -> str:
        return self.user.id

    @property
    def project_id(self) -> str | None:
        return self.project.id if self.project is not None else None

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    def may_read(self, project_id: str | None) -> bool:
        if self.is_admin:
            return True
        return project_id is not None and project_id == self.project_id and bool(self.roles & READ_ROLES)

    def may_write(self, project_id: str | None) -> bool:
        if self.is_admin:
            return True
        return project_id is not None and project_id == self.project_id and bool(self.roles & WRITE_ROLES)


def require_read(actor: Actor, project_id: str | None, *, what: str = "resource") -> None:
    if not actor.may_read(project_id):
        raise NotFound(f"Could not find {what}.")


def require_write(actor: Actor, project_id: str | None, *, what: str = "resource") -> None:
    """404 when the project is not the caller's, 403 when the caller may only read it."""
    if actor.may_write(project_id):
        return
    if actor.may_read(project_id):
        raise Forbidden(f"You are not authorized to change this {what}: the reader role is read-only.")
    raise NotFound(f"Could not find {what}.")


def require_admin(actor: Actor, *, action: str = "perform this action") -> None:
    if not actor.is_admin:
        raise Forbidden(f"You are not authorized to {action}.")


def require_self_or_admin(actor: Actor, user_id: str, *, action: str = "perform this action") -> None:
    if actor.user_id != user_id and not actor.is_admin:
        raise Forbidden(f"You are not authorized to {action}.")
