"""Plain helpers that build identity state through the services (as a client would)."""
from __future__ import annotations

from apps.identity import services
from apps.identity.api import parsers
from apps.identity.models import Project, Role, User
from apps.identity.policy import Actor

PASSWORD = "pw-" + "x" * 8


def seed() -> dict:
    """The bootstrap state: Default domain, roles, admin and demo."""
    return services.bootstrap(public_url="http://testserver", admin_password="admin-pw", demo_password="demo-pw")


def admin_actor() -> Actor:
    _, actor = services.token_issue(auth=password_auth("admin", "admin-pw", project="admin"))
    return actor


def password_auth_body(user: str, password: str, *, project: str | None = None, system: bool = False) -> dict:
    """The "auth" object of a POST /auth/tokens that logs ``user`` in with ``password``."""
    auth: dict = {"identity": {"methods": ["password"], "password": {
        "user": {"name": user, "domain": {"id": "default"}, "password": password}}}}
    if project:
        auth["scope"] = {"project": {"name": project, "domain": {"id": "default"}}}
    elif system:
        auth["scope"] = {"system": {"all": True}}
    return auth


def password_auth(user: str, password: str, *, project: str | None = None, system: bool = False
                  ) -> services.AuthRequest:
    """The same request, as services.token_issue takes it."""
    return parsers.auth(password_auth_body(user, password, project=project, system=system))


def user_with_role(admin: Actor, name: str, role: str, project: Project) -> User:
    user = services.user_create(actor=admin, name=name, password=PASSWORD, default_project_id=project.id)
    services.role_grant(actor=admin, role_id=Role.objects.get(name=role).id, user_id=user.id, project_id=project.id)
    return user


def login(name: str, project: Project) -> tuple[str, Actor]:
    return services.token_issue(auth=password_auth(name, PASSWORD, project=project.name))
