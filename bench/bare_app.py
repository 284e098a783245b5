"""A bare Django JSON view, served by uvicorn exactly like the portal (same settings and
middleware, ASGI): the floor under the Keystone token validation figures.

    DJANGO_SETTINGS_MODULE=bench.bare_settings uvicorn bench.bare_app:application
"""
from __future__ import annotations

import os

from django.core.asgi import get_asgi_application
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

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


@csrf_exempt
def bare_blob(request: HttpRequest, name: str) -> HttpResponse:
    """The floor under the object storage figures: PUT writes the body to a file as the filesystem engine
    does (a temporary file, fsync, rename), GET reads it back; no authentication, no database."""
    import tempfile
    from pathlib import Path

    from django.conf import settings

    root = Path(settings.DATA_DIR) / "bench-bare"
    if request.method == "PUT":
        root.mkdir(parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(dir=root, prefix="put-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(request.body)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(partial, root / name.replace("/", "_"))
        return HttpResponse(status=201)
    try:
        with open(root / name.replace("/", "_"), "rb") as fh:
            return HttpResponse(fh.read(), content_type="application/octet-stream")
    except FileNotFoundError:
        return HttpResponse(status=404)


urlpatterns = [
    path("bench/bare", bare),
    path("bench/bare-auth", bare_authenticated),
    path("bench/blob/<str:name>", bare_blob),
]

application = get_asgi_application()
