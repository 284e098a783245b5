"""Nova v2.1 ``os-volume_attachments``: a server's volumes, attach and detach. Views parse, call one
service or selector, render. Bodies as at microversion 2.1 (no ``tag`` or ``delete_on_termination``
in requests or answers; the attachment's ``id`` is the volume id)."""
from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response

from apps.compute.api import inputs
from apps.compute.api.views import _int_param
from apps.compute.api.views_servers import ServerView
from apps.compute.models import BlockDeviceMapping
from apps.compute.selectors import volumes as selectors
from apps.compute.services import volumes as services


def attachment_out(bdm: BlockDeviceMapping) -> dict[str, Any]:
    return {"id": bdm.volume_id, "serverId": bdm.instance_id, "volumeId": bdm.volume_id, "device": bdm.device_name}


class ServerVolumeAttachments(ServerView):
    def get(self, request: Request, server_id: str) -> Response:
        rows = selectors.server_volume_list(actor=request.auth, server_id=server_id)
        offset = _int_param(request, "offset") or 0
        limit = _int_param(request, "limit")
        page = rows[offset:offset + limit] if limit is not None else rows[offset:]
        return Response({"volumeAttachments": [attachment_out(b) for b in page]})

    def post(self, request: Request, server_id: str) -> Response:
        bdm = services.server_volume_attach(actor=request.auth, server_id=server_id, request_id=self.request_id,
                                            **vars(inputs.volume_attachment(request.data)))
        return Response({"volumeAttachment": attachment_out(bdm)})


class ServerVolumeAttachment(ServerView):
    def get(self, request: Request, server_id: str, volume_id: str) -> Response:
        bdm = selectors.server_volume_get(actor=request.auth, server_id=server_id, volume_id=volume_id)
        return Response({"volumeAttachment": attachment_out(bdm)})

    def put(self, request: Request, server_id: str, volume_id: str) -> Response:
        """Swapping a volume for another (an admin's call in Nova) is not offered here."""
        services.server_volume_swap(actor=request.auth, server_id=server_id, volume_id=volume_id)  # always refuses

    def delete(self, request: Request, server_id: str, volume_id: str) -> Response:
        services.server_volume_detach(actor=request.auth, server_id=server_id, volume_id=volume_id,
                                      request_id=self.request_id)
        return Response(status=202)
