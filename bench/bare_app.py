"""A bare Django JSON view, served by uvicorn exactly like the portal (same settings and
middleware, ASGI): the floor under the Keystone token validation figures.

    DJANGO_SETTINGS_MODULE=bench.bare_settings uvicorn bench.bare_app:application
"""
from __future__ import annotations

import os

from django.core.asgi import get_asgi_application
from django.http import HttpRequest, JsonResponse
from django.urls import path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.bare_settings")


def bare(request: HttpRequest) -> JsonResponse:  # noqa: ARG001
    """No authentication, no database: Django's own cost per request."""
    return JsonResponse({"ok": True})


def bare_authenticated(request: HttpRequest) -> JsonResponse:
    """Only the X-Auth-Token check every API request pays (the same service the API calls)."""
    from apps.core.errors import NotFound, Unauthorized
    from apps.identity import services

    try:
        actor = services.token_validate(token=request.headers.get("X-Auth-Token", ""), unauthorized=True)
    except (NotFound, Unauthorized):
        return JsonResponse({"error": {"code": 401, "message": "authentication required"}}, status=401)
    return JsonResponse({"user_id": actor.user_id, "project_id": actor.project_id})


urlpatterns = [
    path("bench/bare", bare),
    path("bench/bare-auth", bare_authenticated),
]

application = get_asgi_application()
