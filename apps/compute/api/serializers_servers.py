"""Nova v2.1 server bodies (tempest's strict 2.1 schemas: tempest/lib/api_schema/response/compute/
v2_1/servers.py). Only what the advertised microversion range needs."""
from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from apps.compute import states
from apps.compute.models import Instance, InstanceAction
from apps.compute.selectors import nodes as node_selectors
from apps.compute.selectors import servers as server_selectors
from apps.compute.selectors.metadata import hostname_for

Version = tuple[int, int]

PROGRESS_STATUSES = {"ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE", "MIGRATING"}


def _root(base: str) -> str:
    return base.rsplit("/v2.1", 1)[0]


def _time(value: datetime | None) -> str | None:
    """created/updated: ``2012-08-20T21:11:09Z``."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def _usage_time(value: datetime | None) -> str | None:
    """OS-SRV-USG and instance actions: ``2012-08-20T21:11:09.000000`` (naive, UTC)."""
    return value.replace(tzinfo=None).strftime("%Y-%m-%dT%H:%M:%S.%f") if value is not None else None


def links(base: str, server_id: str) -> list[dict[str, str]]:
    return [{"rel": "self", "href": f"{base}/servers/{server_id}"},
            {"rel": "bookmark", "href": f"{_root(base)}/servers/{server_id}"}]


def host_id(instance: Instance) -> str:
    """Nova's hostId: sha224(project id + host), "" while unplaced."""
    if not instance.host or instance.deleted:
        return ""
    return hashlib.sha224((instance.project_id + instance.host).encode()).hexdigest()


def server_brief(instance: Instance, base: str) -> dict[str, Any]:
    return {"id": instance.id, "name": instance.name, "links": links(base, instance.id)}


def server_created(instance: Instance, base: str, *, admin_pass: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {"id": instance.id, "links": links(base, instance.id),
                            "OS-DCF:diskConfig": instance.disk_config,
                            "security_groups": [{"name": n} for n in instance.security_groups or ["default"]]}
    if admin_pass:
        body["adminPass"] = getattr(instance, "admin_pass", "")
    return body


def _image(instance: Instance, base: str) -> Any:
    if not instance.image_id:
        return ""
    return {"id": instance.image_id,
            "links": [{"rel": "bookmark", "href": f"{_root(base)}/images/{instance.image_id}"}]}


def _flavor(instance: Instance, base: str) -> dict[str, Any]:
    flavor_id = instance.flavor_ref
    if instance.vm_state == states.RESIZED and instance.new_flavor:
        flavor_id = str(instance.new_flavor.get("flavorid", flavor_id))
    return {"id": flavor_id, "links": [{"rel": "bookmark", "href": f"{_root(base)}/flavors/{flavor_id}"}]}


def addresses(instance: Instance, *, extended: bool = True) -> dict[str, list[dict[str, Any]]]:
    result = server_selectors.addresses(instance)
    if not extended:
        return {label: [{"version": a["version"], "addr": a["addr"]} for a in items]
                for label, items in result.items()}
    return result


def _fault(instance: Instance, *, admin: bool) -> dict[str, Any] | None:
    fault = server_selectors.server_fault(instance)
    if fault is None:
        return None
    body: dict[str, Any] = {"code": fault.code, "created": _time(fault.created_at), "message": fault.message}
    if fault.details and (admin or fault.code != 500):
        body["details"] = fault.details
    return body


def _common(instance: Instance, base: str, *, admin: bool, extended_addresses: bool,
            version: Version) -> dict[str, Any]:
    """What every server body shows (GET, PUT and rebuild answers) at ``version``."""
    status = states.status(instance.vm_state, instance.task_state)
    body: dict[str, Any] = {
        "id": instance.id, "name": instance.name, "status": status, "tenant_id": instance.project_id,
        "user_id": instance.user_id or "", "metadata": dict(instance.metadata or {}), "hostId": host_id(instance),
        "image": _image(instance, base), "flavor": _flavor(instance, base), "created": _time(instance.created_at),
        "updated": _time(instance.updated_at), "addresses": addresses(instance, extended=extended_addresses),
        "accessIPv4": instance.access_ip_v4 or "", "accessIPv6": instance.access_ip_v6 or "",
        "links": links(base, instance.id), "OS-DCF:diskConfig": instance.disk_config,
    }
    if status in PROGRESS_STATUSES:
        body["progress"] = instance.progress
    if status in ("ERROR", "DELETED"):
        fault = _fault(instance, admin=admin)
        if fault is not None:
            body["fault"] = fault
    if version >= (2, 9):
        body["locked"] = instance.locked
    if version >= (2, 19):
        body["description"] = instance.description
    if version >= (2, 26):
        body["tags"] = server_selectors.tags_of(instance)
    return body


def _volumes(instance: Instance) -> list[Any]:
    """The server's volumes (``volume_list`` as the selectors attach it to a page)."""
    found = getattr(instance, "volume_list", None)
    return list(instance.block_devices.all()) if found is None else found


def _zone(instance: Instance) -> str:
    if instance.node is not None:
        return instance.node.availability_zone
    return instance.availability_zone or ""


def root_device_name(instance: Instance) -> str:
    """The guest's root disk: the boot volume's device (booted from volume), else the image disk vda."""
    for bdm in _volumes(instance):
        if bdm.boot_index == 0:
            return bdm.device_name or "/dev/vda"
    return "/dev/vda"


def _extended_attributes(instance: Instance) -> dict[str, Any]:
    """os-extended-server-attributes' additions of microversion 2.3 (admin only, as Nova's policy)."""
    return {
        "OS-EXT-SRV-ATTR:reservation_id": instance.reservation_id or None,
        "OS-EXT-SRV-ATTR:launch_index": instance.launch_index,
        # the guests boot their image's own kernel (no AKI/ARI images): none set, as Nova shows it
        "OS-EXT-SRV-ATTR:kernel_id": "", "OS-EXT-SRV-ATTR:ramdisk_id": "",
        "OS-EXT-SRV-ATTR:hostname": hostname_for(instance),
        "OS-EXT-SRV-ATTR:root_device_name": root_device_name(instance),
        "OS-EXT-SRV-ATTR:user_data": instance.user_data or None,
    }


def host_status(instance: Instance) -> str:
    """2.16's host_status, from the server's compute service as Nova decides it: DOWN when forced
    down, MAINTENANCE when disabled, UP while its agent heartbeats, UNKNOWN when it is silent; ""
    while the server is on no host."""
    node = instance.node
    if not instance.host or instance.deleted or node is None:
        return ""
    if node.forced_down:
        return "DOWN"
    if not node.enabled:
        return "MAINTENANCE"
    return "UP" if node_selectors.node_is_up(node) else "UNKNOWN"


def server_detail(instance: Instance, base: str, *, admin: bool, version: Version = (2, 1)) -> dict[str, Any]:
    """GET /servers/{id} and each of /servers/detail at ``version``."""
    body = _common(instance, base, admin=admin, extended_addresses=True, version=version)
    volumes = [{"id": b.volume_id} for b in _volumes(instance)]
    if version >= (2, 3):
        for entry, bdm in zip(volumes, _volumes(instance), strict=True):
            entry["delete_on_termination"] = bdm.delete_on_termination
    body.update({
        "key_name": instance.key_name, "config_drive": "True" if instance.config_drive else "",
        "security_groups": [{"name": n} for n in instance.security_groups or []],
        "OS-SRV-USG:launched_at": _usage_time(instance.launched_at),
        "OS-SRV-USG:terminated_at": _usage_time(instance.terminated_at),
        "OS-EXT-AZ:availability_zone": _zone(instance),
        "OS-EXT-STS:vm_state": instance.vm_state, "OS-EXT-STS:task_state": instance.task_state,
        "OS-EXT-STS:power_state": instance.power_state,
        "os-extended-volumes:volumes_attached": volumes,
    })
    if not body["security_groups"]:
        del body["security_groups"]
    if admin:
        body["OS-EXT-SRV-ATTR:host"] = instance.host if not instance.deleted else None
        body["OS-EXT-SRV-ATTR:hypervisor_hostname"] = (instance.node.hypervisor_hostname
                                                       if instance.node is not None else None)
        body["OS-EXT-SRV-ATTR:instance_name"] = "instance-" + instance.id.replace("-", "")[:8]
        if version >= (2, 3):
            body.update(_extended_attributes(instance))
        if version >= (2, 16):
            body["host_status"] = host_status(instance)
    return body


def server_updated(instance: Instance, base: str, *, admin: bool, version: Version = (2, 1)) -> dict[str, Any]:
    """PUT /servers/{id} (and rebuild) at ``version``: the common show body only."""
    return _common(instance, base, admin=admin, extended_addresses=False, version=version)


def action_out(action: InstanceAction, *, events: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "action": action.action, "instance_uuid": action.instance_id, "request_id": action.request_id,
        "user_id": action.user_id, "project_id": action.project_id, "start_time": _usage_time(action.start_time),
        "message": action.message,
    }
    if events:
        body["events"] = [{
            "event": e.event, "start_time": _usage_time(e.start_time), "finish_time": _usage_time(e.finish_time),
            "result": e.result, "traceback": e.traceback,
        } for e in action.events.all()]
    return body
