"""Nova v2.1 API: version discovery, microversion negotiation, flavors, key pairs, availability
zones, quota sets, limits and server groups. Views parse, call one service or selector, render."""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar

from django.http import HttpResponse
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response

from apps.compute import selectors, services
from apps.compute.api import inputs
from apps.compute.api import serializers as out
from apps.compute.selectors import servers as server_selectors
from apps.core import microversion, pagination
from apps.core import validators as check
from apps.core.api import OpenStackView
from apps.core.errors import BadRequest
from apps.core.resources import Collection, Creatable, Deletable, Member, Updatable
from apps.identity import selectors as identity_selectors
from apps.identity.api.authentication import AllowAny

HEADER = "OpenStack-API-Version"
LEGACY_HEADER = "X-OpenStack-Nova-API-Version"


def negotiate(request: Request) -> tuple[int, int]:
    """The microversion asked for (``OpenStack-API-Version: compute X.Y`` first, then the legacy
    header; ``latest`` is the maximum; nothing is the minimum). Out of range → 406."""
    return microversion.negotiate(
        request, service="compute", minimum=out.MIN_VERSION, maximum=out.MAX_VERSION,
        legacy_header="HTTP_X_OPENSTACK_NOVA_API_VERSION",
        invalid="Invalid format for API version string: {wanted!r}, it must be of the form 'X.Y'.")


class JSONAlways(DefaultContentNegotiation):
    """Nova answers JSON whatever ``Accept`` says (the SDK's actions send odd ones)."""

    def select_renderer(self, request: Request, renderers: list, format_suffix: str | None = None) -> tuple:
        return renderers[0], renderers[0].media_type


class NovaView(OpenStackView):
    error_style = "nova"
    content_negotiation_class = JSONAlways

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        request.compute_version = negotiate(request)
        super().initial(request, *args, **kwargs)

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        version = getattr(request, "compute_version", None)
        if version is not None:
            response[HEADER] = f"compute {out.version_str(version)}"
            response[LEGACY_HEADER] = out.version_str(version)
            response["Vary"] = f"{HEADER}, {LEGACY_HEADER}"
        return response


def _base(request: Request) -> str:
    return request.build_absolute_uri("/compute/v2.1").rstrip("/")


def _root(request: Request) -> str:
    return request.build_absolute_uri("/compute").rstrip("/")


def _int_param(request: Request, name: str, *, minimum: int = 0) -> int | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    if not re.fullmatch(r"\d+", value) or int(value) < minimum:
        raise BadRequest(f"Invalid input for query parameters {name}. Value: {value}.")
    return int(value)


def _no_content(status: int) -> HttpResponse:
    return Response(status=status)


# ---- version discovery -----------------------------------------------------------------------

class Versions(NovaView):
    authentication_classes: ClassVar[list] = []
    permission_classes: ClassVar[list] = [AllowAny]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        OpenStackView.initial(self, request, *args, **kwargs)

    def get(self, request: Request) -> Response:
        return Response(out.versions_out(_root(request)))


class Version(Versions):
    def get(self, request: Request) -> Response:
        return Response({"version": out.v21_out(_root(request))})


class LegacyVersion(Versions):
    def get(self, request: Request) -> Response:
        return Response({"version": out.v20_out(_root(request))})


# ---- flavors ---------------------------------------------------------------------------------

def _is_public(request: Request) -> bool | None:
    value = request.query_params.get("is_public")
    if value is None:
        return True
    if value.lower() in {"none", "null"}:
        return None
    if value.lower() in check.TRUE_STRINGS | check.FALSE_STRINGS:
        return value.lower() in check.TRUE_STRINGS
    raise BadRequest(f"Invalid is_public filter [{value}]")


def _flavor_query(request: Request) -> selectors.FlavorQuery:
    return selectors.FlavorQuery(
        is_public=_is_public(request), min_disk=_int_param(request, "minDisk"),
        min_ram=_int_param(request, "minRam"), sort_key=request.query_params.get("sort_key", "flavorid"),
        sort_dir=request.query_params.get("sort_dir", "asc"), limit=_int_param(request, "limit"),
        marker=request.query_params.get("marker"))


def next_links(view: Collection, request: Request, rows: list[Any], *, limit: int | None,
               marker: Callable[[Any], Any]) -> dict[str, Any]:
    """Nova's ``<plural>_links`` of a list view (or its ``/detail``) when the page is full."""
    url = f"{_base(request)}/{view.path}{'/detail' if view.detail else ''}"
    return pagination.next_links(request, view.plural, url, rows, limit=limit, marker=marker)


class Flavors(NovaView, Collection, Creatable):
    key, plural, path, created_status = "flavor", "flavors", "flavors", 200

    def rows(self, request: Request) -> list[Any]:
        self.query = _flavor_query(request)
        return selectors.flavor_list(actor=request.auth, query=self.query)

    def render(self, request: Request, row: Any) -> dict[str, Any]:
        return (out.flavor_out if self.detail else out.flavor_brief)(row, _base(request))

    def links(self, request: Request, rows: list[Any]) -> dict[str, Any]:
        return next_links(self, request, rows, limit=self.query.limit, marker=lambda f: f.flavorid)

    def create(self, request: Request) -> dict[str, Any]:
        flavor = services.flavor_create(actor=request.auth, **vars(inputs.flavor_create(request.data)))
        return out.flavor_out(flavor, _base(request))


class FlavorDetail(NovaView, Member, Deletable):
    key, id, deleted_status = "flavor", "flavor_id", 202
    lookup, deleter = selectors.flavor_get, services.flavor_delete

    def render(self, request: Request, row: Any, **ids: str) -> dict[str, Any]:
        return out.flavor_out(row, _base(request))


class FlavorAction(NovaView):
    def post(self, request: Request, flavor_id: str) -> Response:
        action, project_id = inputs.flavor_access(request.data)
        if action == "addTenantAccess":
            rows = services.flavor_access_add(actor=request.auth, flavor_id=flavor_id, project_id=project_id,
                                              refuse_public=request.compute_version >= (2, 7))
        else:
            rows = services.flavor_access_remove(actor=request.auth, flavor_id=flavor_id, project_id=project_id)
        return Response(out.flavor_access_out(rows, flavor_id))


class FlavorAccessList(NovaView):
    def get(self, request: Request, flavor_id: str) -> Response:
        rows = selectors.flavor_access_list(actor=request.auth, flavor_id=flavor_id)
        return Response(out.flavor_access_out(rows, flavor_id))


class FlavorExtraSpecs(NovaView):
    def get(self, request: Request, flavor_id: str) -> Response:
        return Response({"extra_specs": selectors.flavor_extra_specs(actor=request.auth, flavor_id=flavor_id)})

    def post(self, request: Request, flavor_id: str) -> Response:
        specs = services.flavor_extra_specs_set(actor=request.auth, flavor_id=flavor_id,
                                                specs=inputs.extra_specs(request.data))
        return Response({"extra_specs": specs})


class FlavorExtraSpec(NovaView):
    def get(self, request: Request, flavor_id: str, key: str) -> Response:
        spec = selectors.flavor_extra_spec_get(actor=request.auth, flavor_id=flavor_id, key=key)
        return Response({spec.key: spec.value})

    def put(self, request: Request, flavor_id: str, key: str) -> Response:
        return Response(services.flavor_extra_specs_set(actor=request.auth, flavor_id=flavor_id,
                                                        specs=inputs.extra_spec_item(request.data, key)))

    def delete(self, request: Request, flavor_id: str, key: str) -> Response:
        services.flavor_extra_spec_delete(actor=request.auth, flavor_id=flavor_id, key=key)
        return _no_content(200)


# ---- key pairs -------------------------------------------------------------------------------

def _keypair_user(request: Request) -> str | None:
    """``?user_id=`` (an admin's look at another user's key pairs) counts from microversion 2.10."""
    return request.query_params.get("user_id") if request.compute_version >= (2, 10) else None


class KeyPairs(NovaView):
    def get(self, request: Request) -> Response:
        keypairs = selectors.keypair_list(actor=request.auth, user_id=_keypair_user(request))
        return Response({"keypairs": [out.keypair_brief(k, request.compute_version) for k in keypairs]})

    def post(self, request: Request) -> Response:
        version = request.compute_version
        keypair, private_key = services.keypair_create(
            actor=request.auth, **vars(inputs.keypair_create(request.data, version=version)))
        # 2.2 made the answer a 201 (and the delete's a 204)
        return Response({"keypair": out.keypair_created(keypair, private_key, version)},
                        status=201 if version >= (2, 2) else 200)


class KeyPairDetail(NovaView):
    def get(self, request: Request, name: str) -> Response:
        keypair = selectors.keypair_get(actor=request.auth, name=name, user_id=_keypair_user(request))
        return Response({"keypair": out.keypair_out(keypair, request.compute_version)})

    def delete(self, request: Request, name: str) -> Response:
        services.keypair_delete(actor=request.auth, name=name, user_id=_keypair_user(request))
        return _no_content(204 if request.compute_version >= (2, 2) else 202)


# ---- availability zones ----------------------------------------------------------------------

class AvailabilityZones(NovaView):
    detail = False

    def get(self, request: Request) -> Response:
        zones = [{"zoneName": zone, "zoneState": {"available": True},
                  "hosts": {} if self.detail else None}
                 for zone in selectors.availability_zone_list(actor=request.auth, detail=self.detail)]
        return Response({"availabilityZoneInfo": zones})


# ---- quotas and limits -----------------------------------------------------------------------

def _compute_in_use(usage: dict[str, dict[str, int]]) -> dict[str, int]:
    return {key: usage.get(resource, {}).get("in_use", 0) for key, resource in out.QUOTA_KEYS.items()}


class QuotaSet(NovaView, Member, Updatable, Deletable):
    key, id, deleted_status = "quota_set", "project_id", 202
    lookup, deleter = identity_selectors.quota_project_get, services.quota_revert

    def render(self, request: Request, row: Any, **ids: str) -> dict[str, Any]:
        return out.quota_set_out(row.id, identity_selectors.quota_limits(project=row))

    def update(self, request: Request, *, project_id: str) -> dict[str, Any]:
        limits, force = inputs.quota_limits(request.data, key="quota_set", keys=out.QUOTA_KEYS)
        limits = services.quota_update(actor=request.auth, project_id=project_id, limits=limits, force=force)
        return out.quota_set_out(project_id, limits, with_id=False)


class QuotaSetDefaults(NovaView):
    def get(self, request: Request, project_id: str) -> Response:
        return Response({"quota_set": out.quota_set_out(project_id, identity_selectors.quota_defaults())})


class QuotaClassSet(NovaView):
    """os-quota-class-sets: the ``default`` class is the default limits."""

    def get(self, request: Request, class_name: str) -> Response:
        return Response({"quota_class_set": out.quota_set_out(class_name, identity_selectors.quota_defaults())})

    def put(self, request: Request, class_name: str) -> Response:
        limits, _ = inputs.quota_limits(request.data, key="quota_class_set", keys=out.QUOTA_KEYS)
        limits = services.quota_defaults_update(actor=request.auth, class_name=class_name, limits=limits)
        return Response({"quota_class_set": out.quota_set_out(class_name, limits, with_id=False)})


class QuotaSetDetail(NovaView):
    def get(self, request: Request, project_id: str) -> Response:
        project = identity_selectors.quota_project_get(actor=request.auth, project_id=project_id)
        usage = identity_selectors.quota_usage(project=project)
        return Response({"quota_set": out.quota_detail_out(project.id, usage, _compute_in_use(usage))})


class Limits(NovaView):
    def get(self, request: Request) -> Response:
        usage = selectors.project_limits(actor=request.auth, tenant_id=request.query_params.get("tenant_id"))
        limits = {k: v["limit"] for k, v in usage.items()}
        used = {k: v["in_use"] for k, v in usage.items()}
        return Response(out.limits_out(limits, used))


# ---- server groups ---------------------------------------------------------------------------

class ServerGroups(NovaView):
    def get(self, request: Request) -> Response:
        all_projects = check.flag(request.query_params.get("all_projects"))
        groups = selectors.server_group_list(actor=request.auth, all_projects=all_projects,
                                             limit=_int_param(request, "limit", minimum=1),
                                             offset=_int_param(request, "offset") or 0)
        version = request.compute_version
        members = server_selectors.server_group_members(group_ids=[g.id for g in groups])
        return Response({"server_groups": [out.server_group_out(g, version=version, members=members.get(g.id))
                                           for g in groups]})

    def post(self, request: Request) -> Response:
        group = services.server_group_create(
            actor=request.auth, **vars(inputs.server_group_create(request.data, version=request.compute_version)))
        return Response({"server_group": out.server_group_out(group, version=request.compute_version)})


class ServerGroupDetail(NovaView, Member, Deletable):
    key, id = "server_group", "group_id"
    lookup, deleter = selectors.server_group_get, services.server_group_delete

    def render(self, request: Request, row: Any, **ids: str) -> dict[str, Any]:
        members = server_selectors.server_group_members(group_ids=[row.id]).get(row.id)
        return out.server_group_out(row, version=request.compute_version, members=members)
