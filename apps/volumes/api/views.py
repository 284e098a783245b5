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
from apps.core.resources import Collection, Creatable, Deletable, Member, Updatable
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

class _Paged(CinderView, Collection, Creatable):
    """A list of volumes or snapshots (brief, or detailed under ``/detail``) from the list query of
    kind ``key``, with Cinder's next link when a page is full; the create answers 202."""

    created_status = 202
    query: selectors.ListQuery

    def listed(self, request: Request) -> list[Any]:
        raise NotImplementedError

    def rows(self, request: Request, **kwargs: str) -> list[Any]:
        self.query = selectors.parse_list_query(_params(request), kind=self.key)
        return self.listed(request)

    def links(self, request: Request, rows: list[Any], *, project_id: str) -> dict[str, Any]:
        url = f"{_base(request, project_id)}/{self.plural}{'/detail' if self.detail else ''}"
        return pagination.next_links(request, self.plural, url, rows, limit=self.query.limit, marker=lambda row: row.id)


class _ActionView(CinderView):
    """``POST .../action {"<name>": body}``: the one action, through its entry in ``actions``: the
    status it answers, what its parser makes of the body (the service's own arguments) and the typed
    service, called with the actor and the id from the URL. An unknown action is a 404 when the
    resource is not the caller's (``show``), a 400 when it is. An action with an answer body names
    how the service's result is rendered in ``answers`` (``{"<name>": rendered}``)."""

    actions: ClassVar[Mapping[str, tuple[int, Callable[[Any], dict[str, Any]], Callable[..., object]]]]
    answers: ClassVar[Mapping[str, Callable[[Request, Any], dict[str, Any]]]] = {}
    show: ClassVar[Callable[..., object]]

    def post(self, request: Request, project_id: str, **ids: str) -> Response:
        action, body = inputs.single_action(request.data)
        if action not in self.actions:
            type(self).show(actor=request.auth, **ids)
            raise BadRequest(f"There is no such action: {action}")
        status, parse, service = self.actions[action]
        result = service(actor=request.auth, **ids, **parse(body))
        render = self.answers.get(action)
        return Response({action: render(request, result)} if render else None, status=status)


def _no_arguments(_body: Any) -> dict[str, Any]:
    return {}


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


def _metadata_views(name: str, read: Callable[..., dict[str, str]], write: Callable[..., dict[str, str]],
                    write_item: Callable[..., dict[str, str]], remove_item: Callable[..., None],
                    ) -> tuple[type[_Metadata], type[_MetadataItem]]:
    """The metadata views of a volume or a snapshot (``name``), through its selector and services."""
    return (type(f"{name}Metadata", (_Metadata,), {"read": staticmethod(read), "write": staticmethod(write)}),
            type(f"{name}MetadataItem", (_MetadataItem,), {"read": staticmethod(read),
                                                             "write": staticmethod(write_item),
                                                             "remove": staticmethod(remove_item)}))


# ---- volumes -------------------------------------------------------------------------------------

class Volumes(_Paged):
    key, plural = "volume", "volumes"

    def listed(self, request: Request) -> list[Any]:
        return selectors.volume_list(actor=request.auth, query=self.query)

    def render(self, request: Request, row: Any, *, project_id: str) -> dict[str, Any]:
        if self.detail:
            return out.volume_detail(row, _base(request, project_id), admin=request.auth.is_admin,
                                     version=request.volume_version)
        return out.volume_brief(row, _base(request, project_id))

    def create(self, request: Request, *, project_id: str) -> dict[str, Any]:
        volume = services.volume_create(actor=request.auth, **vars(inputs.volume_create(request.data)))
        volume = selectors.volume_get(actor=request.auth, volume_id=volume.id)
        return out.volume_out(volume, _base(request, project_id), version=request.volume_version,
                              admin=request.auth.is_admin)


class VolumeSummary(CinderView):
    def get(self, request: Request, project_id: str) -> Response:
        summary = selectors.volume_summary(actor=request.auth, all_tenants="all_tenants" in request.query_params)
        if out.at_least(request.volume_version, "3.36"):
            summary["metadata"] = selectors.volume_summary_metadata(
                actor=request.auth, all_tenants="all_tenants" in request.query_params)
        return Response({"volume-summary": summary})


class VolumeDetail(CinderView, Member, Updatable, Deletable):
    key, id, deleted_status = "volume", "volume_id", 202
    lookup = selectors.volume_get

    def render(self, request: Request, row: Any, *, project_id: str, **ids: str) -> dict[str, Any]:
        return out.volume_detail(row, _base(request, project_id), admin=request.auth.is_admin,
                                 version=request.volume_version)

    def update(self, request: Request, *, project_id: str, volume_id: str) -> dict[str, Any]:
        volume = services.volume_update(actor=request.auth, volume_id=volume_id,
                                        **vars(inputs.volume_update(request.data)))
        return out.volume_out(volume, _base(request, project_id), version=request.volume_version,
                              admin=request.auth.is_admin)

    def remove(self, request: Request, *, project_id: str, volume_id: str) -> None:
        services.volume_delete(actor=request.auth, volume_id=volume_id,
                               cascade=check.flag(request.query_params.get("cascade")))


class VolumeAction(_ActionView):
    show = staticmethod(selectors.volume_get)
    actions = {
        "os-extend": (202, lambda body: {"new_size": inputs.volume_extend(body)}, services.volume_extend),
        "os-set_bootable": (200, lambda body: {"bootable": inputs.volume_set_bootable(body)},
                            services.volume_set_bootable),
        "os-reserve": (202, _no_arguments, services.volume_begin_attaching),
        "os-unreserve": (202, _no_arguments, services.volume_roll_attaching),
        "os-attach": (202, lambda body: vars(inputs.volume_attach_record(body)), services.volume_attach_record),
        "os-detach": (202, lambda body: {"attachment_id": inputs.volume_detach_record(body)},
                      services.volume_detach_record),
        "os-volume_upload_image": (202, lambda body: vars(inputs.volume_upload_image(body)),
                                   services.volume_upload_to_image),
    }
    answers = {"os-volume_upload_image": lambda request, upload: out.volume_upload_out(
        upload, admin=request.auth.is_admin)}


VolumeMetadata, VolumeMetadataItem = _metadata_views(
    "Volume", selectors.volume_metadata, services.volume_metadata_set, services.volume_metadata_item_set,
    services.volume_metadata_item_delete)


# ---- snapshots -----------------------------------------------------------------------------------

class Snapshots(_Paged):
    key, plural = "snapshot", "snapshots"

    def listed(self, request: Request) -> list[Any]:
        return selectors.snapshot_list(actor=request.auth, query=self.query)

    def render(self, request: Request, row: Any, **kwargs: str) -> dict[str, Any]:
        if self.detail:
            return out.snapshot_detail(row, request.volume_version)
        return out.snapshot_summary(row)

    def create(self, request: Request, **kwargs: str) -> dict[str, Any]:
        snapshot = services.snapshot_create(actor=request.auth, **vars(inputs.snapshot_create(request.data)))
        snapshot = selectors.snapshot_get(actor=request.auth, snapshot_id=snapshot.id)
        return out.snapshot_out(snapshot, request.volume_version)


class SnapshotDetail(CinderView, Member, Updatable, Deletable):
    key, id, deleted_status = "snapshot", "snapshot_id", 202
    lookup, deleter = selectors.snapshot_get, services.snapshot_delete

    def render(self, request: Request, row: Any, **ids: str) -> dict[str, Any]:
        return out.snapshot_detail(row, request.volume_version)

    def update(self, request: Request, *, snapshot_id: str, **ids: str) -> dict[str, Any]:
        snapshot = services.snapshot_update(actor=request.auth, snapshot_id=snapshot_id,
                                            **vars(inputs.snapshot_update(request.data)))
        return out.snapshot_out(snapshot, request.volume_version)


SnapshotMetadata, SnapshotMetadataItem = _metadata_views(
    "Snapshot", selectors.snapshot_metadata, services.snapshot_metadata_set, services.snapshot_metadata_item_set,
    services.snapshot_metadata_item_delete)


# ---- volume types --------------------------------------------------------------------------------

def _is_public_param(request: Request) -> bool | None:
    value = request.query_params.get("is_public")
    if value is None:
        return True
    if value.lower() in ("none", "null"):
        return None
    return check.flag(value)


class VolumeTypes(CinderView, Collection, Creatable):
    key, plural, created_status = "volume_type", "volume_types", 200

    def rows(self, request: Request, **kwargs: str) -> list[Any]:
        services.volume_type_default()
        return selectors.volume_type_list(actor=request.auth, is_public=_is_public_param(request))

    def render(self, request: Request, row: Any, **kwargs: str) -> dict[str, Any]:
        return out.volume_type_out(row, admin=request.auth.is_admin)

    def create(self, request: Request, **kwargs: str) -> dict[str, Any]:
        vtype = services.volume_type_create(actor=request.auth, **vars(inputs.volume_type_create(request.data)))
        return out.volume_type_out(vtype, admin=True)


class VolumeTypeDefault(CinderView):
    def get(self, request: Request, project_id: str) -> Response:
        vtype = services.volume_type_default()
        return Response({"volume_type": out.volume_type_out(vtype, admin=request.auth.is_admin)})


class VolumeTypeDetail(CinderView, Member, Updatable, Deletable):
    key, id, deleted_status = "volume_type", "type_id", 202
    deleter = services.volume_type_delete

    def show(self, request: Request, *, type_id: str, **ids: str) -> Any:
        if type_id == "default":
            return services.volume_type_default()
        return selectors.volume_type_get(actor=request.auth, type_id=type_id)

    def render(self, request: Request, row: Any, **ids: str) -> dict[str, Any]:
        return out.volume_type_out(row, admin=request.auth.is_admin)

    def update(self, request: Request, *, type_id: str, **ids: str) -> dict[str, Any]:
        vtype = services.volume_type_update(actor=request.auth, type_id=type_id,
                                            **vars(inputs.volume_type_update(request.data)))
        body = out.volume_type_out(vtype, admin=True)
        body.pop("os-volume-type-access:is_public")  # not in Cinder's update answer
        return body


# ---- quotas and limits ---------------------------------------------------------------------------

class QuotaSet(CinderView, Member, Updatable, Deletable):
    """A project's (``target``'s) volume quotas: limits, or limits and use with ``?usage=true``."""

    key, id, arg, deleted_status = "quota_set", "target", "project_id", 200
    lookup, deleter = selectors.volume_quota, services.volume_quota_delete

    def render(self, request: Request, row: Any, *, target: str, **ids: str) -> dict[str, Any]:
        if check.flag(request.query_params.get("usage")):
            return {"id": target, **{k: {"limit": v["limit"], "in_use": v["in_use"], "reserved": 0}
                                     for k, v in row.items()}}
        return {"id": target, **{k: v["limit"] for k, v in row.items()}}

    def update(self, request: Request, *, target: str, **ids: str) -> dict[str, Any]:
        return services.volume_quota_update(actor=request.auth, project_id=target,
                                            limits=inputs.quota_limits(request.data, "quota_set"))


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
        "os-reset_status": (202, lambda body: {"status": inputs.snapshot_status(body)},
                            services.snapshot_reset_status),
        "os-force_delete": (202, _no_arguments, services.snapshot_force_delete),
        "os-update_snapshot_status": (202, lambda body: {"status": inputs.snapshot_status(body),
                                                         "progress": inputs.snapshot_progress(body)},
                                      services.snapshot_update_status),
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


class Attachments(_AttachmentsView, Collection, Creatable):
    key, plural, created_status = "attachment", "attachments", 200

    def rows(self, request: Request, **kwargs: str) -> list[Any]:
        return selectors.attachment_list(actor=request.auth, params=_params(request))

    def render(self, request: Request, row: Any, **kwargs: str) -> dict[str, Any]:
        return _attachment_body(row) if self.detail else out.attachment_summary(row)

    def create(self, request: Request, **kwargs: str) -> dict[str, Any]:
        attachment = services.attachment_create(actor=request.auth, **vars(inputs.attachment_create(
            request.data, with_mode=out.at_least(request.volume_version, "3.54"))))
        return _attachment_body(selectors.attachment_get(actor=request.auth, attachment_id=attachment.id))


class AttachmentDetail(_AttachmentsView, Member, Updatable, Deletable):
    """DELETE answers the volume's attachments left."""

    key, id, deleted_status = "attachment", "attachment_id", 200
    lookup, deleter = selectors.attachment_get, services.attachment_delete

    def render(self, request: Request, row: Any, **ids: str) -> dict[str, Any]:
        return _attachment_body(row)

    def update(self, request: Request, *, attachment_id: str, **ids: str) -> dict[str, Any]:
        services.attachment_update(actor=request.auth, attachment_id=attachment_id,
                                   connector=inputs.attachment_update(request.data))
        return _attachment_body(self.show(request, attachment_id=attachment_id))

    def deleted_body(self, request: Request, removed: Any) -> Any:
        return {"attachments": [out.attachment_summary(a) for a in removed]}


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
