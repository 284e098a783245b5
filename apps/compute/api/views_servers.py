"""Nova v2.1 servers API: servers, their actions, metadata, addresses, instance actions and tags.
Views parse, call one service or selector, render."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from rest_framework.request import Request
from rest_framework.response import Response

from apps.compute.api import inputs
from apps.compute.api import serializers_servers as out
from apps.compute.api.views import NovaView, _base, next_links
from apps.compute.selectors import servers as selectors
from apps.compute.services import (
    console_tokens,
    server_console,
    server_lifecycle,
    server_metadata,
    server_rebuild_resize,
    server_snapshots,
    servers,
)
from apps.core import validators as check
from apps.core.errors import BadRequest, NotFound
from apps.core.resources import Collection, Deletable, Member, Updatable


class ServerView(NovaView):
    """A Nova view with a request id (``x-openstack-request-id``), recorded in instance actions."""

    request_id_headers = ("x-openstack-request-id", "x-compute-request-id")


def _limit(request: Request) -> int | None:
    value = request.query_params.get("limit")
    if value is None:
        return None
    if not value.isdigit():
        raise BadRequest(f"Invalid input for query parameters limit. Value: {value}.")
    return int(value)


def _csv(value: str | None) -> tuple[str, ...]:
    return tuple(t for t in (value or "").split(",") if t)


def _query(request: Request) -> selectors.ServerQuery:
    p = request.query_params
    all_tenants = p.get("all_tenants")
    # a non-admin's filters are Nova's short list: ip6 joins it at microversion 2.5
    ip6 = p.get("ip6") if request.auth.is_admin or request.compute_version >= (2, 5) else None
    return selectors.ServerQuery(
        name=p.get("name"), status=p.get("status"), image=p.get("image"), flavor=p.get("flavor"),
        host=p.get("host"), changes_since=p.get("changes-since") or p.get("changes_since"),
        reservation_id=p.get("reservation_id"), ip=p.get("ip"), ip6=ip6,
        all_tenants=all_tenants is not None and all_tenants.lower() not in check.FALSE_STRINGS,
        project_id=p.get("project_id") or p.get("tenant_id"), user_id=p.get("user_id"),
        deleted=None if p.get("deleted") is None else check.boolean(p.get("deleted"), field="deleted"),
        locked=None,
        tags=_csv(p.get("tags")) if request.compute_version >= (2, 26) else (),
        tags_any=_csv(p.get("tags-any")) if request.compute_version >= (2, 26) else (),
        not_tags=_csv(p.get("not-tags")) if request.compute_version >= (2, 26) else (),
        not_tags_any=_csv(p.get("not-tags-any")) if request.compute_version >= (2, 26) else (),
        sort_keys=tuple(p.getlist("sort_key")), sort_dirs=tuple(p.getlist("sort_dir")), limit=_limit(request),
        marker=p.get("marker"))


# ---- servers ---------------------------------------------------------------------------------

class Servers(ServerView, Collection):
    """The list; POST boots (a reservation id only, or the first server with its Location)."""

    plural = path = "servers"

    def rows(self, request: Request) -> list[Any]:
        self.query = _query(request)
        return selectors.server_list(actor=request.auth, query=self.query, details=self.detail)

    def render(self, request: Request, row: Any) -> dict[str, Any]:
        if self.detail:
            return out.server_detail(row, _base(request), admin=request.auth.is_admin,
                                     version=request.compute_version)
        return out.server_brief(row, _base(request))

    def links(self, request: Request, rows: list[Any]) -> dict[str, Any]:
        limit = min(self.query.limit if self.query.limit is not None else selectors.MAX_LIMIT, selectors.MAX_LIMIT)
        return next_links(self, request, rows, limit=limit, marker=lambda s: s.id)

    def post(self, request: Request) -> Response:
        if self.detail:
            self.http_method_not_allowed(request)  # 405 in the API's error format
        server, reservation_only = inputs.server_create(request.data, version=request.compute_version)
        instances = servers.server_create(actor=request.auth, request_id=self.request_id, **vars(server))
        if reservation_only:
            return Response({"reservation_id": instances[0].reservation_id}, status=202)
        base = _base(request)
        response = Response({"server": out.server_created(instances[0], base)}, status=202)
        response["Location"] = f"{base}/servers/{instances[0].id}"
        return response


class ServerDetail(ServerView, Member, Updatable, Deletable):
    key, id, lookup = "server", "server_id", selectors.server_get

    def render(self, request: Request, row: Any, **ids: str) -> dict[str, Any]:
        return out.server_detail(row, _base(request), admin=request.auth.is_admin, version=request.compute_version)

    def update(self, request: Request, *, server_id: str) -> dict[str, Any]:
        changes = inputs.server_update(request.data, version=request.compute_version)
        server = server_lifecycle.server_update(actor=request.auth, server_id=server_id, **vars(changes))
        return out.server_updated(server, _base(request), admin=request.auth.is_admin,
                                  version=request.compute_version)

    def remove(self, request: Request, *, server_id: str) -> None:
        server_lifecycle.server_delete(actor=request.auth, server_id=server_id, request_id=self.request_id)


Parse = Callable[[Any, tuple[int, int]], dict[str, Any]]


def _power(action: str) -> tuple[Parse, Callable[..., Any]]:
    return (lambda _body, _v: {"action": action}), server_lifecycle.server_power


# each action: what its parser makes of the body at the requested microversion (the service's own
# arguments) and the typed service
ACTIONS: dict[str, tuple[Parse, Callable[..., Any]]] = {
    "os-start": _power("start"), "os-stop": _power("stop"), "pause": _power("pause"),
    "unpause": _power("unpause"), "suspend": _power("suspend"), "resume": _power("resume"),
    "reboot": (lambda body, _v: {"type": inputs.reboot(body)}, server_lifecycle.server_reboot),
    "lock": (lambda body, v: {"reason": inputs.lock(body, version=v)}, server_lifecycle.server_lock),
    "unlock": (lambda _body, _v: {}, server_lifecycle.server_unlock),
    "rebuild": (lambda body, v: vars(inputs.rebuild(body, version=v)), server_rebuild_resize.server_rebuild),
    "resize": (lambda body, _v: vars(inputs.resize(body)), server_rebuild_resize.server_resize),
    "confirmResize": (lambda _body, _v: {}, server_rebuild_resize.server_resize_confirm),
    "revertResize": (lambda _body, _v: {}, server_rebuild_resize.server_resize_revert),
    "createImage": (lambda body, _v: vars(inputs.create_image(body)), server_snapshots.server_image_create),
    "addSecurityGroup": (lambda body, _v: {"name": inputs.security_group(body)},
                         server_lifecycle.server_security_group_add),
    "removeSecurityGroup": (lambda body, _v: {"name": inputs.security_group(body)},
                            server_lifecycle.server_security_group_remove),
    "trigger_crash_dump": (lambda body, _v: inputs.crash_dump(body), server_lifecycle.server_crash_dump),
}
# the actions that exist in a range of microversions only (outside it Nova answers a bare 404)
ACTION_VERSIONS: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "os-getVNCConsole": ((2, 1), (2, 5)), "os-getSerialConsole": ((2, 1), (2, 5)),
    "trigger_crash_dump": ((2, 17), (2, 999)),
}
ACTION_STATUS = {"confirmResize": 204}
# the console URL actions before microversion 2.6 (then os-remote-consoles): the types each takes, protocol
LEGACY_CONSOLES = {"os-getVNCConsole": (("novnc", "xvpvnc"), "vnc"), "os-getSerialConsole": (("serial",), "serial")}


class ServerAction(ServerView):
    def post(self, request: Request, server_id: str) -> Response:
        action, body = inputs.single_action(request.data)
        if action == "os-getConsoleOutput":
            output = server_console.server_console_output(actor=request.auth, server_id=server_id,
                                                          length=inputs.console_length(body))
            return Response({"output": output})
        low, high = ACTION_VERSIONS.get(action, ((2, 1), (2, 999)))
        if not low <= request.compute_version <= high:
            raise NotFound("The resource could not be found.")
        if action in LEGACY_CONSOLES:
            types, protocol = LEGACY_CONSOLES[action]
            console = console_tokens.server_remote_console_create(
                actor=request.auth, server_id=server_id, protocol=protocol,
                console_type=inputs.console_type(body, types))
            return Response({"console": {"type": console.type, "url": console.url}})
        if action not in ACTIONS:
            # an unknown action on an unknown server is still a 404
            selectors.server_get(actor=request.auth, server_id=server_id)
            raise BadRequest(f"There is no such action: {action}")
        parse, service = ACTIONS[action]
        version = request.compute_version
        result = service(actor=request.auth, server_id=server_id, request_id=self.request_id,
                         **parse(body, version))
        base = _base(request)
        if action == "rebuild":
            server = selectors.server_get(actor=request.auth, server_id=server_id)
            payload = out.server_updated(server, base, admin=request.auth.is_admin, version=version)
            payload["adminPass"] = result.admin_pass
            return Response({"server": payload}, status=202)
        if action == "createImage":
            response = Response(status=202)
            response["Location"] = f"{base.rsplit('/v2.1', 1)[0]}/images/{result}"
            return response
        return Response(status=ACTION_STATUS.get(action, 202))


class ServerRemoteConsoles(ServerView):
    """os-remote-consoles (microversion 2.6): a console URL with a short-lived, single-use token."""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if request.compute_version < (2, 6):
            raise NotFound("The resource could not be found.")

    def post(self, request: Request, server_id: str) -> Response:
        protocol, kind = inputs.remote_console(request.data, version=request.compute_version)
        console = console_tokens.server_remote_console_create(actor=request.auth, server_id=server_id,
                                                              protocol=protocol, console_type=kind)
        return Response({"remote_console": {"protocol": console.protocol, "type": console.type,
                                            "url": console.url}})


# ---- metadata --------------------------------------------------------------------------------

class ServerMetadata(ServerView):
    def get(self, request: Request, server_id: str) -> Response:
        server = selectors.server_get(actor=request.auth, server_id=server_id)
        return Response({"metadata": dict(server.metadata or {})})

    def _set(self, request: Request, server_id: str, *, replace: bool) -> Response:
        metadata = server_metadata.server_metadata_set(actor=request.auth, server_id=server_id,
                                                       metadata=inputs.metadata(request.data), replace=replace)
        return Response({"metadata": metadata})

    def put(self, request: Request, server_id: str) -> Response:
        return self._set(request, server_id, replace=True)

    def post(self, request: Request, server_id: str) -> Response:
        return self._set(request, server_id, replace=False)


class ServerMetadataItem(ServerView):
    def get(self, request: Request, server_id: str, key: str) -> Response:
        server = selectors.server_get(actor=request.auth, server_id=server_id)
        if key not in (server.metadata or {}):
            raise NotFound(f"Metadata item was not found: {key}")
        return Response({"meta": {key: server.metadata[key]}})

    def put(self, request: Request, server_id: str, key: str) -> Response:
        meta = server_metadata.server_metadata_item_set(actor=request.auth, server_id=server_id, key=key,
                                                        value=inputs.metadata_item(request.data, key))
        return Response({"meta": meta})

    def delete(self, request: Request, server_id: str, key: str) -> Response:
        server_metadata.server_metadata_delete(actor=request.auth, server_id=server_id, key=key)
        return Response(status=204)


# ---- addresses -------------------------------------------------------------------------------

class ServerIps(ServerView):
    def get(self, request: Request, server_id: str) -> Response:
        server = selectors.server_get(actor=request.auth, server_id=server_id)
        return Response({"addresses": out.addresses(server, extended=False)})


class ServerIpsNetwork(ServerView):
    def get(self, request: Request, server_id: str, label: str) -> Response:
        server = selectors.server_get(actor=request.auth, server_id=server_id)
        addresses = out.addresses(server, extended=False)
        if label not in addresses:
            raise NotFound(f"Instance {server_id} has no address on network {label}.")
        return Response({label: addresses[label]})


# ---- instance actions ------------------------------------------------------------------------

class ServerActions(ServerView):
    def get(self, request: Request, server_id: str) -> Response:
        # a deleted server's actions show from microversion 2.21 (before it: 404, as for any deleted server)
        actions = selectors.server_actions(actor=request.auth, server_id=server_id,
                                           with_deleted=request.compute_version >= (2, 21))
        return Response({"instanceActions": [out.action_out(a) for a in actions]})


class ServerActionDetail(ServerView):
    def get(self, request: Request, server_id: str, request_id: str) -> Response:
        action = selectors.server_action_get(actor=request.auth, server_id=server_id, request_id=request_id,
                                             with_deleted=request.compute_version >= (2, 21))
        return Response({"instanceAction": out.action_out(action, events=request.auth.is_admin)})


# ---- tags (microversion 2.26) ----------------------------------------------------------------

class _TagsView(ServerView):
    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if request.compute_version < (2, 26):
            raise NotFound("The resource could not be found.")


class ServerTags(_TagsView):
    http_method_names: ClassVar[list[str]] = ["get", "put", "delete"]

    def get(self, request: Request, server_id: str) -> Response:
        return Response({"tags": selectors.server_tags(actor=request.auth, server_id=server_id)})

    def put(self, request: Request, server_id: str) -> Response:
        return Response({"tags": server_metadata.server_tags_set(actor=request.auth, server_id=server_id,
                                                                 tags=inputs.tags(request.data))})

    def delete(self, request: Request, server_id: str) -> Response:
        server_metadata.server_tag_delete(actor=request.auth, server_id=server_id)
        return Response(status=204)


class ServerTag(_TagsView):
    def get(self, request: Request, server_id: str, tag: str) -> Response:
        if tag not in selectors.server_tags(actor=request.auth, server_id=server_id):
            raise NotFound(f"Tag {tag} could not be found.")
        return Response(status=204)

    def put(self, request: Request, server_id: str, tag: str) -> Response:
        created = server_metadata.server_tag_add(actor=request.auth, server_id=server_id, tag=inputs.tag(tag))
        response = Response(status=201 if created else 204)
        response["Location"] = f"{_base(request)}/servers/{server_id}/tags/{tag}"
        return response

    def delete(self, request: Request, server_id: str, tag: str) -> Response:
        server_metadata.server_tag_delete(actor=request.auth, server_id=server_id, tag=tag)
        return Response(status=204)
