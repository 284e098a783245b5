"""DRF authentication from ``X-Auth-Token``: request.user is the Keystone user, request.auth the
Actor (user, scope, roles) every service takes."""
from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from apps.core.errors import NotFound, Unauthorized
from apps.identity import services
from apps.identity.models import User
from apps.identity.policy import Actor


class TokenAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[User, Actor] | None:
        token = request.META.get("HTTP_X_AUTH_TOKEN")
        if not token:
            return None
        try:
            actor = services.token_validate(token=token)
        except (NotFound, Unauthorized):
            raise exceptions.AuthenticationFailed("The request you have made requires authentication.") from None
        return actor.user, actor

    def authenticate_header(self, request: Request) -> str:
        return f'Keystone uri="{request.build_absolute_uri("/identity")}"'


class IsAuthenticated(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:  # noqa: ARG002
        return isinstance(request.auth, Actor)


class AllowAny(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:  # noqa: ARG002
        return True
