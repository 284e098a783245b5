"""Neutron v2.0 API. Views parse the request, call one service or selector, and render.

Each resource is declared once (``Resource``): how to list, show, create, update and delete it,
which attributes its create accepts, and how it renders. Two generic views serve every resource:
the collection (list with filters/fields/sorting/pagination, single and bulk create) and the member.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from django.db import transaction
from django.http import HttpResponse
from rest_framework.exceptions import MethodNotAllowed
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core import pagination, resources
from apps.core.api import OpenStackView
from apps.identity.api.authentication import AllowAny
from apps.identity.policy import Actor
from apps.networks import errors, selectors, services
from apps.networks.api import parsers
from apps.networks.api import serializers as out


class NeutronView(OpenStackView):
    error_style = "neutron"


def _base(request: Request) -> str:
    return request.build_absolute_uri("/network/v2.0").rstrip("/")


# ---- resources -----------------------------------------------------------------------------

Parse = Callable[[dict[str, Any]], dict[str, Any]]  # a body -> the service's keyword arguments


@dataclass(frozen=True)
class Resource:
    member: str
    collection: str
    path: str
    render: Callable[[Any, Actor], dict[str, Any]]
    list: Callable[[Actor, selectors.ListQuery], Any]
    get: Callable[[Actor, str], Any]
    create: Callable[[Actor, dict[str, Any]], Any]
    update: Callable[[Actor, str, dict[str, Any]], Any] | None
    delete: Callable[[Actor, str], None]
    before_read: Callable[[Actor], None] | None = None
    created_as_read: bool = False  # the create returns the row as ``get`` reads it: rendered without a re-read


def _parser(parse: parsers.Op | Parse, read: Callable[[dict[str, Any], parsers.Op], dict[str, Any]]) -> Parse:
    return parse if callable(parse) else lambda body: read(body, parse)


def _declared(member: str, path: str, render: Callable[[Any, Actor], dict[str, Any]], *,
              create: parsers.Op | Parse, update: parsers.Op | Parse | None, key: str | None = None,
              before_read: Callable[[Actor], None] | None = None, created_as_read: bool = False) -> Resource:
    """A resource whose selectors and services follow the names: ``<member>_list``/``_get`` and
    ``<member>_create``/``_update``/``_delete``, the id passed as ``key`` (``<member>_id``)."""
    key = key or f"{member}_id"
    listing, getter = getattr(selectors, f"{member}_list"), getattr(selectors, f"{member}_get")
    creator, deleter = getattr(services, f"{member}_create"), getattr(services, f"{member}_delete")
    to_create = _parser(create, parsers.parse_create)
    updater = None
    if update is not None:
        to_update, service = _parser(update, parsers.parse_update), getattr(services, f"{member}_update")
        updater = lambda a, pk, b: service(actor=a, **{key: pk}, changes=to_update(b))  # noqa: E731
    return Resource(member, f"{member}s", path, render,
                    list=lambda a, q: listing(actor=a, query=q), get=lambda a, pk: getter(actor=a, **{key: pk}),
                    create=lambda a, b: creator(actor=a, **to_create(b)), update=updater,
                    delete=lambda a, pk: deleter(actor=a, **{key: pk}), before_read=before_read,
                    created_as_read=created_as_read)


def _sg_before_read(actor: Actor) -> None:
    services.security_group_ensure_default_for(actor=actor)


RESOURCES: dict[str, Resource] = {r.path: r for r in (
    _declared("network", "networks", out.network_out, create=parsers.NETWORK_CREATE, update=parsers.NETWORK_UPDATE),
    _declared("subnet", "subnets", out.subnet_out, create=parsers.SUBNET_CREATE, update=parsers.SUBNET_UPDATE),
    _declared("subnetpool", "subnetpools", out.subnetpool_out, create=parsers.SUBNETPOOL_CREATE,
              update=parsers.SUBNETPOOL_UPDATE),
    _declared("port", "ports", out.port_out, create=parsers.PORT_CREATE, update=parsers.port_update,
              created_as_read=True),
    _declared("router", "routers", out.router_out, create=parsers.ROUTER_CREATE, update=parsers.ROUTER_UPDATE),
    _declared("floatingip", "floatingips", out.floatingip_out, create=parsers.FIP_CREATE, update=parsers.FIP_UPDATE),
    _declared("security_group", "security-groups", out.security_group_out, create=parsers.SG_CREATE,
              update=parsers.SG_UPDATE, before_read=_sg_before_read),
    _declared("security_group_rule", "security-group-rules", out.security_group_rule_out,
              create=parsers.rule_create, update=None, key="rule_id", before_read=_sg_before_read),
)}


def _body(request: Request, key: str) -> dict[str, Any]:
    data = request.data
    if not isinstance(data, dict) or not data:
        raise errors.BadRequestError("Resource body required")
    if not isinstance(data.get(key), dict):
        raise errors.BadRequestError(f"Unable to find '{key}' in request body")
    return data[key]


class Collection(NeutronView, resources.Collection):
    """The list (filters, fields, sorting, Neutron's pagination) and the single or bulk create."""

    resource: ClassVar[Resource]

    @classmethod
    def of(cls, resource: Resource) -> type[Collection]:
        return type(f"{resource.collection}_collection", (cls,), {"resource": resource,
                                                                  "plural": resource.collection})

    def rows(self, request: Request) -> list[Any]:
        r = self.resource
        self.query, self.fields = out.parse_list_query(request), out.fields_of(request)
        if r.before_read:
            r.before_read(request.auth)
        items = list(r.list(request.auth, self.query))
        if self.query.page_reverse:
            items.reverse()
        return items

    def render(self, request: Request, row: Any) -> dict[str, Any]:
        return out.only(self.resource.render(row, request.auth), self.fields)

    def links(self, request: Request, rows: list[Any]) -> dict[str, Any]:
        if not self.query.limit:
            return {}
        return {f"{self.plural}_links": pagination.next_previous_links(
            request, f"{_base(request)}/{self.resource.path}", rows, limit=self.query.limit,
            marker=self.query.marker, reverse=self.query.page_reverse)}

    def post(self, request: Request) -> Response:
        r, actor = self.resource, request.auth
        data = request.data
        if isinstance(data, dict) and isinstance(data.get(r.collection), list):
            items = data[r.collection]
            if not items or not all(isinstance(i, dict) for i in items):
                raise errors.BadRequestError(f"Invalid input: '{r.collection}' must be a non-empty list of objects.")
            with transaction.atomic():  # bulk: all or nothing
                created = [r.create(actor, dict(i)) for i in items]
            fresh = created if r.created_as_read else [r.get(actor, c.pk) for c in created]
            return Response({r.collection: [r.render(c, actor) for c in fresh]}, status=201)
        obj = r.create(actor, dict(_body(request, r.member)))
        return Response({r.member: r.render(obj if r.created_as_read else r.get(actor, obj.pk), actor)}, status=201)


class Member(NeutronView, resources.Member, resources.Updatable, resources.Deletable):
    """Show (with ``fields``), update (PUT; a 405 for a resource that has none) and delete."""

    resource: ClassVar[Resource]

    @classmethod
    def of(cls, resource: Resource) -> type[Member]:
        return type(f"{resource.member}_member", (cls,), {"resource": resource, "key": resource.member})

    def show(self, request: Request, pk: str) -> Any:
        r = self.resource
        if r.before_read:
            r.before_read(request.auth)
        return r.get(request.auth, pk)

    def render(self, request: Request, row: Any, **ids: str) -> dict[str, Any]:
        return out.only(self.resource.render(row, request.auth), out.fields_of(request))

    def update(self, request: Request, pk: str) -> dict[str, Any]:
        r, actor = self.resource, request.auth
        if r.update is None:
            raise MethodNotAllowed("PUT")
        obj = r.update(actor, pk, dict(_body(request, r.member)))
        return r.render(r.get(actor, obj.pk), actor)

    def remove(self, request: Request, pk: str) -> None:
        self.resource.delete(request.auth, pk)


class RouterInterface(NeutronView):
    action: ClassVar[str]

    def put(self, request: Request, pk: str) -> Response:
        body = request.data if isinstance(request.data, dict) else {}
        if not body:
            raise errors.BadRequestError("Resource body required")
        kwargs = parsers.router_interface(body)
        if self.action == "add":
            return Response(services.router_interface_add(actor=request.auth, router_id=pk, **kwargs))
        return Response(services.router_interface_remove(actor=request.auth, router_id=pk, **kwargs))


class AddRouterInterface(RouterInterface):
    action = "add"


class RemoveRouterInterface(RouterInterface):
    action = "remove"


# ---- tags ----------------------------------------------------------------------------------

class Tags(NeutronView):
    def get(self, request: Request, collection: str, pk: str) -> Response:
        return Response({"tags": services.tags_get(actor=request.auth, collection=collection, resource_id=pk)})

    def put(self, request: Request, collection: str, pk: str) -> Response:
        body = request.data if isinstance(request.data, dict) else {}
        if not isinstance(body.get("tags"), list):
            raise errors.BadRequestError("Invalid input: the body needs a 'tags' list.")
        tags = services.tags_change(actor=request.auth, collection=collection, resource_id=pk,
                                    set_to=parsers.tags(body["tags"]))
        return Response({"tags": tags})

    def delete(self, request: Request, collection: str, pk: str) -> HttpResponse:
        services.tags_change(actor=request.auth, collection=collection, resource_id=pk, remove="*")
        return HttpResponse(status=204)


class Tag(NeutronView):
    def get(self, request: Request, collection: str, pk: str, tag: str) -> HttpResponse:
        if tag not in services.tags_get(actor=request.auth, collection=collection, resource_id=pk):
            raise errors.NotFound(f"Tag {tag} could not be found.")
        return HttpResponse(status=204)

    def put(self, request: Request, collection: str, pk: str, tag: str) -> HttpResponse:
        services.tags_change(actor=request.auth, collection=collection, resource_id=pk, add=parsers.tag(tag))
        return HttpResponse(status=201)

    def delete(self, request: Request, collection: str, pk: str, tag: str) -> HttpResponse:
        services.tags_change(actor=request.auth, collection=collection, resource_id=pk, remove=tag)
        return HttpResponse(status=204)


# ---- quotas --------------------------------------------------------------------------------

def _quota_body(limits: dict[str, int]) -> dict[str, int]:
    return {r: limits[r] for r in selectors.QUOTA_RESOURCES if r in limits}


class Quotas(NeutronView):
    def get(self, request: Request) -> Response:
        from apps.identity import selectors as identity_selectors

        projects = identity_selectors.quota_projects_with_limits(actor=request.auth,
                                                                 resources=selectors.QUOTA_RESOURCES)
        bodies = []
        for pid in projects:
            usage = selectors.network_quota_usage(actor=request.auth, project_id=pid)
            bodies.append({**{r: u["limit"] for r, u in usage.items()}, "project_id": pid, "tenant_id": pid})
        return Response({"quotas": bodies})


class Quota(NeutronView):
    def get(self, request: Request, project_id: str) -> Response:
        usage = selectors.network_quota_usage(actor=request.auth, project_id=project_id)
        return Response({"quota": {r: u["limit"] for r, u in usage.items()}})

    def put(self, request: Request, project_id: str) -> Response:
        body = _body(request, "quota")
        limits = services.network_quota_set(actor=request.auth, project_id=project_id,
                                            limits=parsers.quota_limits(body))
        return Response({"quota": _quota_body(limits)})

    def delete(self, request: Request, project_id: str) -> HttpResponse:
        services.network_quota_reset(actor=request.auth, project_id=project_id)
        return HttpResponse(status=204)


class QuotaDefault(NeutronView):
    def get(self, request: Request, project_id: str) -> Response:
        return Response({"quota": selectors.network_quota_defaults(actor=request.auth, project_id=project_id)})


class QuotaDetails(NeutronView):
    def get(self, request: Request, project_id: str) -> Response:
        usage = selectors.network_quota_usage(actor=request.auth, project_id=project_id)
        return Response({"quota": {r: {"limit": u["limit"], "used": u["in_use"], "reserved": 0}
                                   for r, u in usage.items()}})


# ---- agents --------------------------------------------------------------------------------

class Agents(NeutronView):
    def get(self, request: Request) -> Response:
        agents = out.agents_out(selectors.agent_list(actor=request.auth))
        filters = {k: request.query_params.getlist(k) for k in request.query_params if k != "fields"}
        for key, values in filters.items():
            agents = [a for a in agents if key not in a or str(a[key]).lower() in {v.lower() for v in values}]
        fields = out.fields_of(request)
        return Response({"agents": [out.only(a, fields) for a in agents]})


class AgentDetail(NeutronView):
    """One of a node's Neutron agents (a node shows as 1 or 3 agents, all backed by its row)."""

    def _find(self, request: Request, pk: str) -> tuple[Any, dict[str, Any]]:
        for agent in selectors.agent_list(actor=request.auth):
            for kind in out.agent_kinds(agent):
                if out.agent_id(agent, kind[0]) == pk:
                    return agent, out.agent_out(agent, *kind)
        raise errors.AgentNotFound(f"Agent {pk} could not be found.")

    def get(self, request: Request, pk: str) -> Response:
        return Response({"agent": self._find(request, pk)[1]})

    def put(self, request: Request, pk: str) -> Response:
        agent, _ = self._find(request, pk)
        services.network_agent_update(actor=request.auth, agent=agent,
                                      changes=parsers.parse_update(_body(request, "agent"), parsers.AGENT_UPDATE))
        return Response({"agent": self._find(request, pk)[1]})

    def delete(self, request: Request, pk: str) -> HttpResponse:
        agent, _ = self._find(request, pk)
        services.network_agent_delete(actor=request.auth, agent=agent)
        return HttpResponse(status=204)


# ---- discovery -----------------------------------------------------------------------------

# The Neutron API extensions offered: alias, name and description each (a data file, not code).
EXTENSIONS: list[dict[str, str]] = json.loads((Path(__file__).parent / "extensions.json").read_text())


def extension_out(extension: dict[str, str]) -> dict[str, Any]:
    return {**extension, "links": [], "updated": "2013-01-01T10:00:00-00:00"}


class Extensions(NeutronView):
    def get(self, request: Request) -> Response:
        return Response({"extensions": [extension_out(e) for e in EXTENSIONS]})


class Extension(NeutronView):
    def get(self, request: Request, alias: str) -> Response:
        for e in EXTENSIONS:
            if e["alias"] == alias:
                return Response({"extension": extension_out(e)})
        raise errors.ExtensionNotFound(f"Extension with alias {alias} does not exist")


class Versions(NeutronView):
    authentication_classes: ClassVar[list] = []
    permission_classes: ClassVar[list] = [AllowAny]

    def get(self, request: Request) -> Response:
        return Response({"versions": [{"id": "v2.0", "status": "CURRENT", "links": [
            {"rel": "self", "href": _base(request) + "/"}]}]})


class Resources(NeutronView):
    authentication_classes: ClassVar[list] = []
    permission_classes: ClassVar[list] = [AllowAny]

    def get(self, request: Request) -> Response:
        base = _base(request)
        names = [(r.member, r.collection, r.path) for r in RESOURCES.values()]
        return Response({"resources": [{"name": m, "collection": c, "links": [{"rel": "self", "href": f"{base}/{p}"}]}
                                       for m, c, p in names]})


class Unknown(NeutronView):
    authentication_classes: ClassVar[list] = []
    permission_classes: ClassVar[list] = [AllowAny]

    def dispatch_any(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        raise errors.NotFound("The resource could not be found.")

    get = post = put = delete = patch = dispatch_any
