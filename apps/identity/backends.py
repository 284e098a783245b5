"""Django authentication with Keystone users: the dashboard and the admin console log in by
domain, name and password (the domain defaults to Default)."""
from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.hashers import check_password
from django.http import HttpRequest

from apps.identity.models import DEFAULT_DOMAIN_ID, User


class KeystoneBackend(ModelBackend):
    def authenticate(self, request: HttpRequest | None, username: str | None = None,
                     password: str | None = None, domain: str | None = None, **kwargs: Any) -> User | None:
        if not username or password is None:
            return None
        domain = domain or DEFAULT_DOMAIN_ID
        user = (User.objects.select_related("domain")
                .filter(name=username, domain__enabled=True)
                .filter(domain__id=domain).first()
                or User.objects.select_related("domain").filter(name=username, domain__name=domain).first())
        if user is None:
            check_password(password, "!")  # an unusable hash: same cost as a real check, always False
            return None
        if not user.enabled or not user.domain.enabled or not check_password(password, user.password):
            return None
        return user

    def get_user(self, user_id: Any) -> User | None:
        user = User.objects.select_related("domain").filter(pk=user_id).first()
        return user if user is not None and user.enabled else None
