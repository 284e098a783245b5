"""The ``shell`` template variable: header (project switcher, user) and navigation. Lazy, so pages
that never show the shell (the Django admin, error pages of the APIs) pay nothing for it."""
from __future__ import annotations

from functools import cached_property

from django.db.models import QuerySet
from django.http import HttpRequest

from apps.dashboard import panels
from apps.dashboard.shell import session_actor
from apps.identity import selectors
from apps.identity.models import Project
from apps.identity.policy import Actor


class Shell:
    def __init__(self, request: HttpRequest) -> None:
        self.request = request

    @cached_property
    def authenticated(self) -> bool:
        user = getattr(self.request, "user", None)
        return bool(user is not None and user.is_authenticated)

    @cached_property
    def actor(self) -> Actor | None:
        return session_actor(self.request) if self.authenticated else None

    @cached_property
    def project(self) -> Project | None:
        return self.actor.project if self.actor is not None else None

    @cached_property
    def roles(self) -> list[str]:
        return [name for _, name in self.actor.role_refs] if self.actor is not None else []

    @cached_property
    def is_admin(self) -> bool:
        return bool(self.actor is not None and self.actor.is_admin)

    @cached_property
    def projects(self) -> QuerySet[Project] | list[Project]:
        """What the switcher offers: the projects the user may act in."""
        if not self.authenticated:
            return []
        return selectors.user_project_choices(user=self.request.user)  # type: ignore[arg-type]

    @cached_property
    def nav(self) -> list[panels.NavSection]:
        if not self.authenticated:
            return []
        return panels.nav(is_admin=self.is_admin, path=self.request.path)


def shell(request: HttpRequest) -> dict[str, Shell]:
    return {"shell": Shell(request)}
