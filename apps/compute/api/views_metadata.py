"""The metadata service: what a guest reads from http://169.254.169.254/ (below /metadata/ here).

The guest never talks to this view directly: the network agent's metadata proxy
(workers/drivers/network/metadata_proxy.py) maps the guest's source address to its instance and adds
``X-Instance-ID`` and ``X-Instance-ID-Signature`` (hex HMAC-SHA256 of the id with
STRATUS_METADATA_SECRET), plus the network it saw the request on and the guest's address
(``X-Neutron-Network-ID``, ``X-Forwarded-For``, signed together with the instance id in
``X-Neutron-Network-ID-Signature``). Missing or wrong signatures → 403; an unknown or deleted
instance, or one with no port of its own project holding that address on that network → 404, both
with a plain text body as Nova's metadata API answers.
"""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views import View

from apps.compute.selectors import metadata as selectors
from apps.core.errors import StratusError


class MetadataView(View):
    http_method_names = ["get", "head"]

    def get(self, request: HttpRequest, path: str = "") -> HttpResponse:
        try:
            answer = selectors.metadata_lookup(instance_id=request.headers.get("X-Instance-ID"),
                                               signature=request.headers.get("X-Instance-ID-Signature"),
                                               network_id=request.headers.get("X-Neutron-Network-ID"),
                                               address=request.headers.get("X-Forwarded-For"),
                                               network_sig=request.headers.get("X-Neutron-Network-ID-Signature"),
                                               path=path)
        except StratusError as exc:
            return HttpResponse(f"{exc.status} {exc.title}\n\n{exc.message}\n", status=exc.status,
                                content_type="text/plain; charset=utf-8")
        return HttpResponse(answer.body, content_type=answer.content_type)
