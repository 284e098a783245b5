"""Server create: every check before anything is written, then short transactions: the quota with
the rows, each instance's claim on a node (``schedule``), the ports bound to the chosen nodes, the
spawns sent to them (a failure after the first undoes it: ``_undo_create``).
The node reports back through ``server_reports``."""
from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.compute import states
from apps.compute.block_devices import BlockDevice
from apps.compute.models import ComputeNode, Flavor, Instance, InstanceAction, InstanceTag, KeyPair, ServerGroup
from apps.compute.services import NovaQuotaExceeded, boot_volumes
from apps.compute.services.instance_actions import action_find, action_start, event_finish, event_start, fault_record
from apps.compute.services.instances import (
    NetworkRequest,
    admin_password,
    flavor_json,
    metadata_quota_check,
    publish,
    save,
    send_spawn,
    service_actor,
)
from apps.core.errors import BadRequest, Conflict, Forbidden, NotFound, QuotaExceeded
from apps.identity import selectors as identity_selectors
from apps.identity import services as identity_services
from apps.identity.models import Project
from apps.identity.policy import Actor, require_admin, require_write

T = TypeVar("T")


def _hostname(name: str, instance_id: str) -> str:
    text = re.sub(r"[^a-z0-9.-]+", "-", name.lower()).strip("-.")[:63].strip("-.")
    return text or f"server-{instance_id}"


def image_ref_id(image_ref: str) -> str:
    """The image id of an ``imageRef`` (an id or a URL ending with one)."""
    return image_ref.rstrip("/").rsplit("/", 1)[-1]


def check_image(actor: Actor, image_ref: str, flavor: Flavor, *, project_id: str | None = None,
                image: Any = None) -> Any:
    """The image a server of ``project_id`` (the caller's by default) boots from: visible to the
    caller, active, fitting the flavor; its kernel and ramdisk readable by that project. ``image``: the
    row ``image_ref`` names as the caller sees it, when already read (else read here)."""
    from apps.images import selectors as image_selectors

    image_id = image_ref_id(image_ref)
    known = image
    image = _active_image(image_id, lambda found: known if known is not None and known.id == found
                          else image_selectors.image_get(actor=actor, image_id=found))
    _check_kernel_images(image, project_id=project_id or actor.project_id or "")
    if image.min_ram and flavor.memory_mb < image.min_ram:
        raise BadRequest("Flavor's memory is too small for requested image.")
    if flavor.root_gb:
        if image.min_disk and flavor.root_gb < image.min_disk:
            raise BadRequest("Flavor's disk is too small for requested image.")
        if image.size and image.size > flavor.root_gb * 1024**3:
            raise BadRequest("Flavor's disk is too small for requested image.")
    return image


def referenced(get: Callable[[], T], message: str) -> T:
    """What a request names (image, flavor, network, port, security group), as the caller may see
    it: a 400 with ``message`` when it is not found, as Nova answers a bad reference in a body."""
    try:
        return get()
    except NotFound:
        raise BadRequest(message) from None


def _active_image(image_id: str, get: Callable[[str], Any]) -> Any:
    """The image ``get`` finds by its id, active; a 400 when it is not found or not active."""
    image = referenced(partial(get, image_id), f"Image {image_id} could not be found.")
    if image.status != "active":
        raise BadRequest(f"Image {image_id} is not active.")
    return image


def _check_kernel_images(image: Any, *, project_id: str) -> None:
    """The images a boot image names for direct kernel boot (``kernel_id``, ``ramdisk_id``) must be
    readable by the server's project and active, as Nova fetches them with the user's context."""
    from apps.images import selectors as image_selectors

    for key in ("kernel_id", "ramdisk_id"):
        part_id = str((image.properties or {}).get(key) or "")
        if not part_id:
            continue
        _active_image(part_id, lambda found: image_selectors.image_get_for_project(project_id=project_id,
                                                                                   image_id=found))


def check_flavor(actor: Actor, flavor_ref: str) -> Flavor:
    from apps.compute import selectors as compute_selectors

    flavor_id = flavor_ref.rstrip("/").rsplit("/", 1)[-1]
    flavor = referenced(partial(compute_selectors.flavor_get, actor=actor, flavor_id=flavor_id),
                        f"Flavor {flavor_id} could not be found.")
    if flavor.disabled:
        raise BadRequest(f"Flavor {flavor_id} is disabled.")
    return flavor


def _check_security_groups(actor: Actor, project_id: str, names: list[str]) -> list[Any]:
    from apps.networks import selectors as network_selectors
    from apps.networks import services as network_services

    groups = []
    for ref in names or ["default"]:
        if ref == "default":  # the name is the project's default group's alone (and it is the caller's)
            group = network_services.security_group_ensure_default(project_id=project_id)
        else:
            group = referenced(partial(network_selectors.security_group_by_name_or_id, actor=actor, ref=ref),
                               f"Security group {ref} not found for project {project_id}.")
        if group not in groups:
            groups.append(group)
    return groups


def _auto_network(project_id: str, *, required: bool) -> list[NetworkRequest]:
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


def _check_networks(actor: Actor, project_id: str, networks: list[NetworkRequest] | str | None, *,
                    count: int) -> tuple[list[NetworkRequest] | str, list[NetworkRequest]]:
    """(what to remember as requested_networks, the list of requests to make ports for)."""
    from apps.networks import selectors as network_selectors

    if networks is None:
        return [], _auto_network(project_id, required=False)
    if networks == "none":
        return "none", []
    if networks == "auto" or isinstance(networks, str):
        return "auto", _auto_network(project_id, required=True)
    requests: list[NetworkRequest] = []
    for item in networks:
        if item.get("port"):
            port_id = item["port"]
            port = referenced(partial(network_selectors.port_get, actor=actor, port_id=port_id),
                              f"Port {port_id} not found.")
            if port.device_id:
                raise Conflict(f"Port {port_id} is still in use.")
            if count > 1:
                raise BadRequest("Unable to launch multiple instances with a single configured port ID. Please "
                                 "launch your instance one by one with different ports.")
            if any(r.get("port") == port_id for r in requests):
                raise BadRequest(f"Port {port_id} is requested more than once.")
            requests.append({"port": port_id})
            continue
        network_id = item["uuid"]
        network = referenced(partial(network_selectors.network_get, actor=actor, network_id=network_id),
                             f"Network {network_id} could not be found.")
        if network.external and not actor.is_admin and network.project_id != project_id and not network.shared:
            raise Forbidden(f"It is not allowed to create an interface on external network {network_id}")
        request: NetworkRequest = {"uuid": network_id}
        if item.get("fixed_ip"):
            request["fixed_ip"] = item["fixed_ip"]
            if count > 1:
                raise BadRequest("max_count cannot be greater than 1 if an fixed_ip is specified.")
        requests.append(request)
    return requests, requests


def _make_ports(instance: Instance, requests: list[NetworkRequest], groups: list[Any], host: str, zone: str) -> None:
    from apps.networks import errors as network_errors
    from apps.networks import services as network_services
    from apps.networks.services import FixedIP, PortAttributes

    actor = service_actor(instance.project_id, instance.user_id)
    for request in requests:
        common: PortAttributes = {"device_id": instance.id, "device_owner": f"compute:{zone}", "binding_host_id": host}
        try:
            if "port" in request:
                network_services.port_update(actor=actor, port_id=request["port"], changes=common)
                continue
            fixed_ips: list[FixedIP] | None = [{"ip_address": request["fixed_ip"]}] if request.get("fixed_ip") else None
            network_services.port_create(actor=actor, network_id=request["uuid"], project_id=instance.project_id,
                                         security_groups=[g.id for g in groups], fixed_ips=fixed_ips, **common)
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


def _zone(actor: Actor, value: str | None) -> tuple[str | None, str | None]:
    """(zone, force_host) from ``availability_zone`` ("zone", "zone:host", "zone::node", ":host")."""
    if not value:
        return None, None
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


def _server_group(actor: Actor, group_id: str | None, project_id: str) -> ServerGroup | None:
    if not group_id:
        return None
    group = ServerGroup.objects.select_for_update().filter(pk=group_id).first()
    if group is None or not (actor.is_admin or group.project_id == project_id):
        raise BadRequest(f"Invalid input for field/attribute group. Value: {group_id}. Server group not found.")
    return group


def _group_hosts(group: ServerGroup | None) -> tuple[str, ...]:
    if group is None:
        return ()
    return tuple(Instance.objects.filter(server_group=group, deleted=False, node__isnull=False)
                 .values_list("host", flat=True))


def placement(instance: Instance, *, force_host: str | None, group: ServerGroup | None,
              image_properties: Mapping[str, str], exclude: tuple[str, ...] = ()) -> Any:
    from apps.compute import scheduler

    return scheduler.PlacementRequest(
        vcpus=instance.vcpus, memory_mb=instance.memory_mb, disk_gb=instance.disk_gb,
        availability_zone=instance.availability_zone, force_host=force_host,
        group_policy=group.policy if group is not None else None, group_hosts=_group_hosts(group),
        image_properties={k: str(v) for k, v in image_properties.items()}, exclude_hosts=exclude)


def schedule(request: Any) -> ComputeNode | str:
    """Claim a node for the instance (a savepoint: a failure claims nothing); the reason on NoValidHost."""
    from apps.compute import scheduler

    try:
        with transaction.atomic():
            return scheduler.schedule_and_claim(request)
    except scheduler.NoValidHost as exc:
        return str(exc) or scheduler.NO_VALID_HOST


def fail_build(instance: Instance, *, message: str, details: str = "", request_id: str = "", host: str = "",
               event: str | None = "compute__do_build_and_run_instance") -> None:
    """ERROR with the fault; ``event`` (if any) is recorded as failed, and the create action ends."""
    instance.vm_state = states.ERROR
    instance.task_state = None
    save(instance, "vm_state", "task_state", "node", "host", "attempts", "tried_hosts")
    fault_record(instance, message=message, details=details, host=host)
    if event is not None:
        event_finish(instance, request_id=request_id, record="create", event=event, ok=False, host=host,
                     traceback=details or message)
    else:
        action = action_find(instance, request_id, "create")
        if action is not None:
            action.finish_time = timezone.now()
            action.message = "Error"
            action.save(update_fields=["finish_time", "message", "updated_at"])
    publish(instance)


def dispatch_spawn(instance: Instance, node: ComputeNode, *, request_id: str, action: InstanceAction | None) -> None:
    instance.node = node
    instance.host = node.host
    instance.attempts += 1
    instance.tried_hosts = [*instance.tried_hosts, node.host]
    instance.task_state = states.SPAWNING
    save(instance, "node", "host", "attempts", "tried_hosts", "task_state")
    if action is not None:
        event_start(action, "compute__do_build_and_run_instance", node.host)
    send_spawn(instance, queue=node.queue, request_id=request_id, action=action)


def server_create(*, actor: Actor, name: str, image_ref: str, flavor_ref: str,
                  networks: list[NetworkRequest] | str | None, key_name: str | None = None,
                  security_groups: list[str] | None = None, user_data: str | None = None,
                  metadata: dict[str, str] | None = None, config_drive: bool = False,
                  availability_zone: str | None = None, group_id: str | None = None, min_count: int = 1,
                  max_count: int = 1, description: str | None = None, access_ip_v4: str = "", access_ip_v6: str = "",
                  block_devices: Sequence[BlockDevice] = (), tags: list[str] | None = None,
                  admin_pass: str | None = None, disk_config: str = "MANUAL", request_id: str) -> list[Instance]:
    """Boot ``min_count``..``max_count`` servers (as many as the quota allows, named ``name-1``.. when
    more than one, sharing one reservation id). Every check is done before anything is written; then
    the quota with the rows, the claims, and the ports bound to the chosen nodes, each in a short
    transaction of its own (a refusal after the first undoes what was made). A server no
    node can take goes to ERROR with the fault "No valid host was found..." (the call still succeeds,
    as Nova's). The spawn tasks are sent to the nodes' queues on commit. Each returned instance carries
    ``admin_pass`` (not stored). The API (``apps.compute.api.inputs.server_create``) and the launch form
    give the arguments checked and typed."""
    project_id = actor.project_id
    if project_id is None:
        raise BadRequest("A project-scoped token is needed to create a server.")
    require_write(actor, project_id, what="server")
    if min_count > max_count:
        raise BadRequest("min_count must be <= max_count")
    flavor = check_flavor(actor, flavor_ref)
    plan = boot_volumes.boot_plan(actor=actor, image_ref=image_ref, block_devices=block_devices, flavor=flavor,
                                  count=max_count, check_image=check_image)
    image = plan.image
    keypair = None
    if key_name is not None:
        keypair = KeyPair.objects.filter(user_id=actor.user_id, name=key_name).first()
        if keypair is None:
            raise BadRequest(f"Invalid key_name provided: {key_name}.")
    groups = _check_security_groups(actor, project_id, security_groups or [])
    requested, requests = _check_networks(actor, project_id, networks, count=max_count)
    meta = metadata_quota_check(project_id=project_id, metadata=metadata or {})
    zone, force_host = _zone(actor, availability_zone)
    tag_list = list(dict.fromkeys(tags or []))
    flavor_data = flavor_json(flavor)

    # Three short transactions instead of one long one, so that each lock is held only as long as its
    # own rows need it (issue 12): (1) the quota reserved with the rows it counts, committed together,
    # so the project's quota rows are locked for a few inserts, not through scheduling and IPAM; (2)
    # each instance's claim on a node, the node's row locked for the claim only; (3) the ports (the
    # network's locks); (4) the spawns. Quotas stay exact: usage changes only with the rows it counts. A
    # failure after (1) undoes (1) and (2) (``_undo_create``), so a refused create leaves nothing, as
    # before; an instance deleted meanwhile is left to its delete. Lock order as everywhere: instance
    # row → quota usage → node → network/ports.
    created: list[Instance] = []
    actions: dict[str, InstanceAction] = {}  # each instance's create action (not looked up again)
    with transaction.atomic():
        group = _server_group(actor, group_id, project_id)
        # a fixed count: the rows first, the quota last, so its rows are locked from the reservation to
        # the commit only (a refusal rolls the rows back); a range: the quota says how many rows
        fixed = min_count == max_count
        count = max_count if fixed else _reserve_instances(project_id, vcpus=flavor.vcpus,
                                                           memory_mb=flavor.memory_mb, min_count=min_count,
                                                           max_count=max_count)
        reservation_id = "r-" + secrets.token_hex(4)
        for index in range(count):
            instance = Instance(
                project_id=project_id, user_id=actor.user_id, name=name if count == 1 else f"{name}-{index + 1}",
                description=description, image_id=plan.image_id, flavor_ref=flavor.flavorid, vcpus=flavor.vcpus,
                memory_mb=flavor.memory_mb, root_gb=flavor.root_gb, ephemeral_gb=flavor.ephemeral_gb,
                swap=flavor.swap, flavor=flavor_data, key_name=keypair.name if keypair else None,
                key_data=keypair.public_key if keypair else None, user_data=user_data, metadata=meta,
                security_groups=[g.name for g in groups], requested_networks=requested,
                config_drive=config_drive, availability_zone=zone, server_group=group,
                reservation_id=reservation_id, launch_index=index, vm_state=states.BUILDING,
                task_state=states.SCHEDULING, access_ip_v4=access_ip_v4, access_ip_v6=access_ip_v6,
                disk_config=disk_config)
            instance.hostname = _hostname(instance.name, instance.id)
            instance.save(force_insert=True)
            if tag_list:
                InstanceTag.objects.bulk_create([InstanceTag(instance=instance, tag=t) for t in tag_list])
            actions[instance.pk] = action_start(instance, record="create", request_id=request_id,
                                                user_id=actor.user_id, project_id=project_id)
            instance.admin_pass = admin_pass or admin_password()  # type: ignore[attr-defined]
            created.append(instance)
        if fixed:
            _reserve_instances(project_id, vcpus=flavor.vcpus, memory_mb=flavor.memory_mb, min_count=count,
                               max_count=count)
        if group is not None:
            limit = identity_selectors.quota_limits(project=Project(id=project_id)).get("server_group_members", -1)
            members = Instance.objects.filter(server_group=group, deleted=False).exclude(
                pk__in=[i.pk for i in created]).count()
            if limit >= 0 and members + count > limit:
                raise NovaQuotaExceeded("Quota exceeded, too many servers in group", resource="server_group_members",
                                        limit=limit, in_use=members, requested=count)
        for instance in created:  # after the instances' quota: lock order instance quota → volume quota
            boot_volumes.boot_volumes_create(actor=actor, instance=instance, plan=plan)
    properties = (image.properties if image is not None else {}) or {}
    try:
        placed: list[tuple[Instance, ComputeNode]] = []
        for instance in created:
            node = _claim_node(instance, group_id=group.id if group is not None else None, force_host=force_host,
                               image_properties=properties, request_id=request_id)
            if node is not None:
                placed.append((instance, node))
        with transaction.atomic():  # the network's and the port quota's rows: for the ports only
            placed = [(instance, node) for instance, node in placed if not _gone(instance.pk)]
            for instance, node in placed:
                _make_ports(instance, requests, groups, node.host, node.availability_zone)
        with transaction.atomic():  # the spawns (sent after the commit, by the process's sender thread)
            for instance, node in placed:
                if not _locked_current(instance):
                    continue
                dispatch_spawn(instance, node, request_id=request_id, action=actions[instance.pk])
                publish(instance, "created")
    except BaseException:
        _undo_create([instance.pk for instance in created])
        raise
    return created


def _gone(instance_id: str) -> bool:
    """Lock the instance's row; whether it was deleted (or is being deleted) since the create began."""
    row = Instance.objects.select_for_update().filter(pk=instance_id).values("deleted", "task_state").first()
    return row is None or row["deleted"] or row["task_state"] == states.DELETING


def _locked_current(instance: Instance) -> bool:
    """Lock the instance's row and bring ``instance`` up to date with it (a rename meanwhile is in the
    spawn's spec); False when it was deleted (or is being deleted) since the create began."""
    row = Instance.objects.select_for_update().filter(pk=instance.pk).first()
    if row is None or row.deleted or row.task_state == states.DELETING:
        return False
    for field in Instance._meta.concrete_fields:
        setattr(instance, field.attname, getattr(row, field.attname))
    return True


def _claim_node(instance: Instance, *, group_id: str | None, force_host: str | None,
                image_properties: Mapping[str, Any], request_id: str) -> ComputeNode | None:
    """In a transaction of its own: the node claimed for the instance (stored on its row, so that a
    delete from now on gives the claim back), or None (no valid host: the instance is in ERROR, or it
    was deleted meanwhile). A server group stays locked through its member's placement, so that its
    policy holds between concurrent creates."""
    with transaction.atomic():
        if _gone(instance.pk):
            return None
        group = _server_group_locked(group_id)
        node = schedule(placement(instance, force_host=force_host, group=group,
                                  image_properties=image_properties))
        if isinstance(node, str):
            fail_build(instance, message=node, request_id=request_id, event="conductor_schedule_and_build")
            return None
        instance.node = node
        instance.host = node.host
        save(instance, "node", "host")
        return node


def _server_group_locked(group_id: str | None) -> ServerGroup | None:
    if group_id is None:
        return None
    return ServerGroup.objects.select_for_update().filter(pk=group_id).first()


def _undo_create(instance_ids: list[str]) -> None:
    """A create refused after its rows were committed: each of its instances not deleted meanwhile
    goes, with everything it held (quota, claim, ports, volumes), in one transaction."""
    from apps.compute.services.instances import _delete_ports, _quota_deltas, release_claim

    with transaction.atomic():
        for instance_id in instance_ids:
            instance = Instance.objects.select_for_update().filter(pk=instance_id).first()
            if instance is None or instance.deleted or instance.task_state == states.DELETING:
                continue
            identity_services.quota_release(project_id=instance.project_id, deltas=_quota_deltas(instance))
            release_claim(instance)
            _delete_ports(instance)
            boot_volumes.server_volumes_release(instance=instance)
            publish(instance, "deleted")
            instance.delete()
