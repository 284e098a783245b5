"""Cinder v3 API: version discovery, volumes (and their actions and metadata), snapshots, volume
types, limits. Views parse, call one service or selector, render; errors in Cinder's format."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core import microversion, pagination
from apps.core import validators as check
from apps.core.api import OpenStackView
from apps.core.errors import BadRequest, NotFound, QuotaExceeded, StratusError
from apps.identity.api.authentication import AllowAny
from apps.volumes import selectors, services
from apps.volumes.api import inputs
from apps.volumes.api import serializers as out

HEADER = "OpenStack-API-Version"


class OverLimit(StratusError):
    status = 413


def negotiate(request: Request) -> str:
    """``OpenStack-API-Version: volume X.Y`` (3.0 to 3.44; ``latest`` is the maximum, nothing is
    3.0). Out of range → 406."""
    return microversion.version_str(microversion.negotiate(
        request, service="volume", minimum=out.version_tuple(out.MIN_VERSION),
        maximum=out.version_tuple(out.MAX_VERSION),
        invalid="API Version String {wanted} is of invalid format. Must be of format MajorNum.MinorNum."))


class JSONAlways(DefaultContentNegotiation):
    def select_renderer(self, request: Request, renderers: list, format_suffix: str | None = None) -> tuple:
        return renderers[0], renderers[0].media_type


class CinderView(OpenStackView):
    error_style = "nova"  # Cinder's faults have the same shape: {"itemNotFound": {"code", "message"}}
    content_negotiation_class = JSONAlways

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        request.volume_version = negotiate(request)
        super().initial(request, *args, **kwargs)
        project_id = kwargs.get("project_id")
        if project_id is not None and request.auth is not None and project_id != request.auth.project_id:
            raise BadRequest("Malformed request url")

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, QuotaExceeded) and exc.resource == "per_volume_gigabytes":
            exc = OverLimit(f"VolumeSizeExceedsLimit: {exc.message}")
        elif isinstance(exc, QuotaExceeded):  # Cinder answers 413 for a quota it would exceed
            gigabytes = exc.resource == "gigabytes" or exc.resource.startswith("gigabytes_")
            exc = OverLimit(f"VolumeLimitExceeded: {exc.message}" if not gigabytes else
                            f"VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed "
                            f"{exc.resource} quota. Requested {exc.requested}G, quota is {exc.limit}G and "
                            f"{exc.in_use}G has been consumed.")
        return super().handle_exception(exc)

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        if getattr(request, "volume_version", None) is not None:
            response[HEADER] = f"volume {request.volume_version}"
            response["Vary"] = HEADER
        return response


def _root(request: Request) -> str:
    return request.build_absolute_uri("/volume").rstrip("/")


def _base(request: Request, project_id: str) -> str:
    return f"{_root(request)}/v3/{project_id}"


def _params(request: Request) -> dict[str, str]:
    return dict(request.query_params.items())


# ---- version discovery ---------------------------------------------------------------------------

class Versions(CinderView):
    authentication_classes: ClassVar[list] = []
    permission_classes: ClassVar[list] = [AllowAny]

    def get(self, request: Request) -> Response:
        return Response({"versions": [out.version_v3(_root(request))]}, status=300)


class Version(Versions):
    def get(self, request: Request) -> Response:
        return Response({"versions": [out.version_v3(_root(request))]})


# ---- volumes -------------------------------------------------------------------------------------

class _Collection(CinderView):
    """A list (brief, or detailed under ``/detail``) with Cinder's next link when a page is full, and
    the create (POST; 405 under ``/detail``). ``kind`` names the list query's kind and the bodies' key."""

    detail = False
    kind: ClassVar[str]

    def rows(self, request: Request, query: selectors.ListQuery) -> list[Any]:
        raise NotImplementedError

    def render(self, request: Request, row: Any, base: str) -> dict[str, Any]:
        raise NotImplementedError

    def create(self, request: Request, base: str) -> dict[str, Any]:
        raise NotImplementedError

    def get(self, request: Request, project_id: str) -> Response:
        query = selectors.parse_list_query(_params(request), kind=self.kind)
        rows = self.rows(request, query)
        base = _base(request, project_id)
        return Response({f"{self.kind}s": [self.render(request, row, base) for row in rows], **pagination.next_links(
            request, f"{self.kind}s", f"{base}/{self.kind}s{'/detail' if self.detail else ''}", rows,
            limit=query.limit, marker=lambda row: row.id)})

    def post(self, request: Request, project_id: str) -> Response:
        if self.detail:
            self.http_method_not_allowed(request)  # 405 in the API's error format
        return Response({self.kind: self.create(request, _base(request, project_id))}, status=202)


class _ActionView(CinderView):
    """``POST .../action {"<name>": body}``: the one action, through its entry in ``actions`` (the
    status it answers, and what it runs with the actor, the body and the id from the URL). An unknown
    action is a 404 when the resource is not the caller's (``show``), a 400 when it is."""

    actions: ClassVar[Mapping[str, tuple[int, Callable[..., object]]]]
    show: ClassVar[Callable[..., object]]

    def post(self, request: Request, project_id: str, **ids: str) -> Response:
        action, body = inputs.single_action(request.data)
        if action not in self.actions:
            type(self).show(actor=request.auth, **ids)
            raise BadRequest(f"There is no such action: {action}")
        status, run = self.actions[action]
        run(request.auth, body, **ids)
        return Response(status=status)


class _Metadata(CinderView):
    """GET, POST (merge) and PUT (replace) the metadata of a volume or a snapshot (``read`` and
    ``write`` take the id from the URL)."""

    read: ClassVar[Callable[..., dict[str, str]]]
    write: ClassVar[Callable[..., dict[str, str]]]

    def get(self, request: Request, project_id: str, **ids: str) -> Response:
        return Response({"metadata": type(self).read(actor=request.auth, **ids)})

    def post(self, request: Request, project_id: str, **ids: str) -> Response:
        return Response({"metadata": type(self).write(actor=request.auth, metadata=inputs.metadata(request.data),
                                                      replace=False, **ids)})

    def put(self, request: Request, project_id: str, **ids: str) -> Response:
        return Response({"metadata": type(self).write(actor=request.auth, metadata=inputs.metadata(request.data),
                                                      replace=True, **ids)})


class _MetadataItem(CinderView):
    """GET, PUT and DELETE one metadata item of a volume or a snapshot."""

    read: ClassVar[Callable[..., dict[str, str]]]
    write: ClassVar[Callable[..., dict[str, str]]]
    remove: ClassVar[Callable[..., None]]

    def get(self, request: Request, project_id: str, key: str, **ids: str) -> Response:
        meta = type(self).read(actor=request.auth, **ids)
        if key not in meta:
            raise NotFound(f"Metadata item was not found: {key}")
        return Response({"meta": {key: meta[key]}})

    def put(self, request: Request, project_id: str, key: str, **ids: str) -> Response:
        return Response({"meta": type(self).write(actor=request.auth, key=key,
                                                  value=inputs.metadata_item(request.data, key), **ids)})

    def delete(self, request: Request, project_id: str, key: str, **ids: str) -> Response:
        type(self).remove(actor=request.auth, key=key, **ids)
        return Response(status=200)


# ---- volumes -------------------------------------------------------------------------------------

class Volumes(_Collection):
    kind = "volume"

    def rows(self, request: Request, query: selectors.ListQuery) -> list[Any]:
        return selectors.volume_list(actor=request.auth, query=query)

    def render(self, request: Request, row: Any, base: str) -> dict[str, Any]:
        if self.detail:
            return out.volume_detail(row, base, admin=request.auth.is_admin, version=request.volume_version)
        return out.volume_brief(row, base)

    def create(self, request: Request, base: str) -> dict[str, Any]:
        volume = services.volume_create(actor=request.auth, **vars(inputs.volume_create(request.data)))
        volume = selectors.volume_get(actor=request.auth, volume_id=volume.id)
        return out.volume_out(volume, base, version=request.volume_version, admin=request.auth.is_admin)


class VolumesDetail(Volumes):
    detail = True


class VolumeSummary(CinderView):
    def get(self, request: Request, project_id: str) -> Response:
        summary = selectors.volume_summary(actor=request.auth, all_tenants="all_tenants" in request.query_params)
        if out.at_least(request.volume_version, "3.36"):
            summary["metadata"] = selectors.volume_summary_metadata(
                actor=request.auth, all_tenants="all_tenants" in request.query_params)
        return Response({"volume-summary": summary})


class VolumeDetail(CinderView):
    def get(self, request: Request, project_id: str, volume_id: str) -> Response:
        volume = selectors.volume_get(actor=request.auth, volume_id=volume_id)
        return Response({"volume": out.volume_detail(volume, _base(request, project_id),
                                                     admin=request.auth.is_admin, version=request.volume_version)})

    def put(self, request: Request, project_id: str, volume_id: str) -> Response:
        volume = services.volume_update(actor=request.auth, volume_id=volume_id,
                                        **vars(inputs.volume_update(request.data)))
        return Response({"volume": out.volume_out(volume, _base(request, project_id), version=request.volume_version,
                                                  admin=request.auth.is_admin)})

    def delete(self, request: Request, project_id: str, volume_id: str) -> Response:
        services.volume_delete(actor=request.auth, volume_id=volume_id,
                               cascade=check.flag(request.query_params.get("cascade")))
        return Response(status=202)


class VolumeAction(_ActionView):
    show = staticmethod(selectors.volume_get)
    actions = {
        "os-extend": (202, lambda actor, body, volume_id: services.volume_extend(
            actor=actor, volume_id=volume_id, new_size=inputs.volume_extend(body))),
        "os-set_bootable": (200, lambda actor, body, volume_id: services.volume_set_bootable(
            actor=actor, volume_id=volume_id, bootable=inputs.volume_set_bootable(body))),
        "os-reserve": (202, lambda actor, _body, volume_id: services.volume_begin_attaching(
            actor=actor, volume_id=volume_id)),
        "os-unreserve": (202, lambda actor, _body, volume_id: services.volume_roll_attaching(
            actor=actor, volume_id=volume_id)),
        "os-attach": (202, lambda actor, body, volume_id: services.volume_attach_record(
            actor=actor, volume_id=volume_id, **vars(inputs.volume_attach_record(body)))),
        "os-detach": (202, lambda actor, body, volume_id: services.volume_detach_record(
            actor=actor, volume_id=volume_id, attachment_id=inputs.volume_detach_record(body))),
    }


class VolumeMetadata(_Metadata):
    read = staticmethod(selectors.volume_metadata)
    write = staticmethod(services.volume_metadata_set)


class VolumeMetadataItem(_MetadataItem):
    read = staticmethod(selectors.volume_metadata)
    write = staticmethod(services.volume_metadata_item_set)
    remove = staticmethod(services.volume_metadata_item_delete)


# ---- snapshots -----------------------------------------------------------------------------------

class Snapshots(_Collection):
    kind = "snapshot"

    def rows(self, request: Request, query: selectors.ListQuery) -> list[Any]:
        return selectors.snapshot_list(actor=request.auth, query=query)

    def render(self, request: Request, row: Any, base: str) -> dict[str, Any]:
        if self.detail:
            return out.snapshot_detail(row, request.volume_version)
        return out.snapshot_summary(row)

    def create(self, request: Request, base: str) -> dict[str, Any]:
        snapshot = services.snapshot_create(actor=request.auth, **vars(inputs.snapshot_create(request.data)))
        snapshot = selectors.snapshot_get(actor=request.auth, snapshot_id=snapshot.id)
        return out.snapshot_out(snapshot, request.volume_version)


class SnapshotsDetail(Snapshots):
    detail = True


class SnapshotDetail(CinderView):
    def get(self, request: Request, project_id: str, snapshot_id: str) -> Response:
        return Response({"snapshot": out.snapshot_detail(
            selectors.snapshot_get(actor=request.auth, snapshot_id=snapshot_id), request.volume_version)})

    def put(self, request: Request, project_id: str, snapshot_id: str) -> Response:
        snapshot = services.snapshot_update(actor=request.auth, snapshot_id=snapshot_id,
                                            **vars(inputs.snapshot_update(request.data)))
        return Response({"snapshot": out.snapshot_out(snapshot, request.volume_version)})

    def delete(self, request: Request, project_id: str, snapshot_id: str) -> Response:
        services.snapshot_delete(actor=request.auth, snapshot_id=snapshot_id)
        return Response(status=202)


class SnapshotMetadata(_Metadata):
    read = staticmethod(selectors.snapshot_metadata)
    write = staticmethod(services.snapshot_metadata_set)


class SnapshotMetadataItem(_MetadataItem):
    read = staticmethod(selectors.snapshot_metadata)
    write = staticmethod(services.snapshot_metadata_item_set)
    remove = staticmethod(services.snapshot_metadata_item_delete)


# ---- volume types --------------------------------------------------------------------------------

def _is_public_param(request: Request) -> bool | None:
    value = request.query_params.get("is_public")
    if value is None:
        return True
    if value.lower() in ("none", "null"):
        return None
    return check.flag(value)


class VolumeTypes(CinderView):
    def get(self, request: Request, project_id: str) -> Response:
        services.volume_type_default()
        types = selectors.volume_type_list(actor=request.auth, is_public=_is_public_param(request))
        admin = request.auth.is_admin
        return Response({"volume_types": [out.volume_type_out(t, admin=admin) for t in types]})

    def post(self, request: Request, project_id: str) -> Response:
        vtype = services.volume_type_create(actor=request.auth, **vars(inputs.volume_type_create(request.data)))
        return Response({"volume_type": out.volume_type_out(vtype, admin=True)})


class VolumeTypeDefault(CinderView):
    def get(self, request: Request, project_id: str) -> Response:
        vtype = services.volume_type_default()
        return Response({"volume_type": out.volume_type_out(vtype, admin=request.auth.is_admin)})


class VolumeTypeDetail(CinderView):
    def get(self, request: Request, project_id: str, type_id: str) -> Response:
        if type_id == "default":
            vtype = services.volume_type_default()
        else:
            vtype = selectors.volume_type_get(actor=request.auth, type_id=type_id)
        return Response({"volume_type": out.volume_type_out(vtype, admin=request.auth.is_admin)})

    def put(self, request: Request, project_id: str, type_id: str) -> Response:
        vtype = services.volume_type_update(actor=request.auth, type_id=type_id,
                                            **vars(inputs.volume_type_update(request.data)))
        body = out.volume_type_out(vtype, admin=True)
        body.pop("os-volume-type-access:is_public")  # not in Cinder's update answer
        return Response({"volume_type": body})

    def delete(self, request: Request, project_id: str, type_id: str) -> Response:
        services.volume_type_delete(actor=request.auth, type_id=type_id)
        return Response(status=202)


# ---- quotas and limits ---------------------------------------------------------------------------

class QuotaSet(CinderView):
    def get(self, request: Request, project_id: str, target: str) -> Response:
        quota = selectors.volume_quota(actor=request.auth, project_id=target)
        if check.flag(request.query_params.get("usage")):
            body: dict[str, Any] = {k: {"limit": v["limit"], "in_use": v["in_use"], "reserved": 0}
                                    for k, v in quota.items()}
        else:
            body = {k: v["limit"] for k, v in quota.items()}
        return Response({"quota_set": {"id": target, **body}})

    def put(self, request: Request, project_id: str, target: str) -> Response:
        limits = services.volume_quota_update(actor=request.auth, project_id=target,
                                              limits=inputs.quota_limits(request.data, "quota_set"))
        return Response({"quota_set": limits})

    def delete(self, request: Request, project_id: str, target: str) -> Response:
        services.volume_quota_delete(actor=request.auth, project_id=target)
        return Response(status=200)


class QuotaSetDefaults(CinderView):
    def get(self, request: Request, project_id: str, target: str) -> Response:
        return Response({"quota_set": {"id": target, **selectors.volume_quota_defaults()}})


class QuotaClassSet(CinderView):
    def get(self, request: Request, project_id: str, class_name: str) -> Response:
        return Response({"quota_class_set": {"id": class_name, **selectors.volume_quota_class(actor=request.auth)}})

    def put(self, request: Request, project_id: str, class_name: str) -> Response:
        limits = services.volume_quota_defaults_update(actor=request.auth, class_name=class_name,
                                                       limits=inputs.quota_limits(request.data, "quota_class_set"))
        return Response({"quota_class_set": limits})


class Limits(CinderView):
    def get(self, request: Request, project_id: str) -> Response:
        q = selectors.volume_quota(actor=request.auth, project_id=request.auth.project_id)
        return Response({"limits": {"rate": [], "absolute": {
            "maxTotalVolumes": q["volumes"]["limit"], "totalVolumesUsed": q["volumes"]["in_use"],
            "maxTotalVolumeGigabytes": q["gigabytes"]["limit"], "totalGigabytesUsed": q["gigabytes"]["in_use"],
            "maxTotalSnapshots": q["snapshots"]["limit"], "totalSnapshotsUsed": q["snapshots"]["in_use"],
            "maxTotalBackups": 0, "totalBackupsUsed": 0, "maxTotalBackupGigabytes": 0,
            "totalBackupGigabytesUsed": 0}}})


class Extensions(CinderView):
    """No API extensions beyond the core v3 API are offered."""

    def get(self, request: Request, project_id: str) -> Response:
        return Response({"extensions": []})


class VolumeTypeExtraSpecs(CinderView):
    def get(self, request: Request, project_id: str, type_id: str) -> Response:
        vtype = selectors.volume_type_get(actor=request.auth, type_id=type_id)
        return Response({"extra_specs": dict(vtype.extra_specs or {})})

    def post(self, request: Request, project_id: str, type_id: str) -> Response:
        data = request.data if isinstance(request.data, dict) else {}
        specs = services.volume_type_extra_specs_set(actor=request.auth, type_id=type_id,
                                                     specs=inputs.extra_specs(data.get("extra_specs")))
        return Response({"extra_specs": specs})


class VolumeTypeExtraSpec(CinderView):
    def get(self, request: Request, project_id: str, type_id: str, key: str) -> Response:
        vtype = selectors.volume_type_get(actor=request.auth, type_id=type_id)
        if key not in (vtype.extra_specs or {}):
            raise NotFound(f"Volume Type {vtype.id} has no extra specs with key {key}.")
        return Response({key: vtype.extra_specs[key]})

    def put(self, request: Request, project_id: str, type_id: str, key: str) -> Response:
        return Response(services.volume_type_extra_specs_set(actor=request.auth, type_id=type_id,
                                                             specs=inputs.extra_specs(request.data, key)))

    def delete(self, request: Request, project_id: str, type_id: str, key: str) -> Response:
        services.volume_type_extra_spec_delete(actor=request.auth, type_id=type_id, key=key)
        return Response(status=202)


class SnapshotAction(_ActionView):
    show = staticmethod(selectors.snapshot_get)
    actions = {
        "os-reset_status": (202, lambda actor, body, snapshot_id: services.snapshot_reset_status(
            actor=actor, snapshot_id=snapshot_id, status=inputs.snapshot_status(body))),
        "os-force_delete": (202, lambda actor, _body, snapshot_id: services.snapshot_force_delete(
            actor=actor, snapshot_id=snapshot_id)),
        "os-update_snapshot_status": (202, lambda actor, body, snapshot_id: services.snapshot_update_status(
            actor=actor, snapshot_id=snapshot_id, status=inputs.snapshot_status(body),
            progress=inputs.snapshot_progress(body))),
    }


class AvailabilityZones(CinderView):
    def get(self, request: Request, project_id: str) -> Response:
        zones = selectors.availability_zones()
        return Response({"availabilityZoneInfo": [{"zoneName": name, "zoneState": {"available": up}}
                                                  for name, up in zones]})


class Pools(CinderView):
    def get(self, request: Request, project_id: str) -> Response:
        detail = check.flag(request.query_params.get("detail"))
        pools = []
        for backend in selectors.backend_list(actor=request.auth):
            pool: dict[str, Any] = {"name": backend.full_host}
            if detail:
                pool["capabilities"] = {
                    "updated": out.ts(backend.last_heartbeat), "QoS_support": False,
                    "total_capacity_gb": backend.capacity_gb, "free_capacity_gb": backend.free_gb,
                    "volume_backend_name": backend.backend_name, "driver_version": "1.0",
                    "reserved_percentage": 0, "storage_protocol": "file", "vendor_name": "Open Source",
                    "timestamp": out.ts(backend.last_heartbeat)}
            pools.append(pool)
        return Response({"pools": pools})


def _capabilities(backend: Any) -> dict[str, Any]:
    return {"namespace": f"OS::Storage::Capabilities::{backend.host}@{backend.backend_name}",
            "vendor_name": "Open Source", "volume_backend_name": backend.backend_name, "pool_name": backend.pool,
            "driver_version": "1.0", "storage_protocol": "file", "display_name": "File-backed qcow2 volumes",
            "description": "Volumes as qcow2 files through qemu-img", "visibility": "public",
            "replication_targets": [], "properties": {
                "thin_provisioning": {"title": "Thin Provisioning", "type": "boolean",
                                      "description": "Volumes are sparse qcow2 files."}}}


class Capabilities(CinderView):
    def get(self, request: Request, project_id: str, hostname: str) -> Response:
        backend = selectors.backend_get(actor=request.auth, name=hostname)
        return Response(_capabilities(backend))


# ---- attachments (3.27; os-complete 3.44) ------------------------------------------------------------

class _AttachmentsView(CinderView):
    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if not out.at_least(request.volume_version, "3.27"):
            raise NotFound("The resource could not be found.")


def _attachment_body(attachment: Any) -> dict[str, Any]:
    return out.attachment_detail(attachment, selectors.attachment_connection(attachment))


class Attachments(_AttachmentsView):
    detail = False

    def get(self, request: Request, project_id: str) -> Response:
        found = selectors.attachment_list(actor=request.auth, params=_params(request))
        render = _attachment_body if self.detail else out.attachment_summary
        return Response({"attachments": [render(a) for a in found]})

    def post(self, request: Request, project_id: str) -> Response:
        if self.detail:
            self.http_method_not_allowed(request)  # 405 in the API's error format
        attachment = services.attachment_create(actor=request.auth, **vars(inputs.attachment_create(
            request.data, with_mode=out.at_least(request.volume_version, "3.54"))))
        attachment = selectors.attachment_get(actor=request.auth, attachment_id=attachment.id)
        return Response({"attachment": _attachment_body(attachment)})


class AttachmentsDetail(Attachments):
    detail = True


class AttachmentDetail(_AttachmentsView):
    def get(self, request: Request, project_id: str, attachment_id: str) -> Response:
        attachment = selectors.attachment_get(actor=request.auth, attachment_id=attachment_id)
        return Response({"attachment": _attachment_body(attachment)})

    def put(self, request: Request, project_id: str, attachment_id: str) -> Response:
        services.attachment_update(actor=request.auth, attachment_id=attachment_id,
                                   connector=inputs.attachment_update(request.data))
        attachment = selectors.attachment_get(actor=request.auth, attachment_id=attachment_id)
        return Response({"attachment": _attachment_body(attachment)})

    def delete(self, request: Request, project_id: str, attachment_id: str) -> Response:
        left = services.attachment_delete(actor=request.auth, attachment_id=attachment_id)
        return Response({"attachments": [out.attachment_summary(a) for a in left]})


class AttachmentAction(_AttachmentsView):
    def post(self, request: Request, project_id: str, attachment_id: str) -> Response:
        data = request.data
        if not isinstance(data, dict) or set(data) != {"os-complete"} or \
                not out.at_least(request.volume_version, "3.44"):
            selectors.attachment_get(actor=request.auth, attachment_id=attachment_id)
            raise BadRequest("Invalid request body: the only attachment action is os-complete (3.44).")
        services.attachment_complete(actor=request.auth, attachment_id=attachment_id)
        return Response(status=204)


class Unknown(CinderView):
    """Any other path under a project (``volumes/`` with no id, ...): Cinder's 404."""

    def _not_found(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        raise NotFound("The resource could not be found.")

    get = post = put = delete = patch = _not_found
