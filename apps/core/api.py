"""Shared pieces of the OpenStack-compatible APIs: one exception handler that renders every error
in the format of the API the view belongs to (``error_style`` on the view)."""
from __future__ import annotations

import logging
import uuid
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core import errors

log = logging.getLogger(__name__)

NOVA_KEYS = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    429: "overLimit",
    501: "notImplemented",
    503: "serviceUnavailable",
}
NEUTRON_TYPES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "PolicyNotAuthorized",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    413: "OverQuota",
    501: "NotImplemented",
}

HEAT_EXPLANATIONS = {
    400: "The server could not comply with the request since it is either malformed or otherwise incorrect.",
    401: "This server could not verify that you are authorized to access the document you requested.",
    403: "Access was denied to this resource.",
    404: "The resource could not be found.",
    405: "The method specified is not allowed for this resource.",
    409: "There was a conflict when trying to complete your request.",
    413: "The request is larger than the server is willing or able to process.",
}


def error_body(style: str, status: int, message: str, *, kind: str | None = None) -> dict[str, Any]:
    """The body an OpenStack service of ``style`` sends for an error."""
    title = errors.status_title(status)
    if style == "nova":
        return {NOVA_KEYS.get(status, "computeFault"): {"code": status, "message": message}}
    if style == "neutron":
        return {"NeutronError": {"type": kind or NEUTRON_TYPES.get(status, "NeutronError"),
                                 "message": message, "detail": ""}}
    if style == "heat":  # heat.api.middleware.fault: webob's explanation, the error's own type and message
        return {"code": status, "title": title, "explanation": HEAT_EXPLANATIONS.get(status, message),
                "error": {"type": kind or title.replace(" ", ""), "message": message, "traceback": None}}
    if style == "gnocchi":
        return {"code": status, "title": title, "description": message}
    if style == "aodh":  # WSME's fault, as Aodh (and aodhclient's from_response) have it
        return {"error_message": {"faultstring": message, "faultcode": "Client" if status < 500 else "Server",
                                  "debuginfo": None}}
    if style == "glance" or style == "plain":
        return {"code": status, "title": title, "message": message}
    # keystone (and the default)
    return {"error": {"code": status, "message": message, "title": title}}


def _status_and_message(exc: Exception) -> tuple[int, str, str | None]:
    if isinstance(exc, errors.StratusError):
        return exc.status, exc.message, getattr(exc, "kind", None) or type(exc).__name__
    if isinstance(exc, Http404):
        return 404, str(exc) or "The resource could not be found.", "NotFound"
    if isinstance(exc, DjangoValidationError):
        return 400, "; ".join(exc.messages), "BadRequest"
    if isinstance(exc, drf.NotAuthenticated | drf.AuthenticationFailed):
        return 401, "The request you have made requires authentication.", None
    if isinstance(exc, drf.APIException):
        detail = exc.detail
        if isinstance(detail, dict):
            parts = []
            for field, msgs in detail.items():
                text = " ".join(str(m) for m in (msgs if isinstance(msgs, list) else [msgs]))
                parts.append(f"{field}: {text}" if field != "non_field_errors" else text)
            message = "; ".join(parts)
        elif isinstance(detail, list):
            message = " ".join(str(m) for m in detail)
        else:
            message = str(detail)
        return exc.status_code, message, None
    raise exc


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    view = context.get("view")
    style = getattr(view, "error_style", "keystone")
    try:
        status, message, kind = _status_and_message(exc)
    except Exception:  # noqa: BLE001 - not ours: let Django's 500 handling see it
        return None
    response = Response(error_body(style, status, message, kind=kind), status=status)
    if status == 401:
        request = context.get("request")
        base = request.build_absolute_uri("/identity") if request is not None else "/identity"
        response["WWW-Authenticate"] = f'Keystone uri="{base}"'
    return response


class OpenStackView(APIView):
    """Base of every API view: its errors come out in ``error_style``. A view naming
    ``request_id_headers`` gets a request id (``req-<uuid>``, ``self.request_id``, which its services
    may record) sent back in each of those headers."""

    error_style = "keystone"
    request_id_headers: tuple[str, ...] = ()
    request_id = ""

    def initial(self, request: Any, *args: Any, **kwargs: Any) -> None:
        if self.request_id_headers:
            self.request_id = f"req-{uuid.uuid4()}"
        super().initial(request, *args, **kwargs)

    def finalize_response(self, request: Any, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        if self.request_id_headers:
            rid = self.request_id or f"req-{uuid.uuid4()}"  # an error before initial() still has one
            for header in self.request_id_headers:
                response[header] = rid
        return response
