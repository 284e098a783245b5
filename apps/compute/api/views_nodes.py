"""``POST /v1/nodes/enrol``: a new machine exchanges its node enrolment token for what it needs to
join (apps/compute/services/node_enrolment.py). No X-Auth-Token: the token in the body is the
credential. Errors in Keystone's shape (``{"error": {"code", "message", "title"}}``)."""
from __future__ import annotations

from typing import Any, ClassVar

from rest_framework.request import Request
from rest_framework.response import Response

from apps.compute.services import node_enrolment
from apps.core.api import OpenStackView
from apps.core.errors import BadRequest
from apps.identity.api.authentication import AllowAny


def _enrol_input(body: Any) -> dict[str, Any]:
    """The body's typed fields: ``token`` (required), ``name``, ``role``, ``address`` (strings)."""
    if not isinstance(body, dict):
        raise BadRequest("A JSON object with a 'token' is expected.")
    unknown = set(body) - {"token", "name", "role", "address"}
    if unknown:
        raise BadRequest(f"Unknown fields: {', '.join(sorted(unknown))}.")
    for field in ("token", "name", "role", "address"):
        if field in body and not isinstance(body[field], str):
            raise BadRequest(f"Invalid {field}: a string is expected.")
    if not body.get("token"):
        raise BadRequest("A 'token' is required.")
    return {"token": body["token"], "name": body.get("name") or None, "role": body.get("role") or None,
            "address": body.get("address", "")}


class NodeEnrol(OpenStackView):
    authentication_classes: ClassVar[list] = []
    permission_classes: ClassVar[list] = [AllowAny]
    throttle_classes: ClassVar[list] = []

    def post(self, request: Request) -> Response:
        join = node_enrolment.node_enrol(**_enrol_input(request.data))
        node = join.node
        return Response({"node": {"name": node.name, "role": node.role, "address": node.address,
                                  "queue": join.queue, "enrolled_at": node.enrolled_at.isoformat()},
                         "broker_url": join.broker_url, "queue": join.queue, "control_queue": join.control_queue,
                         "controller_url": join.controller_url, "ca": join.ca_pem,
                         "environment": join.environment()}, status=201)
