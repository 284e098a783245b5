"""Every write on servers (instances): create with scheduling, quotas and ports; delete; update; the
actions of the state machine (apps/compute/states.py); and the reports compute nodes send back
(workers/compute.py calls the second group). Each report records the instance action's event, a
fault on failure, releases claims exactly once (the instance row is locked and ``node`` cleared in
the same transaction) and publishes the change on commit so the dashboard updates live.

Nova talks to Neutron with its own admin credentials; the ports of an instance are made and bound
here the same way, with a service actor (``_service_actor``) after the caller's own rights on the
networks, ports and security groups were checked with the caller's actor.
"""
from __future__ import annotations

import base64
import binascii
import ipaddress
import logging
import re
import secrets
import string
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.compute import states
from apps.compute import states as _sm
from apps.compute.models import (
    ComputeNode,
    Flavor,
    Instance,
    InstanceAction,
    InstanceActionEvent,
    InstanceFault,
    InstanceTag,
    KeyPair,
    ServerGroup,
)
from apps.compute.selectors import boot_volumes as boot_volume_selectors
from apps.compute.selectors import servers as server_selectors
from apps.compute.services import NovaQuotaExceeded, boot_volumes
from apps.core import events
from apps.core.errors import BadRequest, Conflict, Forbidden, NotFound, QuotaExceeded, StratusError
from apps.identity import selectors as identity_selectors
from apps.identity import services as identity_services
from apps.identity.models import Project, User
from apps.identity.policy import Actor, require_admin, require_write

log = logging.getLogger(__name__)

NOT_GIVEN: Any = ...
MAX_USER_DATA = 65535
MAX_TAGS = 50
FAULT_MESSAGE_MAX = 255


class InstanceLocked(Conflict):
    pass


# ---- small helpers ---------------------------------------------------------------------------

def _service_actor(project_id: str, user_id: str | None) -> Actor:
    """Nova's own admin identity towards Neutron/Glance for one instance's owner (never given to a caller)."""
    return Actor(user=User(id=user_id or "nova"), project=Project(id=project_id),
                 roles=frozenset({"admin", "member"}), system=True)


def _owner_actor(instance: Instance) -> Actor:
    """The instance's owner as a member of its project (snapshots are stored as the owner)."""
    return Actor(user=User(id=instance.user_id or "nova"), project=Project(id=instance.project_id),
                 roles=frozenset({"member"}))


def _text(value: Any, *, field: str, max_length: int = 255, blank: bool = True) -> str:
    if not isinstance(value, str) or len(value) > max_length or (not blank and not value.strip()):
        raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value}. "
                         f"It must be a{'' if blank else ' non-blank'} string of at most {max_length} characters.")
    return value


def _count(value: Any, *, field: str) -> int:
    if isinstance(value, bool):
        raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value}.")
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or value < 1:
        raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value}. It must be an integer >= 1.")
    return value


def _bool(value: Any, *, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false", "1", "0", "yes", "no", "on", "off", ""}:
        return value.lower() in {"true", "1", "yes", "on"}
    raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value}. It must be a boolean.")


def _access_ip(value: Any, version: int) -> str:
    if value is None or value == "":
        return ""
    field = f"accessIPv{version}"
    try:
        address = ipaddress.ip_address(value) if isinstance(value, str) else None
    except ValueError:
        address = None
    if address is None or address.version != version:
        raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value}. "
                         f"It is not an IPv{version} address.")
    return str(address)


def _disk_config(value: Any) -> str:
    if value not in ("AUTO", "MANUAL"):
        raise BadRequest(f"Invalid input for field/attribute OS-DCF:diskConfig. Value: {value}. "
                         "It must be AUTO or MANUAL.")
    return value


def _metadata(value: Any, *, project_id: str, current: int = 0) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise BadRequest("Invalid input for field/attribute metadata. Value: it must be an object.")
    clean: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not 1 <= len(key) <= 255:
            raise BadRequest(f"Invalid input for field/attribute metadata. Value: {key!r}: keys are 1-255 characters.")
        if not isinstance(item, str) or len(item) > 255:
            raise BadRequest(f"Invalid input for field/attribute metadata. Value: {item!r}: values are strings of at "
                             "most 255 characters.")
        clean[key] = item
    limit = identity_selectors.quota_limits(project=Project(id=project_id)).get("metadata_items", 128)
    if limit >= 0 and len(clean) + current > limit:
        raise NovaQuotaExceeded(f"Quota exceeded for metadata_items: Requested {len(clean) + current}, but the "
                                f"limit is {limit}.", resource="metadata_items", limit=limit, in_use=current,
                                requested=len(clean))
    return clean


def _tag(value: Any) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 60 or "/" in value or "," in value:
        raise BadRequest(f"Invalid tag {value!r}: 1-60 characters, without '/' or ','.")
    return value


def _hostname(name: str, instance_id: str) -> str:
    text = re.sub(r"[^a-z0-9.-]+", "-", name.lower()).strip("-.")[:63].strip("-.")
    return text or f"server-{instance_id}"


def _admin_password(length: int = 12) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _flavor_json(flavor: Flavor) -> dict[str, Any]:
    return {"original_name": flavor.name, "flavorid": flavor.flavorid, "vcpus": flavor.vcpus,
            "ram": flavor.memory_mb, "disk": flavor.root_gb, "ephemeral": flavor.ephemeral_gb, "swap": flavor.swap,
            "extra_specs": {s.key: s.value for s in flavor.extra_specs.all()}}


def _flavor_disk(flavor: Mapping[str, Any]) -> int:
    return int(flavor["disk"]) + int(flavor["ephemeral"]) + (int(flavor["swap"]) + 1023) // 1024


def _publish(instance: Instance, kind: str = "state") -> None:
    events.publish(project_id=instance.project_id, kind=kind, resource="instance", resource_id=instance.id,
                   data={"name": instance.name, "status": states.status(instance.vm_state, instance.task_state),
                         "vm_state": instance.vm_state, "task_state": instance.task_state,
                         "power_state": instance.power_state, "host": instance.host or ""})


def _send(task: str, *, queue: str, **kwargs: Any) -> None:
    """On commit: ``workers.compute.<task>.apply_async(kwargs, queue)``. A broker failure leaves the
    instance in its task state (the build timeout or the user's delete gets it out)."""
    def send() -> None:
        try:
            from workers import compute as compute_tasks

            getattr(compute_tasks, task).apply_async(kwargs=kwargs, queue=queue)
        except Exception:
            log.exception("could not send workers.compute.%s to %s", task, queue)

    transaction.on_commit(send)


def _save(instance: Instance, *fields: str) -> None:
    instance.save(update_fields=[*dict.fromkeys(fields), "updated_at"])


# ---- the action log --------------------------------------------------------------------------

def _action_start(instance: Instance, *, record: str, request_id: str, user_id: str | None,
                  project_id: str | None) -> InstanceAction:
    return InstanceAction.objects.create(instance=instance, action=record, request_id=request_id or "",
                                         user_id=user_id or "", project_id=project_id or "",
                                         start_time=timezone.now())


def _event_start(action: InstanceAction, event: str, host: str | None) -> InstanceActionEvent:
    return InstanceActionEvent.objects.create(action=action, event=event, start_time=timezone.now(),
                                              host=host or "")


def _find_action(instance: Instance, request_id: str, record: str | None = None) -> InstanceAction | None:
    qs = InstanceAction.objects.filter(instance=instance)
    if request_id:
        found = qs.filter(request_id=request_id).order_by("-start_time", "-id").first()
        if found is not None:
            return found
    if record:
        qs = qs.filter(action=record)
    return qs.order_by("-start_time", "-id").first()


def _event_finish(instance: Instance, *, request_id: str, record: str, event: str, ok: bool, host: str = "",
                  traceback: str | None = None, finish_action: bool = True) -> None:
    action = _find_action(instance, request_id, record)
    if action is None:
        return
    now = timezone.now()
    row = action.events.filter(event=event, finish_time__isnull=True).order_by("-start_time", "-id").first()
    if row is None:
        row = InstanceActionEvent(action=action, event=event, start_time=now, host=host)
    row.finish_time = now
    row.result = "Success" if ok else "Error"
    row.traceback = traceback if not ok else None
    row.host = host or row.host
    row.save()
    fields = []
    if not ok:
        action.message = "Error"
        fields.append("message")
    if finish_action:
        action.finish_time = now
        fields.append("finish_time")
    if fields:
        action.save(update_fields=[*fields, "updated_at"])


def _fault(instance: Instance, *, message: str, details: str = "", code: int = 500, host: str = "") -> None:
    InstanceFault.objects.create(instance=instance, code=code, message=message[:FAULT_MESSAGE_MAX],
                                 details=details or "", host=host or "")


# ---- claims, ports, quota --------------------------------------------------------------------

def _release_claim(instance: Instance) -> None:
    """Give the node back what the instance holds there (once: ``node`` is cleared on the locked row).
    A pending resize holds the new flavor too."""
    from apps.compute import scheduler

    if instance.node_id is None:
        return
    vcpus, memory_mb, disk_gb = instance.vcpus, instance.memory_mb, instance.disk_gb
    if instance.new_flavor:
        vcpus += int(instance.new_flavor["vcpus"])
        memory_mb += int(instance.new_flavor["ram"])
        disk_gb += _flavor_disk(instance.new_flavor)
    scheduler.claim_release(node_id=instance.node_id, vcpus=vcpus, memory_mb=memory_mb, disk_gb=disk_gb)
    instance.node = None


def _quota_deltas(instance: Instance) -> dict[str, int]:
    deltas = {"instances": 1, "cores": instance.vcpus, "ram": instance.memory_mb}
    if instance.new_flavor:  # the growth reserved for a pending resize
        deltas["cores"] += max(0, int(instance.new_flavor["vcpus"]) - instance.vcpus)
        deltas["ram"] += max(0, int(instance.new_flavor["ram"]) - instance.memory_mb)
    return deltas


def _bind_ports(instance: Instance, host: str, zone: str) -> None:
    from apps.networks import services as network_services
    from apps.networks.models import Port

    actor = _service_actor(instance.project_id, instance.user_id)
    for port_id in Port.objects.filter(device_id=instance.id, project_id=instance.project_id).values_list(
            "id", flat=True):
        network_services.port_update(actor=actor, port_id=port_id, changes={
            "binding:host_id": host, "device_owner": f"compute:{zone}"})


def _unbind_ports(instance: Instance) -> None:
    from apps.networks import services as network_services
    from apps.networks.models import Port

    actor = _service_actor(instance.project_id, instance.user_id)
    for port_id in Port.objects.filter(device_id=instance.id, project_id=instance.project_id).exclude(
            binding_host_id="").values_list("id", flat=True):
        network_services.port_update(actor=actor, port_id=port_id, changes={"binding:host_id": ""})


def _delete_ports(instance: Instance) -> None:
    """Ports made for the instance are deleted; ports the user gave are detached and kept (Nova)."""
    from apps.networks import services as network_services
    from apps.networks.models import Port

    actor = _service_actor(instance.project_id, instance.user_id)
    given = {str(r.get("port")) for r in (instance.requested_networks or []) if isinstance(r, dict) and r.get("port")}
    for port_id in Port.objects.filter(device_id=instance.id, project_id=instance.project_id).values_list(
            "id", flat=True):
        if port_id in given:
            network_services.port_update(actor=actor, port_id=port_id, changes={
                "device_id": "", "device_owner": "", "binding:host_id": ""})
        else:
            network_services.port_delete(actor=actor, port_id=port_id)


def _mark_deleted(instance: Instance, *, request_id: str, host: str = "") -> None:
    """The end of an instance: claim, ports and quota given back, the row kept as deleted."""
    # lock order everywhere: instance row → quota usage → node → network/ports (as server_create takes them)
    identity_services.quota_release(project_id=instance.project_id, deltas=_quota_deltas(instance))
    _release_claim(instance)
    _delete_ports(instance)
    boot_volumes.server_volumes_release(instance=instance)
    InstanceTag.objects.filter(instance=instance).delete()
    now = timezone.now()
    instance.vm_state = states.DELETED
    instance.task_state = None
    instance.power_state = states.NOSTATE
    instance.new_flavor = None
    instance.deleted = True
    instance.deleted_at = now
    instance.terminated_at = now
    _save(instance, "vm_state", "task_state", "power_state", "new_flavor", "deleted", "deleted_at",
          "terminated_at", "node")
    _event_finish(instance, request_id=request_id, record="delete", event="compute_terminate_instance", ok=True,
                  host=host)
    _publish(instance, "deleted")


# ---- create ----------------------------------------------------------------------------------

def _image_id(image_ref: Any) -> str:
    if not isinstance(image_ref, str):
        raise BadRequest(f"Invalid imageRef provided: {image_ref!r}.")
    return image_ref.rstrip("/").rsplit("/", 1)[-1]


def _check_image(actor: Actor, image_ref: Any, flavor: Flavor, *, project_id: str | None = None) -> Any:
    """The image a server of ``project_id`` (the caller's by default) boots from: visible to the
    caller, active, fitting the flavor; its kernel and ramdisk readable by that project."""
    from apps.images import selectors as image_selectors

    image_id = _image_id(image_ref)
    try:
        image = image_selectors.image_get(actor=actor, image_id=image_id)
    except NotFound:
        raise BadRequest(f"Image {image_id} could not be found.") from None
    if image.status != "active":
        raise BadRequest(f"Image {image_id} is not active.")
    _check_kernel_images(image, project_id=project_id or actor.project_id or "")
    if image.min_ram and flavor.memory_mb < image.min_ram:
        raise BadRequest("Flavor's memory is too small for requested image.")
    if flavor.root_gb:
        if image.min_disk and flavor.root_gb < image.min_disk:
            raise BadRequest("Flavor's disk is too small for requested image.")
        if image.size and image.size > flavor.root_gb * 1024**3:
            raise BadRequest("Flavor's disk is too small for requested image.")
    return image


def _check_kernel_images(image: Any, *, project_id: str) -> None:
    """The images a boot image names for direct kernel boot (``kernel_id``, ``ramdisk_id``) must be
    readable by the server's project and active, as Nova fetches them with the user's context."""
    from apps.images import selectors as image_selectors

    for key in ("kernel_id", "ramdisk_id"):
        part_id = str((image.properties or {}).get(key) or "")
        if not part_id:
            continue
        try:
            part = image_selectors.image_get_for_project(project_id=project_id, image_id=part_id)
        except NotFound:
            raise BadRequest(f"Image {part_id} could not be found.") from None
        if part.status != "active":
            raise BadRequest(f"Image {part_id} is not active.")


def _check_flavor(actor: Actor, flavor_ref: Any) -> Flavor:
    from apps.compute import selectors as compute_selectors

    if isinstance(flavor_ref, int) and not isinstance(flavor_ref, bool):
        flavor_ref = str(flavor_ref)
    if not isinstance(flavor_ref, str) or not flavor_ref:
        raise BadRequest(f"Invalid flavorRef provided: {flavor_ref!r}.")
    flavor_id = flavor_ref.rstrip("/").rsplit("/", 1)[-1]
    try:
        flavor = compute_selectors.flavor_get(actor=actor, flavor_id=flavor_id)
    except NotFound:
        raise BadRequest(f"Flavor {flavor_id} could not be found.") from None
    if flavor.disabled:
        raise BadRequest(f"Flavor {flavor_id} is disabled.")
    return flavor


def _check_security_groups(actor: Actor, project_id: str, value: Any) -> list[Any]:
    from apps.networks import selectors as network_selectors
    from apps.networks import services as network_services

    names = value if value else ["default"]
    if not isinstance(names, list):
        raise BadRequest("Invalid input for field/attribute security_groups: a list is expected.")
    groups = []
    for ref in names:
        if isinstance(ref, Mapping):
            ref = ref.get("name")
        if not isinstance(ref, str) or not ref:
            raise BadRequest(f"Invalid input for field/attribute security_groups. Value: {ref!r}.")
        if ref == "default":
            network_services.security_group_ensure_default(project_id=project_id)
        try:
            group = network_selectors.security_group_by_name_or_id(actor=actor, ref=ref)
        except NotFound:
            raise BadRequest(f"Security group {ref} not found for project {project_id}.") from None
        if group not in groups:
            groups.append(group)
    return groups


def _auto_network(project_id: str, *, required: bool) -> list[dict[str, str]]:
    """``networks: "auto"`` (or none given): the project's only network, else the only shared one."""
    from apps.networks.models import Network

    own = list(Network.objects.filter(project_id=project_id, external=False).values_list("id", flat=True)[:2])
    candidates = own or list(Network.objects.filter(shared=True, external=False).values_list("id", flat=True)[:2])
    if len(candidates) > 1:
        raise Conflict("Multiple possible networks found, use a Network ID to be more specific.")
    if not candidates:
        if required:
            raise BadRequest(f"Unable to automatically allocate a network for project {project_id}: the project "
                             "has no network. Create one or boot with networks 'none'.")
        return []
    return [{"uuid": candidates[0]}]


def _check_networks(actor: Actor, project_id: str, networks: Any, *, count: int) -> tuple[Any, list[dict]]:
    """(what to remember as requested_networks, the list of requests to make ports for)."""
    from apps.networks import selectors as network_selectors

    if networks is None:
        return [], _auto_network(project_id, required=False)
    if networks == "none":
        return "none", []
    if networks == "auto":
        return "auto", _auto_network(project_id, required=True)
    if not isinstance(networks, list):
        raise BadRequest("Invalid input for field/attribute networks: a list, 'auto' or 'none'.")
    requests: list[dict[str, str]] = []
    for item in networks:
        if not isinstance(item, Mapping) or not item or set(item) - {"uuid", "port", "fixed_ip", "tag"}:
            raise BadRequest(f"Invalid input for field/attribute networks. Value: {item!r}.")
        if item.get("port"):
            port_id = str(item["port"])
            try:
                port = network_selectors.port_get(actor=actor, port_id=port_id)
            except NotFound:
                raise BadRequest(f"Port {port_id} not found.") from None
            if port.device_id:
                raise Conflict(f"Port {port_id} is still in use.")
            if count > 1:
                raise BadRequest("Unable to launch multiple instances with a single configured port ID. Please "
                                 "launch your instance one by one with different ports.")
            if any(r.get("port") == port_id for r in requests):
                raise BadRequest(f"Port {port_id} is requested more than once.")
            requests.append({"port": port_id})
            continue
        network_id = item.get("uuid")
        if not isinstance(network_id, str) or not network_id:
            raise BadRequest(f"Invalid input for field/attribute networks. Value: {item!r}: uuid or port needed.")
        try:
            network = network_selectors.network_get(actor=actor, network_id=network_id)
        except NotFound:
            raise BadRequest(f"Network {network_id} could not be found.") from None
        if network.external and not actor.is_admin and network.project_id != project_id and not network.shared:
            raise Forbidden(f"It is not allowed to create an interface on external network {network_id}")
        request = {"uuid": network_id}
        if item.get("fixed_ip"):
            try:
                request["fixed_ip"] = str(ipaddress.ip_address(item["fixed_ip"]))
            except ValueError:
                raise BadRequest(f"Invalid fixed IP address ({item['fixed_ip']})") from None
            if count > 1:
                raise BadRequest("max_count cannot be greater than 1 if an fixed_ip is specified.")
        requests.append(request)
    return requests, requests


def _make_ports(instance: Instance, requests: list[dict[str, str]], groups: list[Any], host: str, zone: str) -> None:
    from apps.networks import errors as network_errors
    from apps.networks import services as network_services

    actor = _service_actor(instance.project_id, instance.user_id)
    for request in requests:
        common = {"device_id": instance.id, "device_owner": f"compute:{zone}", "binding:host_id": host}
        try:
            if "port" in request:
                network_services.port_update(actor=actor, port_id=request["port"], changes=common)
                continue
            body: dict[str, Any] = {**common, "project_id": instance.project_id,
                                    "security_groups": [g.id for g in groups]}
            if request.get("fixed_ip"):
                body["fixed_ips"] = [{"ip_address": request["fixed_ip"]}]
            network_services.port_create(actor=actor, network_id=request["uuid"], body=body)
        except network_errors.OverQuota:
            raise NovaQuotaExceeded("Maximum number of ports exceeded", resource="port", limit=0, in_use=0,
                                    requested=1) from None
        except network_errors.IpAddressAlreadyAllocated as exc:
            raise BadRequest(f"Fixed IP address {request.get('fixed_ip')} is already in use on instance: "
                             f"{exc.message}") from None
        except network_errors.IpAddressGenerationFailure:
            raise Conflict(f"No more IP addresses available on network {request.get('uuid')}.") from None


def _reserve_instances(project_id: str, *, vcpus: int, memory_mb: int, min_count: int, max_count: int) -> int:
    """Reserve as many instances (≤ max_count, ≥ min_count) as the quota allows; 403 otherwise."""
    last: QuotaExceeded | None = None
    for count in range(max_count, min_count - 1, -1):
        try:
            with transaction.atomic():
                identity_services.quota_reserve(project_id=project_id, deltas={
                    "instances": count, "cores": count * vcpus, "ram": count * memory_mb})
            return count
        except QuotaExceeded as exc:
            last = exc
    assert last is not None
    raise NovaQuotaExceeded(f"Quota exceeded for {last.resource}: Requested {last.requested}, but already used "
                            f"{last.in_use} of {last.limit} {last.resource}", resource=last.resource,
                            limit=last.limit, in_use=last.in_use, requested=last.requested)


def _zone(actor: Actor, value: Any) -> tuple[str | None, str | None]:
    """(zone, force_host) from ``availability_zone`` ("zone", "zone:host", "zone::node", ":host")."""
    if value is None or value == "":
        return None, None
    if not isinstance(value, str):
        raise BadRequest(f"Invalid input for field/attribute availability_zone. Value: {value!r}.")
    zone, sep, rest = value.partition(":")
    force_host = None
    if sep:
        require_admin(actor, action="choose the host of a server")
        host = rest.split(":", 1)[0] or rest.split(":", 1)[-1]
        force_host = f"{zone}:{host}" if zone else host
    zone_name = zone or None
    if zone_name is not None:
        known = set(settings.STRATUS_AVAILABILITY_ZONES)
        known |= set(ComputeNode.objects.values_list("availability_zone", flat=True).distinct())
        if zone_name not in known:
            raise BadRequest(f"The requested availability zone is not available: {zone_name}")
    return zone_name, force_host


def _server_group(actor: Actor, hints: Any, project_id: str) -> ServerGroup | None:
    if hints is None:
        return None
    if not isinstance(hints, Mapping):
        raise BadRequest("Invalid input for field/attribute os:scheduler_hints: an object is expected.")
    group_id = hints.get("group")
    if not group_id:
        return None
    group = ServerGroup.objects.select_for_update().filter(pk=str(group_id)).first()
    if group is None or not (actor.is_admin or group.project_id == project_id):
        raise BadRequest(f"Invalid input for field/attribute group. Value: {group_id}. Server group not found.")
    return group


def _group_hosts(group: ServerGroup | None) -> tuple[str, ...]:
    if group is None:
        return ()
    return tuple(Instance.objects.filter(server_group=group, deleted=False, node__isnull=False)
                 .values_list("host", flat=True))


def _placement(instance: Instance, *, force_host: str | None, group: ServerGroup | None,
               image_properties: Mapping[str, str], exclude: tuple[str, ...] = ()) -> Any:
    from apps.compute import scheduler

    return scheduler.PlacementRequest(
        vcpus=instance.vcpus, memory_mb=instance.memory_mb, disk_gb=instance.disk_gb,
        availability_zone=instance.availability_zone, force_host=force_host,
        group_policy=group.policy if group is not None else None, group_hosts=_group_hosts(group),
        image_properties={k: str(v) for k, v in image_properties.items()}, exclude_hosts=exclude)


def _schedule(request: Any) -> ComputeNode | str:
    """Claim a node for the instance (a savepoint: a failure claims nothing); the reason on NoValidHost."""
    from apps.compute import scheduler

    try:
        with transaction.atomic():
            return scheduler.schedule_and_claim(request)
    except scheduler.NoValidHost as exc:
        return str(exc) or scheduler.NO_VALID_HOST


def _fail_build(instance: Instance, *, message: str, details: str = "", request_id: str = "", host: str = "",
                event: str | None = "compute__do_build_and_run_instance") -> None:
    """ERROR with the fault; ``event`` (if any) is recorded as failed, and the create action ends."""
    instance.vm_state = states.ERROR
    instance.task_state = None
    _save(instance, "vm_state", "task_state", "node", "host", "attempts", "tried_hosts")
    _fault(instance, message=message, details=details, host=host)
    if event is not None:
        _event_finish(instance, request_id=request_id, record="create", event=event, ok=False, host=host,
                      traceback=details or message)
    else:
        action = _find_action(instance, request_id, "create")
        if action is not None:
            action.finish_time = timezone.now()
            action.message = "Error"
            action.save(update_fields=["finish_time", "message", "updated_at"])
    _publish(instance)


def _dispatch_spawn(instance: Instance, node: ComputeNode, *, request_id: str, action: InstanceAction | None) -> None:
    instance.node = node
    instance.host = node.host
    instance.attempts += 1
    instance.tried_hosts = [*instance.tried_hosts, node.host]
    instance.task_state = states.SPAWNING
    _save(instance, "node", "host", "attempts", "tried_hosts", "task_state")
    if action is not None:
        _event_start(action, "compute__do_build_and_run_instance", node.host)
    _send("spawn", queue=node.queue, instance_id=instance.id, request_id=request_id)


def server_create(*, actor: Actor, name: Any, image_ref: Any, flavor_ref: Any, networks: Any,
                  key_name: Any = None, security_groups: Any = None, user_data: Any = None, metadata: Any = None,
                  config_drive: Any = False, availability_zone: Any = None, scheduler_hints: Any = None,
                  min_count: Any = 1, max_count: Any = 1, description: Any = None, access_ip_v4: Any = "",
                  access_ip_v6: Any = "", block_device_mapping_v2: Any = None, block_device_mapping: Any = None,
                  tags: Any = None,
                  admin_pass: Any = None, disk_config: Any = "MANUAL", request_id: str) -> list[Instance]:
    """Boot ``min_count``..``max_count`` servers (as many as the quota allows, named ``name-1``.. when
    more than one, sharing one reservation id). Every check is done before anything is written; then in
    one transaction: quota, the rows, scheduling and claims, ports bound to the chosen node. A server no
    node can take goes to ERROR with the fault "No valid host was found..." (the call still succeeds,
    as Nova's). The spawn tasks are sent to the nodes' queues on commit. Each returned instance carries
    ``admin_pass`` (not stored)."""
    project_id = actor.project_id
    if project_id is None:
        raise BadRequest("A project-scoped token is needed to create a server.")
    require_write(actor, project_id, what="server")
    name = _text(name, field="name", blank=False)
    min_count = _count(min_count, field="min_count")
    max_count = _count(max_count, field="max_count")
    if min_count > max_count:
        raise BadRequest("min_count must be <= max_count")
    if description is not None:
        description = _text(description, field="description")
    flavor = _check_flavor(actor, flavor_ref)
    if block_device_mapping and block_device_mapping_v2:
        raise BadRequest("Using different block_device_mapping syntaxes is not allowed in the same request.")
    if block_device_mapping:
        block_device_mapping_v2 = boot_volumes.from_legacy(block_device_mapping)
    plan = boot_volumes.boot_plan(actor=actor, image_ref=image_ref, block_device_mapping_v2=block_device_mapping_v2,
                                  flavor=flavor, count=max_count, check_image=_check_image)
    image = plan.image
    keypair = None
    if key_name is not None:
        keypair = KeyPair.objects.filter(user_id=actor.user_id, name=key_name).first()
        if keypair is None:
            raise BadRequest(f"Invalid key_name provided: {key_name}.")
    groups = _check_security_groups(actor, project_id, security_groups)
    requested, requests = _check_networks(actor, project_id, networks, count=max_count)
    if user_data is not None:
        if not isinstance(user_data, str) or len(user_data) > MAX_USER_DATA:
            raise BadRequest(f"Invalid input for field/attribute user_data: base64 text of at most {MAX_USER_DATA} "
                             "characters.")
        try:
            base64.b64decode(user_data, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("Invalid input for field/attribute user_data: it is not valid base64.") from None
    meta = _metadata(metadata, project_id=project_id)
    config_drive = _bool(config_drive if config_drive is not None else False, field="config_drive")
    zone, force_host = _zone(actor, availability_zone)
    access_v4, access_v6 = _access_ip(access_ip_v4, 4), _access_ip(access_ip_v6, 6)
    tag_list = list(dict.fromkeys(_tag(t) for t in (tags or [])))
    if len(tag_list) > MAX_TAGS:
        raise BadRequest(f"The number of tags exceeded the per-server limit {MAX_TAGS}")
    if admin_pass is not None and not isinstance(admin_pass, str):
        raise BadRequest("Invalid input for field/attribute adminPass: a string is expected.")
    disk_config = _disk_config(disk_config or "MANUAL")
    flavor_json = _flavor_json(flavor)

    created: list[Instance] = []
    with transaction.atomic():
        group = _server_group(actor, scheduler_hints, project_id)
        count = _reserve_instances(project_id, vcpus=flavor.vcpus, memory_mb=flavor.memory_mb,
                                   min_count=min_count, max_count=max_count)
        if group is not None:
            limit = identity_selectors.quota_limits(project=Project(id=project_id)).get("server_group_members", -1)
            members = Instance.objects.filter(server_group=group, deleted=False).count()
            if limit >= 0 and members + count > limit:
                raise NovaQuotaExceeded("Quota exceeded, too many servers in group", resource="server_group_members",
                                        limit=limit, in_use=members, requested=count)
        reservation_id = "r-" + secrets.token_hex(4)
        for index in range(count):
            instance = Instance(
                project_id=project_id, user_id=actor.user_id, name=name if count == 1 else f"{name}-{index + 1}",
                description=description, image_id=plan.image_id, flavor_ref=flavor.flavorid, vcpus=flavor.vcpus,
                memory_mb=flavor.memory_mb, root_gb=flavor.root_gb, ephemeral_gb=flavor.ephemeral_gb,
                swap=flavor.swap, flavor=flavor_json, key_name=keypair.name if keypair else None,
                key_data=keypair.public_key if keypair else None, user_data=user_data, metadata=meta,
                security_groups=[g.name for g in groups], requested_networks=requested,
                config_drive=config_drive, availability_zone=zone, server_group=group,
                reservation_id=reservation_id, launch_index=index, vm_state=states.BUILDING,
                task_state=states.SCHEDULING, access_ip_v4=access_v4, access_ip_v6=access_v6,
                disk_config=disk_config)
            instance.hostname = _hostname(instance.name, instance.id)
            instance.save(force_insert=True)
            if tag_list:
                InstanceTag.objects.bulk_create([InstanceTag(instance=instance, tag=t) for t in tag_list])
            action = _action_start(instance, record="create", request_id=request_id, user_id=actor.user_id,
                                   project_id=project_id)
            boot_volumes.boot_volumes_create(actor=actor, instance=instance, plan=plan)
            node = _schedule(_placement(instance, force_host=force_host, group=group,
                                                  image_properties=(image.properties if image is not None
                                                                    else {}) or {}))
            if isinstance(node, str):
                _fail_build(instance, message=node, request_id=request_id, event="conductor_schedule_and_build")
            else:
                _make_ports(instance, requests, groups, node.host, node.availability_zone)
                _dispatch_spawn(instance, node, request_id=request_id, action=action)
                _publish(instance, "created")
            instance.admin_pass = admin_pass or _admin_password()  # type: ignore[attr-defined]
            created.append(instance)
    return created


# ---- node reports ----------------------------------------------------------------------------

def _locked(instance_id: str) -> Instance | None:
    return Instance.objects.select_for_update().filter(pk=instance_id).first()


def server_spawned(*, instance_id: str, host: str, power_state: int, request_id: str = "") -> None:
    """The node booted the instance: ACTIVE, launched now."""
    with transaction.atomic():
        instance = _locked(instance_id)
        if instance is None or instance.deleted or instance.vm_state != states.BUILDING or instance.host != host:
            log.info("stale spawn report for %s from %s", instance_id, host)
            return
        if instance.task_state == states.DELETING:  # deleted while building: the node's destroy follows
            instance.power_state = int(power_state)
            _save(instance, "power_state")
            return
        instance.vm_state = states.ACTIVE
        instance.task_state = None
        instance.power_state = int(power_state)
        instance.launched_at = timezone.now()
        _save(instance, "vm_state", "task_state", "power_state", "launched_at")
        boot_volumes.boot_volumes_attached(instance=instance, host=host)
        _event_finish(instance, request_id=request_id, record="create", event="compute__do_build_and_run_instance",
                      ok=True, host=host)
        _publish(instance)


def server_boot_volumes_ready(*, instance_id: str, host: str, request_id: str = "") -> str:
    """The node asks, before it builds the domain, whether the server's new volumes are made:
    "ready" (each reserved for it), "waiting" (ask again), "gone" (deleted, or no longer building on
    ``host``: build nothing) or "failed": a volume went to error, so the server is in ERROR with the
    fault, its claim and port bindings released (no other node would do better)."""
    with transaction.atomic():
        instance = _locked(instance_id)
        if instance is None or instance.deleted or instance.vm_state != states.BUILDING or instance.host != host \
                or instance.task_state == states.DELETING:
            return "gone"
        outcome, reason = boot_volumes.boot_volumes_check(instance=instance)
        if outcome == "failed":
            _boot_volume_failed(instance, host=host, message=f"Build of instance {instance.id} aborted: {reason}",
                                request_id=request_id)
        return outcome


def server_boot_volumes_timed_out(*, instance_id: str, host: str, seconds: float, request_id: str = "") -> None:
    """The node waited ``seconds`` for the server's volumes: ERROR with the fault, claims released."""
    with transaction.atomic():
        instance = _locked(instance_id)
        if instance is None or instance.deleted or instance.vm_state != states.BUILDING or instance.host != host:
            return
        _boot_volume_failed(instance, host=host, request_id=request_id,
                            message=f"Build of instance {instance.id} aborted: its volumes did not finish being "
                                    f"created even after we waited {int(seconds)} seconds.")


def _boot_volume_failed(instance: Instance, *, host: str, message: str, request_id: str) -> None:
    _release_claim(instance)
    _unbind_ports(instance)
    _fail_build(instance, message=message, request_id=request_id, host=host)


def server_spawn_failed(*, instance_id: str, host: str, message: str, details: str = "",
                        request_id: str = "", reschedule: bool = True) -> None:
    """The node could not boot the instance: its claim and port bindings there are released; another
    node is tried while attempts < STRATUS_SCHEDULER_MAX_ATTEMPTS, else ERROR with the fault. A failure
    no other node would avoid (``reschedule=False``: the image was refused, Nova's ImageUnacceptable
    aborting the build) goes to ERROR with its own message at once."""
    from apps.images.models import Image

    with transaction.atomic():
        instance = _locked(instance_id)
        if instance is None or instance.deleted or instance.vm_state != states.BUILDING or instance.host != host:
            log.info("stale spawn failure for %s from %s", instance_id, host)
            return
        _event_finish(instance, request_id=request_id, record="create", event="compute__do_build_and_run_instance",
                      ok=False, host=host, traceback=details or message, finish_action=False)
        _release_claim(instance)
        _unbind_ports(instance)
        if instance.task_state == states.DELETING:
            _save(instance, "node")
            return
        if not reschedule:
            _fail_build(instance, message=message, details=details, request_id=request_id, host=host, event=None)
            return
        max_attempts = settings.STRATUS_SCHEDULER_MAX_ATTEMPTS
        if instance.attempts >= max_attempts:
            _fail_build(instance, message=f"Exceeded maximum number of retries. Exceeded max scheduling attempts "
                                          f"{max_attempts} for instance {instance.id}. Last exception: {message}",
                        details=details, request_id=request_id, host=host, event=None)
            return
        image = Image.objects.filter(pk=instance.image_id).first()
        node = _schedule(_placement(
            instance, force_host=None, group=instance.server_group,
            image_properties=(image.properties if image is not None else {}) or {},
            exclude=tuple(instance.tried_hosts)))
        if isinstance(node, str):
            _fail_build(instance, message=node, details=f"Last failure on {host}: {message}\n{details}".strip(),
                        request_id=request_id, host=host, event=None)
            return
        instance.task_state = states.SCHEDULING
        _bind_ports(instance, node.host, node.availability_zone)
        _dispatch_spawn(instance, node, request_id=request_id, action=_find_action(instance, request_id, "create"))
        _publish(instance)


def _quota_give_back(project_id: str, deltas: dict[str, int]) -> None:
    if any(deltas.values()):
        identity_services.quota_release(project_id=project_id, deltas={k: v for k, v in deltas.items() if v})


def _finish_resize_done(instance: Instance, action: states.Action) -> None:
    """Confirm: the new flavor becomes the instance's, the old claim and quota are given back.
    Revert: the new flavor's claim and the growth reserved are given back."""
    from apps.compute import scheduler

    new = instance.new_flavor
    if not new:
        return
    if action.name == "confirmResize":
        old_claim = {"vcpus": instance.vcpus, "ram": instance.memory_mb, "disk": instance.disk_gb}
        release = {"cores": max(0, instance.vcpus - int(new["vcpus"])),
                   "ram": max(0, instance.memory_mb - int(new["ram"]))}
        _quota_give_back(instance.project_id, release)
        instance.vcpus, instance.memory_mb = int(new["vcpus"]), int(new["ram"])
        instance.root_gb, instance.ephemeral_gb, instance.swap = int(new["disk"]), int(new["ephemeral"]), \
            int(new["swap"])
        instance.flavor_ref = str(new.get("flavorid", instance.flavor_ref))
        instance.flavor = dict(new)
        if instance.node_id is not None:
            scheduler.claim_release(node_id=instance.node_id, vcpus=old_claim["vcpus"],
                                    memory_mb=old_claim["ram"], disk_gb=old_claim["disk"])
    else:
        _quota_give_back(instance.project_id, {"cores": max(0, int(new["vcpus"]) - instance.vcpus),
                                               "ram": max(0, int(new["ram"]) - instance.memory_mb)})
        if instance.node_id is not None:
            scheduler.claim_release(node_id=instance.node_id, vcpus=int(new["vcpus"]), memory_mb=int(new["ram"]),
                                    disk_gb=_flavor_disk(new))
    instance.new_flavor = None


def server_task_done(*, instance_id: str, host: str, task: str, power_state: int, request_id: str = "") -> None:
    """The node finished ``task`` (the task_state being finished): the instance goes to the action's
    ``done`` vm_state, its task cleared."""
    with transaction.atomic():
        instance = _locked(instance_id)
        if instance is None or instance.deleted or instance.task_state is None:
            log.info("stale task report %s for %s", task, instance_id)
            return
        action = states.action_for_task(instance.task_state)
        if action is None or action.name in ("create", "delete") or not (action.accepts(task)
                                                                         or task == instance.task_state):
            log.info("task report %s for %s does not match its task_state %s", task, instance_id,
                     instance.task_state)
            return
        previous = instance.vm_state
        if action.name in ("confirmResize", "revertResize"):
            _finish_resize_done(instance, action)
        instance.power_state = int(power_state)
        if action.name in ("rebuild", "confirmResize", "revertResize"):
            instance.vm_state = states.STOPPED if instance.power_state == states.SHUTDOWN else states.ACTIVE
        else:
            instance.vm_state = action.done or previous
        instance.task_state = None
        _save(instance, "vm_state", "task_state", "power_state", "new_flavor", "vcpus", "memory_mb", "root_gb",
              "ephemeral_gb", "swap", "flavor", "flavor_ref")
        _event_finish(instance, request_id=request_id, record=action.record, event=action.event, ok=True, host=host)
        _publish(instance)


def server_task_failed(*, instance_id: str, host: str, message: str, details: str = "",
                       request_id: str = "") -> None:
    """The node could not finish ``task``: a fault, the event in error, and the action's ``failed``
    vm_state (or back to where it was); a failed snapshot's image is deleted."""
    from apps.compute import scheduler

    with transaction.atomic():
        instance = _locked(instance_id)
        if instance is None or instance.deleted or instance.task_state is None:
            return
        action = states.action_for_task(instance.task_state)
        if action is None or action.name == "create":
            return
        if action.name == "delete":  # the node could not destroy it: ERROR, the user may delete again
            instance.vm_state = states.ERROR
        if action.name == "resize" and instance.new_flavor and instance.node_id is not None:
            new = instance.new_flavor
            _quota_give_back(instance.project_id, {"cores": max(0, int(new["vcpus"]) - instance.vcpus),
                                                   "ram": max(0, int(new["ram"]) - instance.memory_mb)})
            scheduler.claim_release(node_id=instance.node_id, vcpus=int(new["vcpus"]), memory_mb=int(new["ram"]),
                                    disk_gb=_flavor_disk(new))
            instance.new_flavor = None
        if action.name == "createImage":
            _drop_snapshots(instance)
        instance.vm_state = action.failed or instance.vm_state
        instance.task_state = None
        _save(instance, "vm_state", "task_state", "new_flavor")
        _fault(instance, message=message, details=details, host=host)
        _event_finish(instance, request_id=request_id, record=action.record, event=action.event, ok=False,
                      host=host, traceback=details or message)
        _publish(instance)


def _drop_snapshots(instance: Instance) -> None:
    from apps.images import services as image_services
    from apps.images.models import Image

    actor = _owner_actor(instance)
    for image in Image.objects.filter(owner=instance.project_id, properties__instance_uuid=instance.id,
                                      status__in=[Image.QUEUED, Image.SAVING]):
        boot_volumes.volume_snapshots_drop(image=image, instance=instance)
        try:
            image_services.image_delete(actor=actor, image_id=image.id)
        except StratusError:
            log.exception("could not delete the failed snapshot %s", image.id)


def server_destroyed(*, instance_id: str, host: str, request_id: str = "") -> None:
    """The node removed the domain and its files: the instance is deleted (claim, ports, quota back)."""
    with transaction.atomic():
        instance = _locked(instance_id)
        if instance is None or instance.deleted:
            return
        _mark_deleted(instance, request_id=request_id, host=host)


def server_power_states_report(*, host: str, states: Mapping[str, int]) -> None:
    """A node's periodic power-state sync (``states``: instance id → power state; instances of the
    host it does not list have no domain). Only settled instances (no task) change: the power state is
    recorded, and an ACTIVE instance found shut down becomes SHUTOFF (Nova's sync stops it)."""
    reported = states
    sm = _sm
    with transaction.atomic():
        rows = list(Instance.objects.select_for_update().filter(
            host=host, node__isnull=False, deleted=False, task_state__isnull=True)
            .exclude(vm_state__in=[sm.BUILDING, sm.ERROR]))
        for instance in rows:
            power = int(reported.get(instance.id, sm.NOSTATE))
            fields = []
            if power != instance.power_state:
                instance.power_state = power
                fields.append("power_state")
            if instance.vm_state == sm.ACTIVE and power in (sm.SHUTDOWN, sm.CRASHED):
                instance.vm_state = sm.STOPPED
                fields.append("vm_state")
            if fields:
                _save(instance, *fields)
                _publish(instance)


def server_snapshot_store(*, instance_id: str, image_id: str, chunks: Iterable[bytes]) -> None:
    """The node streams the snapshot's bytes into Glance, as the instance's owner."""
    from apps.images import services as image_services

    instance = Instance.objects.filter(pk=instance_id).first()
    if instance is None:
        raise NotFound(f"Instance {instance_id} could not be found.")
    image_services.image_upload(actor=_owner_actor(instance), image_id=image_id, chunks=chunks)


def server_volume_snapshots_ready(*, instance_id: str, image_id: str) -> str:
    """createImage of a volume-backed server: "ready" once every volume snapshot the image points at
    is available (the image is then made active, with no data, as Nova's is), else "waiting"; a
    snapshot in error is a Conflict (the node reports the task failed)."""
    from apps.images import services as image_services
    from apps.images.models import Image

    instance = Instance.objects.filter(pk=instance_id).first()
    image = Image.objects.filter(pk=image_id).first()
    if instance is None or image is None:
        raise NotFound(f"Image {image_id} of instance {instance_id} could not be found.")
    outcome, reason = boot_volumes.volume_snapshots_check(image=image)
    if outcome == "failed":
        raise Conflict(reason)
    if outcome == "ready" and image.status == Image.QUEUED:
        image_services.image_upload(actor=_owner_actor(instance), image_id=image.id, chunks=[])
    return outcome


def server_build_timeouts() -> int:
    """BUILD for longer than STRATUS_BUILD_TIMEOUT_SECONDS → ERROR with its claim released (periodic).
    The same sweep releases the volumes of deleted servers that were still being made at the delete."""
    boot_volumes.deleted_servers_volumes_release()
    timeout = settings.STRATUS_BUILD_TIMEOUT_SECONDS
    cutoff = timezone.now() - timedelta(seconds=timeout)
    done = 0
    for instance_id in Instance.objects.filter(vm_state=states.BUILDING, deleted=False, created_at__lt=cutoff) \
            .values_list("id", flat=True):
        with transaction.atomic():
            instance = _locked(instance_id)
            if instance is None or instance.deleted or instance.vm_state != states.BUILDING:
                continue
            host = instance.host or ""
            _release_claim(instance)
            _fail_build(instance, message=f"Build of instance {instance.id} aborted: timed out after "
                                          f"{int(timeout)} seconds in BUILD.", host=host,
                        request_id=(_find_action(instance, "", "create") or InstanceAction(request_id="")).request_id)
            done += 1
    return done


# ---- delete, update --------------------------------------------------------------------------

def _for_update(actor: Actor, server_id: str) -> Instance:
    instance = server_selectors.server_get(actor=actor, server_id=server_id)
    require_write(actor, instance.project_id, what=f"instance {server_id}")
    return Instance.objects.select_for_update().get(pk=instance.pk)


def _check_lock(actor: Actor, instance: Instance) -> None:
    if instance.locked and not actor.is_admin:
        raise InstanceLocked(f"Instance {instance.id} is locked")


def _node_up(node_id: int | None) -> ComputeNode | None:
    from apps.compute import scheduler

    if node_id is None:
        return None
    return ComputeNode.objects.filter(scheduler.up_filter(), pk=node_id).first()


def server_delete(*, actor: Actor, server_id: str, request_id: str) -> None:
    """Delete in any state unless locked (admins may). An instance on no node, or on a node that is
    down, is deleted at once; otherwise the node destroys it and reports ``server_destroyed``."""
    with transaction.atomic():
        instance = _for_update(actor, server_id)
        _check_lock(actor, instance)
        if instance.task_state == states.DELETING and _node_up(instance.node_id) is not None:
            return
        _action_start(instance, record="delete", request_id=request_id, user_id=actor.user_id,
                      project_id=actor.project_id)
        node = _node_up(instance.node_id)
        if node is None:
            _mark_deleted(instance, request_id=request_id, host=instance.host or "")
            return
        instance.task_state = states.DELETING
        _save(instance, "task_state")
        action = _find_action(instance, request_id, "delete")
        if action is not None:
            _event_start(action, "compute_terminate_instance", node.host)
        _send("destroy", queue=node.queue, instance_id=instance.id, request_id=request_id)
        _publish(instance)


def server_update(*, actor: Actor, server_id: str, name: Any = NOT_GIVEN, description: Any = NOT_GIVEN,
                  access_ip_v4: Any = NOT_GIVEN, access_ip_v6: Any = NOT_GIVEN, disk_config: Any = NOT_GIVEN
                  ) -> Instance:
    with transaction.atomic():
        instance = _for_update(actor, server_id)
        fields = []
        if name is not NOT_GIVEN:
            instance.name = _text(name, field="name", blank=False)
            fields.append("name")
        if description is not NOT_GIVEN:
            instance.description = None if description is None else _text(description, field="description")
            fields.append("description")
        if access_ip_v4 is not NOT_GIVEN:
            instance.access_ip_v4 = _access_ip(access_ip_v4, 4)
            fields.append("access_ip_v4")
        if access_ip_v6 is not NOT_GIVEN:
            instance.access_ip_v6 = _access_ip(access_ip_v6, 6)
            fields.append("access_ip_v6")
        if disk_config is not NOT_GIVEN:
            instance.disk_config = _disk_config(disk_config)
            fields.append("disk_config")
        if fields:
            _save(instance, *fields)
            _publish(instance, "updated")
    return server_selectors.server_get(actor=actor, server_id=server_id)


# ---- actions ---------------------------------------------------------------------------------

def _start_task(actor: Actor, instance: Instance, action_name: str, *, request_id: str,
                api_name: str | None = None) -> tuple[states.Action, ComputeNode]:
    """Check the state, the lock and the node; set the task_state and record the action."""
    action = states.check(action_name, instance_id=instance.id, vm_state=instance.vm_state,
                          task_state=instance.task_state, api_name=api_name)
    _check_lock(actor, instance)
    node = _node_up(instance.node_id)
    if node is None:
        raise Conflict(f"Cannot '{api_name or action.record}' instance {instance.id}: its compute host "
                       f"{instance.host or '(none)'} is not available.")
    instance.task_state = action.task
    _save(instance, "task_state")
    row = _action_start(instance, record=action.record, request_id=request_id, user_id=actor.user_id,
                        project_id=actor.project_id)
    _event_start(row, action.event, node.host)
    return action, node


def _power(actor: Actor, instance: Instance, name: str, *, request_id: str, api_name: str) -> None:
    _, node = _start_task(actor, instance, name, request_id=request_id, api_name=api_name)
    _send("power", queue=node.queue, instance_id=instance.id, action=states.POWER_ACTIONS[name],
          request_id=request_id)
    _publish(instance)


def _lock(actor: Actor, instance: Instance, body: Any, *, request_id: str) -> None:
    reason = body.get("locked_reason") if isinstance(body, Mapping) else None
    if reason is not None:
        _text(reason, field="locked_reason")
    if not instance.locked:
        instance.locked = True
        instance.locked_by = "owner" if actor.project_id == instance.project_id else "admin"
        instance.locked_reason = reason
        _save(instance, "locked", "locked_by", "locked_reason")
    _action_start(instance, record="lock", request_id=request_id, user_id=actor.user_id, project_id=actor.project_id)
    _publish(instance, "updated")


def _unlock(actor: Actor, instance: Instance, *, request_id: str) -> None:
    if instance.locked and instance.locked_by == "admin" and not actor.is_admin:
        raise Forbidden("Policy doesn't allow os_compute_api:os-lock-server:unlock:unlock_override to be performed: "
                        "the server was locked by an administrator.")
    if instance.locked:
        instance.locked = False
        instance.locked_by = None
        instance.locked_reason = None
        _save(instance, "locked", "locked_by", "locked_reason")
    _action_start(instance, record="unlock", request_id=request_id, user_id=actor.user_id,
                  project_id=actor.project_id)
    _publish(instance, "updated")


def _rebuild(actor: Actor, instance: Instance, body: Any, *, request_id: str) -> Instance:
    if not isinstance(body, Mapping):
        raise BadRequest("Invalid input for field/attribute rebuild: an object is expected.")
    allowed = {"imageRef", "name", "metadata", "adminPass", "accessIPv4", "accessIPv6", "OS-DCF:diskConfig",
               "preserve_ephemeral", "description", "key_name", "user_data"}
    unknown = set(body) - allowed
    if unknown:
        raise BadRequest(f"Invalid input for field/attribute rebuild. Additional properties are not allowed "
                         f"({', '.join(sorted(unknown))} were unexpected)")
    if "imageRef" not in body:
        raise BadRequest("Invalid input for field/attribute rebuild: 'imageRef' is a required property")
    flavor = Flavor(name=instance.flavor.get("original_name", ""), vcpus=instance.vcpus,
                    memory_mb=instance.memory_mb, root_gb=instance.root_gb)
    volume_backed = boot_volume_selectors.is_volume_backed(instance=instance)
    if volume_backed:
        from apps.images import selectors as image_selectors

        try:
            image = image_selectors.image_get(actor=actor, image_id=_image_id(body["imageRef"]))
        except NotFound:
            raise BadRequest(f"Image {_image_id(body['imageRef'])} could not be found.") from None
        if image.id != _root_volume_image(instance):
            raise BadRequest("Unable to rebuild with a different image for a volume-backed server.")
    else:
        image = _check_image(actor, body["imageRef"], flavor, project_id=instance.project_id)
    name = _text(body["name"], field="name", blank=False) if "name" in body else None
    meta = _metadata(body["metadata"], project_id=instance.project_id) if "metadata" in body else None
    v4 = _access_ip(body["accessIPv4"], 4) if "accessIPv4" in body else None
    v6 = _access_ip(body["accessIPv6"], 6) if "accessIPv6" in body else None
    disk = _disk_config(body["OS-DCF:diskConfig"]) if "OS-DCF:diskConfig" in body else None
    admin_pass = body.get("adminPass")
    if admin_pass is not None and not isinstance(admin_pass, str):
        raise BadRequest("Invalid input for field/attribute adminPass: a string is expected.")
    _, node = _start_task(actor, instance, "rebuild", request_id=request_id)
    if not volume_backed:  # a volume-backed server keeps its root volume (and the image it was asked with)
        instance.image_id = image.id
    fields = ["image_id"]
    for attr, value in (("name", name), ("metadata", meta), ("access_ip_v4", v4), ("access_ip_v6", v6),
                        ("disk_config", disk)):
        if value is not None:
            setattr(instance, attr, value)
            fields.append(attr)
    _save(instance, *fields)
    _send("rebuild", queue=node.queue, instance_id=instance.id, image_id=image.id, request_id=request_id)
    _publish(instance)
    instance.admin_pass = admin_pass or _admin_password()  # type: ignore[attr-defined]
    return instance


def _root_volume_image(instance: Instance) -> str:
    """The image a volume-backed server's root volume was made from (its ``image_id``, else the
    volume's image metadata), "" when none."""
    from apps.compute.models import BlockDeviceMapping
    from apps.volumes.models import Volume

    if instance.image_id:
        return instance.image_id
    root = BlockDeviceMapping.objects.filter(instance=instance, boot_index=0).first()
    volume = Volume.objects.filter(pk=root.volume_id).first() if root is not None else None
    return str(((volume.image_metadata or {}) if volume is not None else {}).get("image_id", ""))


def _resize(actor: Actor, instance: Instance, body: Any, *, request_id: str) -> None:
    from apps.compute import scheduler

    if not isinstance(body, Mapping) or "flavorRef" not in body:
        raise BadRequest("Invalid input for field/attribute resize: 'flavorRef' is a required property")
    flavor = _check_flavor(actor, body["flavorRef"])
    disk = _disk_config(body["OS-DCF:diskConfig"]) if "OS-DCF:diskConfig" in body else None
    if flavor.flavorid == instance.flavor_ref and (flavor.vcpus, flavor.memory_mb, flavor.root_gb) == \
            (instance.vcpus, instance.memory_mb, instance.root_gb):
        raise BadRequest("When resizing, instances must change flavor!")
    volume_backed = boot_volume_selectors.is_volume_backed(instance=instance)  # its root disk is no flavor's
    if flavor.root_gb == 0 and instance.root_gb > 0 and not volume_backed:
        raise BadRequest("Resize to zero disk flavor is not allowed.")
    if flavor.root_gb < instance.root_gb and not volume_backed:
        raise BadRequest("Resize error: Unable to resize disk down.")
    states.check("resize", instance_id=instance.id, vm_state=instance.vm_state, task_state=instance.task_state)
    _check_lock(actor, instance)
    new = _flavor_json(flavor)
    growth = {"cores": max(0, flavor.vcpus - instance.vcpus), "ram": max(0, flavor.memory_mb - instance.memory_mb)}
    if any(growth.values()):
        try:
            with transaction.atomic():
                identity_services.quota_reserve(project_id=instance.project_id, deltas=growth)
        except QuotaExceeded as exc:
            raise NovaQuotaExceeded(f"Quota exceeded for {exc.resource}: Requested {exc.requested}, but already "
                                    f"used {exc.in_use} of {exc.limit} {exc.resource}", resource=exc.resource,
                                    limit=exc.limit, in_use=exc.in_use, requested=exc.requested) from None
    if instance.node_id is None:
        raise Conflict(f"Cannot 'resize' instance {instance.id}: it is on no compute host.")
    try:
        with transaction.atomic():
            scheduler.claim_adjust(node_id=instance.node_id, vcpus=flavor.vcpus, memory_mb=flavor.memory_mb,
                                   disk_gb=_flavor_disk(new))
    except scheduler.NoValidHost as exc:
        raise BadRequest(str(exc)) from None
    instance.new_flavor = new
    instance.disk_config = disk or instance.disk_config
    _save(instance, "new_flavor", "disk_config")
    _, node = _start_task(actor, instance, "resize", request_id=request_id)
    _send("resize", queue=node.queue, instance_id=instance.id, request_id=request_id)
    _publish(instance)


def _resize_end(actor: Actor, instance: Instance, name: str, *, request_id: str) -> None:
    _, node = _start_task(actor, instance, name, request_id=request_id)
    _send("confirm_resize" if name == "confirmResize" else "revert_resize", queue=node.queue,
          instance_id=instance.id, request_id=request_id)
    _publish(instance)


def _inheritable(base: Any) -> dict[str, str]:
    """The base image's properties a snapshot keeps (Nova's): none of the services' own
    (instance_uuid, block_device_mapping, ...) nor Glance's os_glance_*."""
    from apps.images import services as image_services

    return {k: str(v) for k, v in ((base.properties or {}) if base is not None else {}).items()
            if k not in image_services.SERVICE_PROPERTIES and not k.startswith("os_glance")}


def _snapshot_metadata(metadata: Any, *, project_id: str) -> dict[str, str]:
    """createImage's metadata: the image properties the user gives (never one of the services' own)."""
    from apps.images import services as image_services

    meta = _metadata(metadata, project_id=project_id)
    reserved = sorted(k for k in meta if k in image_services.SERVICE_PROPERTIES or k.startswith("os_glance"))
    if reserved:
        raise BadRequest(f"Invalid input for field/attribute metadata: {', '.join(reserved)} is reserved for "
                         "the image service's own use.")
    return meta


def _create_image(actor: Actor, instance: Instance, body: Any, *, request_id: str) -> str:
    from apps.images import services as image_services
    from apps.images.models import Image

    if not isinstance(body, Mapping) or "name" not in body:
        raise BadRequest("Invalid input for field/attribute createImage: 'name' is a required property")
    name = _text(body["name"], field="name", blank=False)
    meta = _snapshot_metadata(body.get("metadata"), project_id=instance.project_id)
    states.check("createImage", instance_id=instance.id, vm_state=instance.vm_state, task_state=instance.task_state)
    _check_lock(actor, instance)
    if boot_volume_selectors.is_volume_backed(instance=instance):
        return _create_volume_image(actor, instance, name=name, meta=meta, request_id=request_id)
    base = Image.objects.filter(pk=instance.image_id).first()
    data: dict[str, Any] = {"name": name, "container_format": "bare",
                            "disk_format": "qcow2", "min_disk": instance.root_gb,
                            "min_ram": base.min_ram if base is not None else 0}
    data.update(_inheritable(base))
    data.update(meta)
    image = image_services.image_create(actor=_owner_actor(instance), data=data, service_properties={
        "instance_uuid": instance.id, "image_type": "snapshot", "base_image_ref": instance.image_id,
        "owner_id": instance.project_id, "user_id": actor.user_id or ""})
    _, node = _start_task(actor, instance, "createImage", request_id=request_id)
    _send("snapshot", queue=node.queue, instance_id=instance.id, image_id=image.id, request_id=request_id)
    _publish(instance)
    return image.id


def _create_volume_image(actor: Actor, instance: Instance, *, name: str, meta: dict[str, str],
                         request_id: str) -> str:
    """createImage of a volume-backed server (Nova's snapshot_volume_backed): a forced snapshot of
    each of its volumes and an image with no data whose ``block_device_mapping`` points at them; the
    node pauses the guest until they are made, then the image becomes active."""
    import json

    from apps.images import services as image_services
    from apps.images.models import Image

    base = Image.objects.filter(pk=instance.image_id).first() if instance.image_id else None
    mappings = boot_volumes.volume_snapshots_create(actor=actor, instance=instance, name=name)
    data: dict[str, Any] = {"name": name, "container_format": "bare", "disk_format": "qcow2", "min_disk": 0,
                            "min_ram": base.min_ram if base is not None else 0, **_inheritable(base), **meta}
    service = {"instance_uuid": instance.id, "image_type": "snapshot", "owner_id": instance.project_id,
               "user_id": actor.user_id or "", "root_device_name": boot_volumes.ROOT_DEVICE,
               "bdm_v2": "True", "block_device_mapping": json.dumps(mappings)}
    if instance.image_id:
        service["base_image_ref"] = instance.image_id
    image = image_services.image_create(actor=_owner_actor(instance), data=data, service_properties=service)
    _, node = _start_task(actor, instance, "createImage", request_id=request_id)
    _send("snapshot", queue=node.queue, instance_id=instance.id, image_id=image.id, request_id=request_id)
    _publish(instance)
    return image.id


def _console_output(instance: Instance, body: Any) -> str:
    length = body.get("length") if isinstance(body, Mapping) else None
    if length is not None:
        if isinstance(length, str) and re.fullmatch(r"-?\d+", length):
            length = int(length)
        if isinstance(length, bool) or not isinstance(length, int) or length < -1:
            raise BadRequest(f"Invalid input for field/attribute length. Value: {length}.")
        if length == -1:
            length = None
    states.check("getConsoleOutput", instance_id=instance.id, vm_state=instance.vm_state,
                 task_state=instance.task_state, api_name="get_console_output")
    node = _node_up(instance.node_id)
    if node is None:
        raise Conflict(f"Instance {instance.id} is not ready: its compute host is not available.")
    try:
        from workers import compute as compute_tasks

        result = compute_tasks.console_output.apply_async(kwargs={"instance_id": instance.id, "length": length},
                                                          queue=node.queue)
        return str(result.get(timeout=10) or "")
    except Exception as exc:  # noqa: BLE001 - timeout, broker or node error: Nova's ConsoleNotAvailable
        log.warning("console output of %s failed: %s", instance.id, exc)
        raise Conflict(f"Guest console of instance {instance.id} is not available right now.") from None


def _security_group(actor: Actor, instance: Instance, body: Any, *, add: bool, request_id: str) -> None:
    """addSecurityGroup / removeSecurityGroup: on every port of the server (by name or id)."""
    from apps.networks import selectors as network_selectors
    from apps.networks import services as network_services
    from apps.networks.models import Port

    name = body.get("name") if isinstance(body, Mapping) else None
    if not isinstance(name, str) or not name:
        raise BadRequest("Invalid input for field/attribute name: a security group name is required.")
    if name == "default":
        network_services.security_group_ensure_default(project_id=instance.project_id)
    group = network_selectors.security_group_by_name_or_id(actor=actor, ref=name)
    ports = list(Port.objects.filter(device_id=instance.id, project_id=instance.project_id)
                 .prefetch_related("security_groups"))
    current = set(instance.security_groups or [])
    if add and group.name in current:
        raise BadRequest(f"Security group {group.name} is already associated with the instance {instance.id}")
    if not add and group.name not in current and not any(group in p.security_groups.all() for p in ports):
        raise BadRequest(f"Security group {group.name} not associated with the instance {instance.id}")
    service = _service_actor(instance.project_id, instance.user_id)
    for port in ports:
        ids = [g.id for g in port.security_groups.all()]
        wanted = [*ids, group.id] if add and group.id not in ids else [i for i in ids if add or i != group.id]
        if wanted != ids and port.port_security_enabled:
            network_services.port_update(actor=service, port_id=port.id, changes={"security_groups": wanted})
    names = [n for n in instance.security_groups or [] if n != group.name]
    instance.security_groups = [*names, group.name] if add else names
    _save(instance, "security_groups")
    _action_start(instance, record="addSecurityGroup" if add else "removeSecurityGroup", request_id=request_id,
                  user_id=actor.user_id, project_id=actor.project_id)
    _publish(instance, "updated")


POWER_API = {"os-stop": "stop", "os-start": "start", "pause": "pause", "unpause": "unpause",
             "suspend": "suspend", "resume": "resume"}


def server_action(*, actor: Actor, server_id: str, action: str, body: Any, request_id: str) -> Any:
    """One ``POST /servers/{id}/action``. Returns: rebuild → the instance (with ``admin_pass``);
    createImage → the image id; os-getConsoleOutput → the text; others → None."""
    if action == "os-getConsoleOutput":
        instance = server_selectors.server_get(actor=actor, server_id=server_id)
        require_write(actor, instance.project_id, what=f"instance {server_id}")
        return _console_output(instance, body)
    with transaction.atomic():
        instance = _for_update(actor, server_id)
        if action == "reboot":
            kind = body.get("type") if isinstance(body, Mapping) else None
            if not isinstance(kind, str) or kind.upper() not in ("SOFT", "HARD"):
                raise BadRequest("Invalid input for field/attribute type. Value: "
                                 f"{kind}. It must be one of SOFT, HARD.")
            _power(actor, instance, "reboot_hard" if kind.upper() == "HARD" else "reboot_soft",
                   request_id=request_id, api_name="reboot")
            return None
        if action in POWER_API:
            name = POWER_API[action]
            _power(actor, instance, name, request_id=request_id, api_name=name)
            return None
        if action == "lock":
            _lock(actor, instance, body, request_id=request_id)
            return None
        if action == "unlock":
            _unlock(actor, instance, request_id=request_id)
            return None
        if action == "rebuild":
            return _rebuild(actor, instance, body, request_id=request_id)
        if action == "resize":
            _resize(actor, instance, body, request_id=request_id)
            return None
        if action in ("confirmResize", "revertResize"):
            _resize_end(actor, instance, action, request_id=request_id)
            return None
        if action == "createImage":
            return _create_image(actor, instance, body, request_id=request_id)
        if action in ("addSecurityGroup", "removeSecurityGroup"):
            _security_group(actor, instance, body, add=action == "addSecurityGroup", request_id=request_id)
            return None
    raise BadRequest(f"There is no such action: {action}")


# ---- metadata and tags -----------------------------------------------------------------------

METADATA_STATES = frozenset({states.ACTIVE, states.PAUSED, states.SUSPENDED, states.STOPPED, states.RESIZED,
                             states.RESCUED, states.SHELVED, states.SHELVED_OFFLOADED, states.BUILDING,
                             states.ERROR})


def server_metadata_set(*, actor: Actor, server_id: str, metadata: Any, replace: bool) -> dict[str, str]:
    """Replace (PUT) or merge (POST) the server's metadata; returns the whole metadata."""
    with transaction.atomic():
        instance = _for_update(actor, server_id)
        if instance.vm_state not in METADATA_STATES:
            raise Conflict(f"Cannot 'update_instance_metadata' instance {instance.id} while it is in vm_state "
                           f"{instance.vm_state}")
        if not isinstance(metadata, Mapping):
            raise BadRequest("Malformed request body: metadata must be an object.")
        merged = dict(metadata) if replace else {**(instance.metadata or {}), **dict(metadata)}
        instance.metadata = _metadata(merged, project_id=instance.project_id)
        _save(instance, "metadata")
        _publish(instance, "updated")
        return dict(instance.metadata)


def server_metadata_item_set(*, actor: Actor, server_id: str, key: str, body: Any) -> dict[str, str]:
    if not isinstance(body, Mapping) or not isinstance(body.get("meta"), Mapping):
        raise BadRequest("Malformed request body: {\"meta\": {key: value}} expected.")
    meta = body["meta"]
    if len(meta) != 1:
        raise BadRequest("Request body contains too many items")
    if key not in meta:
        raise BadRequest("Request body and URI mismatch")
    server_metadata_set(actor=actor, server_id=server_id, metadata={key: meta[key]}, replace=False)
    return {key: meta[key]}


def server_metadata_delete(*, actor: Actor, server_id: str, key: str) -> None:
    with transaction.atomic():
        instance = _for_update(actor, server_id)
        if key not in (instance.metadata or {}):
            raise NotFound(f"Metadata item was not found: {key}")
        instance.metadata = {k: v for k, v in instance.metadata.items() if k != key}
        _save(instance, "metadata")
        _publish(instance, "updated")


def server_tags_set(*, actor: Actor, server_id: str, tags: Any) -> list[str]:
    if not isinstance(tags, list):
        raise BadRequest("Invalid input for field/attribute tags: a list is expected.")
    clean = list(dict.fromkeys(_tag(t) for t in tags))
    if len(clean) > MAX_TAGS:
        raise BadRequest(f"The number of tags exceeded the per-server limit {MAX_TAGS}")
    with transaction.atomic():
        instance = _for_update(actor, server_id)
        InstanceTag.objects.filter(instance=instance).delete()
        InstanceTag.objects.bulk_create([InstanceTag(instance=instance, tag=t) for t in clean])
        _save(instance)
        _publish(instance, "updated")
    return sorted(clean)


def server_tag_add(*, actor: Actor, server_id: str, tag: str) -> bool:
    """Add one tag; True when it was new."""
    tag = _tag(tag)
    with transaction.atomic():
        instance = _for_update(actor, server_id)
        existing = set(InstanceTag.objects.filter(instance=instance).values_list("tag", flat=True))
        if tag in existing:
            return False
        if len(existing) >= MAX_TAGS:
            raise BadRequest(f"The number of tags exceeded the per-server limit {MAX_TAGS}")
        InstanceTag.objects.create(instance=instance, tag=tag)
        _save(instance)
        _publish(instance, "updated")
    return True


def server_tag_delete(*, actor: Actor, server_id: str, tag: str | None = None) -> None:
    """Delete one tag (404 when absent) or, with no tag, all of them."""
    with transaction.atomic():
        instance = _for_update(actor, server_id)
        qs = InstanceTag.objects.filter(instance=instance)
        if tag is not None:
            qs = qs.filter(tag=tag)
            if not qs.exists():
                raise NotFound(f"Tag {tag} could not be found.")
        qs.delete()
        _save(instance)
        _publish(instance, "updated")
