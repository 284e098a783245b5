"""Nova v2.1 admin API: os-hypervisors, os-services and os-simple-tenant-usage. Bodies follow the
requested microversion (2.1 as tempest's strict schemas check it; 2.11 forced_down, 2.28 cpu_info as
an object, 2.53 UUID ids, 2.88 the trimmed hypervisor). Views parse, call one selector or service, render."""
from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response

from apps.compute.api import inputs
from apps.compute.api.views import NovaView, next_links
from apps.compute.models import ComputeNode
from apps.compute.selectors import nodes as node_selectors
from apps.compute.services import nodes as node_services
from apps.core.errors import BadRequest, NotFound
from apps.core.resources import Collection

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"
_INPUT_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S")


def _time(value: datetime | None) -> str | None:
    """Nova's timestamps: naive UTC with microseconds."""
    if value is None:
        return None
    return timezone.localtime(value, UTC).strftime(TIME_FORMAT) if timezone.is_aware(value) \
        else value.strftime(TIME_FORMAT)


def _v(request: Request) -> tuple[int, int]:
    return getattr(request, "compute_version", (2, 1))


# ---- renderers ---------------------------------------------------------------------------------

def _state(node: ComputeNode, now: datetime) -> str:
    return "up" if node_selectors.node_is_up(node, now=now) else "down"


def _status(node: ComputeNode) -> str:
    return "enabled" if node.enabled else "disabled"


def _hyp_id(node: ComputeNode, version: tuple[int, int]) -> int | str:
    return node.uuid if version >= (2, 53) else node.id


def hypervisor_brief(node: ComputeNode, version: tuple[int, int], now: datetime) -> dict[str, Any]:
    return {"id": _hyp_id(node, version), "hypervisor_hostname": node.hypervisor_hostname,
            "state": _state(node, now), "status": _status(node)}


def _uptime(node: ComputeNode, now: datetime) -> str:
    """An `uptime`-like line from the agent's start (what Nova shows from the host's `uptime`)."""
    since = node.started_at or node.created_at
    seconds = int((now - since).total_seconds()) if since else 0
    days, rest = divmod(max(seconds, 0), 86400)
    hours, rest = divmod(rest, 3600)
    up = f"{days} days, {hours:2d}:{rest // 60:02d}" if days else f"{hours:2d}:{rest // 60:02d}"
    return f" {timezone.localtime(now, UTC):%H:%M:%S} up {up},  0 users,  load average: 0.00, 0.00, 0.00"


def hypervisor_detail(node: ComputeNode, version: tuple[int, int], now: datetime) -> dict[str, Any]:
    body = hypervisor_brief(node, version, now)
    body.update({
        "host_ip": node.host_ip or "127.0.0.1", "hypervisor_type": node.hypervisor_type,
        "hypervisor_version": node.hypervisor_version,
        "service": {"host": node.host, "id": node.uuid if version >= (2, 53) else node.id,
                    "disabled_reason": node.disabled_reason or None},
    })
    if version >= (2, 88):
        body["uptime"] = _uptime(node, now)
        return body
    free_disk = node.local_gb - node.local_gb_used
    body.update({
        "cpu_info": node.cpu_info if version >= (2, 28) else json.dumps(node.cpu_info, sort_keys=True),
        "current_workload": 0, "disk_available_least": free_disk, "free_disk_gb": free_disk,
        "free_ram_mb": node.memory_mb - node.memory_mb_used, "local_gb": node.local_gb,
        "local_gb_used": node.local_gb_used, "memory_mb": node.memory_mb, "memory_mb_used": node.memory_mb_used,
        "running_vms": node.running_vms, "vcpus": node.vcpus, "vcpus_used": node.vcpus_used,
    })
    return body


def _with_servers(entry: node_selectors.NodeServers, body: dict[str, Any], *, always: bool) -> dict[str, Any]:
    if entry.servers or always:
        body["servers"] = [{"uuid": uuid, "name": name} for uuid, name in entry.servers]
    return body


def service_out(node: ComputeNode, version: tuple[int, int], now: datetime) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": node.uuid if version >= (2, 53) else node.id, "binary": node_selectors.SERVICE_BINARY,
        "host": node.host, "zone": node.availability_zone, "status": _status(node), "state": _state(node, now),
        "updated_at": _time(node.last_heartbeat), "disabled_reason": node.disabled_reason or None,
    }
    if version >= (2, 11):
        body["forced_down"] = node.forced_down
    return body


def usage_out(usage: node_selectors.ProjectUsage, *, servers: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "tenant_id": usage.tenant_id, "start": _time(usage.start), "stop": _time(usage.stop),
        "total_hours": usage.total_hours, "total_vcpus_usage": usage.total_vcpus_usage,
        "total_memory_mb_usage": usage.total_memory_mb_usage, "total_local_gb_usage": usage.total_local_gb_usage,
    }
    if servers:
        body["server_usages"] = [{
            "instance_id": s.instance_id, "name": s.name, "tenant_id": s.tenant_id, "flavor": s.flavor,
            "vcpus": s.vcpus, "memory_mb": s.memory_mb, "local_gb": s.local_gb, "hours": s.hours,
            "started_at": _time(s.started_at), "ended_at": _time(s.ended_at), "state": s.state, "uptime": s.uptime,
        } for s in usage.server_usages]
    return body


# ---- os-hypervisors -----------------------------------------------------------------------------

def _query_bool(request: Request, name: str) -> bool:
    value = request.query_params.get(name, "false").lower()
    if value in ("1", "true", "t", "yes", "y", "on"):
        return True
    if value in ("0", "false", "f", "no", "n", "off"):
        return False
    raise BadRequest(f"Invalid input for query parameters {name}. Value: {value}.")


def _matching(found: list[Any], pattern: str | None) -> list[Any]:
    if pattern is not None and not found:
        raise NotFound(f"No hypervisor matching '{pattern}' could be found.")
    return found


class Hypervisors(NovaView, Collection):
    """The nodes, paged (2.33) through apps/core/pagination; with their servers (2.53,
    ``with_servers``: every match, no page links)."""

    plural, path = "hypervisors", "os-hypervisors"
    limit: int | None = None

    def rows(self, request: Request) -> list[Any]:
        version, self.now = _v(request), timezone.now()
        pattern = request.query_params.get("hypervisor_hostname_pattern") if version >= (2, 53) else None
        self.with_servers = version >= (2, 53) and _query_bool(request, "with_servers")
        if self.with_servers:
            return _matching(node_selectors.node_servers(actor=request.auth, hostname_pattern=pattern), pattern)
        limit = request.query_params.get("limit") if version >= (2, 33) else None
        if limit is not None and (not limit.isdigit() or int(limit) < 1):
            raise BadRequest(f"Invalid input for query parameters limit. Value: {limit}.")
        self.limit = int(limit) if limit is not None else None
        return _matching(node_selectors.node_list(
            actor=request.auth, hostname_pattern=pattern, limit=self.limit,
            marker=request.query_params.get("marker") if version >= (2, 33) else None), pattern)

    def render(self, request: Request, row: Any) -> dict[str, Any]:
        render = hypervisor_detail if self.detail else hypervisor_brief
        if self.with_servers:
            return _with_servers(row, render(row.node, _v(request), self.now), always=False)
        return render(row, _v(request), self.now)

    def links(self, request: Request, rows: list[Any]) -> dict[str, Any]:
        if self.with_servers:
            return {}
        return next_links(self, request, rows, limit=self.limit, marker=lambda n: _hyp_id(n, _v(request)))


class HypervisorDetail(NovaView):
    def get(self, request: Request, hypervisor_id: str) -> Response:
        version, now = _v(request), timezone.now()
        if version >= (2, 53) and _query_bool(request, "with_servers"):
            entry = node_selectors.node_servers(actor=request.auth, node_id=hypervisor_id)[0]
            return Response({"hypervisor": _with_servers(entry, hypervisor_detail(entry.node, version, now),
                                                         always=False)})
        node = node_selectors.node_get(actor=request.auth, node_id=hypervisor_id)
        return Response({"hypervisor": hypervisor_detail(node, version, now)})


class HypervisorUptime(NovaView):
    def get(self, request: Request, hypervisor_id: str) -> Response:
        version, now = _v(request), timezone.now()
        if version >= (2, 88):
            raise NotFound("The uptime API is removed in microversion 2.88: the hypervisor shows it.")
        node = node_selectors.node_get(actor=request.auth, node_id=hypervisor_id)
        return Response({"hypervisor": {**hypervisor_brief(node, version, now), "uptime": _uptime(node, now)}})


class HypervisorStatistics(NovaView):
    def get(self, request: Request) -> Response:
        if _v(request) >= (2, 88):
            raise NotFound("The statistics API is removed in microversion 2.88.")
        s = node_selectors.node_statistics(actor=request.auth)
        return Response({"hypervisor_statistics": {
            "count": s.count, "current_workload": 0, "disk_available_least": s.free_disk_gb,
            "free_disk_gb": s.free_disk_gb, "free_ram_mb": s.free_ram_mb, "local_gb": s.local_gb,
            "local_gb_used": s.local_gb_used, "memory_mb": s.memory_mb, "memory_mb_used": s.memory_mb_used,
            "running_vms": s.running_vms, "vcpus": s.vcpus, "vcpus_used": s.vcpus_used}})


class HypervisorSearch(NovaView):
    """``os-hypervisors/{pattern}/search`` (below 2.53): the matching nodes; ``HypervisorServers``,
    ``.../servers``: with their servers."""

    servers = False

    def get(self, request: Request, pattern: str) -> Response:
        version, now = _v(request), timezone.now()
        if version >= (2, 53):
            raise NotFound("Use GET /os-hypervisors?hypervisor_hostname_pattern=&with_servers=true from 2.53."
                           if self.servers else
                           "Use GET /os-hypervisors?hypervisor_hostname_pattern= from microversion 2.53.")
        if self.servers:
            entries = _matching(node_selectors.node_servers(actor=request.auth, hostname_pattern=pattern), pattern)
            return Response({"hypervisors": [_with_servers(e, hypervisor_brief(e.node, version, now), always=False)
                                             for e in entries]})
        nodes = _matching(node_selectors.node_list(actor=request.auth, hostname_pattern=pattern), pattern)
        return Response({"hypervisors": [hypervisor_brief(n, version, now) for n in nodes]})


class HypervisorServers(HypervisorSearch):
    servers = True


# ---- os-services --------------------------------------------------------------------------------

class Services(NovaView):
    def get(self, request: Request) -> Response:
        version, now = _v(request), timezone.now()
        nodes = node_selectors.service_list(actor=request.auth, host=request.query_params.get("host"),
                                            binary=request.query_params.get("binary"))
        return Response({"services": [service_out(n, version, now) for n in nodes]})


def _service_by_host(request: Request, host: str, binary: str) -> ComputeNode:
    nodes = node_selectors.service_list(actor=request.auth, host=host, binary=binary)
    if not nodes:
        raise NotFound(f"Service binary {binary} on host {host} could not be found." if binary ==
                       node_selectors.SERVICE_BINARY else f"Host '{host}' is not mapped to any cell")
    return nodes[0]


class ServiceAction(NovaView):
    """``PUT os-services/{enable,disable,disable-log-reason,force-down}`` (the 2.1 API; before 2.53)."""

    def put(self, request: Request, action: str) -> Response:
        version = _v(request)
        if version >= (2, 53) or action not in ("enable", "disable", "disable-log-reason", "force-down") or \
                (action == "force-down" and version < (2, 11)):
            raise NotFound(f"Unknown action: {action}")
        host, binary, change = inputs.service_action(request.data, action=action)
        node = _service_by_host(request, host, binary)
        node = node_services.compute_service_update(actor=request.auth, node_id=node.id, **vars(change))
        if action == "force-down":
            return Response({"service": {"host": node.host, "binary": node_selectors.SERVICE_BINARY,
                                         "forced_down": node.forced_down}})
        out: dict[str, Any] = {"host": node.host, "binary": node_selectors.SERVICE_BINARY, "status": _status(node)}
        if action == "disable-log-reason":
            out["disabled_reason"] = node.disabled_reason or None
        return Response({"service": out})


class ServiceDetail(NovaView):
    """``PUT os-services/{service_id}`` (2.53+: status, disabled_reason, forced_down in one body) and
    ``DELETE os-services/{service_id}`` (the integer id below 2.53, the UUID from 2.53)."""

    def delete(self, request: Request, service_id: str) -> Response:
        node_services.compute_service_delete(actor=request.auth, node_id=service_id)
        return Response(status=204)

    def put(self, request: Request, service_id: str) -> Response:
        version = _v(request)
        if version < (2, 53):
            raise NotFound(f"Unknown action: {service_id}")
        change = inputs.service_update(request.data)
        node = node_selectors.service_get(actor=request.auth, service_id=service_id)
        node = node_services.compute_service_update(actor=request.auth, node_id=node.id, **vars(change))
        return Response({"service": service_out(node, version, timezone.now())})


# ---- os-simple-tenant-usage ---------------------------------------------------------------------

def _parse_time(value: str | None, now: datetime) -> datetime:
    if not value:
        return now
    for fmt in _INPUT_FORMATS:
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"Invalid time format: {value!r} (expected %Y-%m-%dT%H:%M:%S[.%f]).") from None
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)


def _period(request: Request) -> tuple[datetime, datetime, bool]:
    start = _parse_time(request.query_params.get("start"), timezone.now())
    stop = _parse_time(request.query_params.get("end"), timezone.now())
    if not start < stop:
        raise BadRequest("Invalid start time. The start time cannot occur after the end time.")
    # Nova's "1"; the SDK (and so `openstack usage list`) sends detailed=True
    detailed = request.query_params.get("detailed", "0").lower() in ("1", "true", "yes", "on")
    return start, stop, detailed


class TenantUsages(NovaView):
    def get(self, request: Request) -> Response:
        start, stop, detailed = _period(request)
        usages = node_selectors.project_usage(actor=request.auth, start=start, stop=stop, detailed=detailed)
        return Response({"tenant_usages": [usage_out(u, servers=detailed) for u in usages]})


class TenantUsage(NovaView):
    def get(self, request: Request, project_id: str) -> Response:
        start, stop, _ = _period(request)
        usage = node_selectors.project_usage(actor=request.auth, start=start, stop=stop, project_id=project_id,
                                             detailed=True)[0]
        return Response({"tenant_usage": usage_out(usage, servers=True)})
