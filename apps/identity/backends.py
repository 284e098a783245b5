"""Django authentication with Keystone users: the dashboard and the admin console log in by
domain, name and password (the domain defaults to Default)."""
from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from apps.core.errors import Unauthorized
from apps.identity.models import DEFAULT_DOMAIN_ID, Domain, User


class KeystoneBackend(ModelBackend):
    def authenticate(self, request: HttpRequest | None, username: str | None = None,  # noqa: ARG002
                     password: str | None = None, domain: str | None = None, **kwargs: Any) -> User | None:  # noqa: ARG002
        """The Keystone API's password check (identity services.password_authenticate: the same
        cost for an unknown user, the same lockout); the domain is given by id or by name."""
        from apps.identity import services

        if not username or password is None:
            return None
        domain = domain or DEFAULT_DOMAIN_ID
        found = Domain.objects.filter(id=domain).first() or Domain.objects.filter(name=domain).first()
        ref = {"name": username, "domain": {"id": found.id if found is not None else domain}}
        try:
            return services.password_authenticate(user_ref=ref, password=password)
        except Unauthorized:
            return None

    def get_user(self, user_id: Any) -> User | None:
        user = User.objects.select_related("domain").filter(pk=user_id).first()
        return user if user is not None and user.enabled else None
