"""The page a noVNC console URL opens (``/console/vnc/?token=``, what os-remote-consoles answers for
protocol vnc): noVNC on the token's socket, no dashboard session needed. The page only carries the
token; the socket redeems it (once) and makes every check (apps/compute/consumers.py)."""
from __future__ import annotations

from urllib.parse import quote

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET


@require_GET
def console_vnc(request: HttpRequest) -> HttpResponse:
    token = request.GET.get("token", "")[:256]
    response = render(request, "compute/console_vnc.html",
                      {"socket_path": f"/ws/console/vnc/?token={quote(token, safe='')}"})
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"  # the token is in this page's URL
    return response
