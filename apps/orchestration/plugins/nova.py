"""OS::Nova::Server and AWS::EC2::Instance over apps/compute's services (never its tables): each phase
calls ``server_create``/``server_delete``/... as the stack's owner (``context.actor``), so the compute
app's validation, policy, quotas and scheduling apply; names of images, flavors and networks are looked
up through the owning apps' selectors, scoped to the owner (another project's image or network is not
found). A delete of what is already gone succeeds.

A server's name and metadata change in place and a new flavor resizes it (Heat's default
``flavor_update_policy: RESIZE``; the resize is confirmed when the node has done it); its image (Heat
rebuilds by default: here it is replaced), networks, key, security groups and user_data (unless
``user_data_update_policy: IGNORE``) replace it.

Key pairs, flavors and server groups are in ``nova_misc``; the custom constraints of template parameters
(``nova.flavor``, ``glance.image``, ``neutron.network``, ...) in ``nova_constraints``; the lookups they
and servers share in ``nova_common``."""
from __future__ import annotations

import base64
from typing import Any

from apps.orchestration.plugins.base import (
    BOOLEAN,
    INTEGER,
    LIST,
    MAP,
    STRING,
    Attr,
    Outcome,
    Plugin,
    Prop,
    ResourceFailed,
    register,
)
from apps.orchestration.plugins.nova_common import (
    _failed,
    _is_uuid,
    _remove_if_there,
    _request_id,
    _string_map,
    flavor_id,
    image_id,
    network_id,
)


def _server(actor: Any, server_id: str) -> Any:
    from apps.compute.selectors import servers

    return servers.server_get(actor=actor, server_id=server_id)


def server_status(instance: Any) -> str:
    from apps.compute import states

    return states.status(instance.vm_state, instance.task_state)


def server_attributes(instance: Any) -> dict[str, Any]:
    """What get_attr reads of a server, as Heat's OS::Nova::Server answers it."""
    from apps.compute.selectors import servers

    addresses = servers.addresses(instance)
    networks: dict[str, list[str]] = {}
    by_id: dict[str, list[str]] = {}
    for port in getattr(instance, "ports", []):
        for entry in addresses.get(port.network.name or port.network.id, []):
            by_id.setdefault(port.network.id, [])
            if entry["addr"] not in by_id[port.network.id]:
                by_id[port.network.id].append(entry["addr"])
    for label, entries in addresses.items():
        networks[label] = [e["addr"] for e in entries]
    networks.update(by_id)
    fixed = [e["addr"] for entries in addresses.values() for e in entries if e["OS-EXT-IPS:type"] == "fixed"]
    first_v4 = next((a for a in fixed if ":" not in a), fixed[0] if fixed else "")
    floating = [e["addr"] for entries in addresses.values() for e in entries if e["OS-EXT-IPS:type"] == "floating"]
    status = server_status(instance)
    show = {"id": instance.id, "name": instance.name, "status": status, "addresses": addresses,
            "image": {"id": instance.image_id} if instance.image_id else "",
            "flavor": {"id": instance.flavor_ref, "original_name": (instance.flavor or {}).get("original_name")},
            "metadata": dict(instance.metadata or {}), "key_name": instance.key_name,
            "accessIPv4": instance.access_ip_v4, "accessIPv6": instance.access_ip_v6,
            "OS-EXT-AZ:availability_zone": instance.availability_zone or "nova",
            "tenant_id": instance.project_id, "user_id": instance.user_id}
    return {"name": instance.name, "first_address": first_v4, "networks": networks, "addresses": addresses,
            "accessIPv4": instance.access_ip_v4 or first_v4, "accessIPv6": instance.access_ip_v6,
            "instance_name": instance.name, "console_urls": _console_urls(instance),
            "floating_ips": floating, "status": status, "show": show}


def _console_urls(instance: Any) -> dict[str, str]:
    """Where the server's console opens: the dashboard's console page (VNC or serial, as the node offers),
    which asks for the viewer's own login and write right. No console token is made here: a token in the
    stack's attributes would let the project's readers open a console, a writer's right."""
    from django.conf import settings
    from django.urls import NoReverseMatch, reverse

    try:
        path = reverse("compute:instance_console", kwargs={"server_id": instance.id})
    except NoReverseMatch:
        return {}
    return {"novnc": str(settings.STRATUS_PUBLIC_URL).rstrip("/") + path}


# ---- servers -------------------------------------------------------------------------------------

class _ServerBase(Plugin):
    """What a server resource does once the compute app has its boot request: wait for ACTIVE (ERROR
    fails with the server's fault), delete and wait until it is gone, check, suspend and resume."""

    needs_actor = True

    def boot(self, props: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments of ``server_create`` for these properties."""
        raise NotImplementedError

    def attributes(self, instance: Any) -> dict[str, Any]:
        return server_attributes(instance)

    def create(self, props: dict[str, Any]) -> Outcome:
        from apps.compute.services import servers
        from apps.core.errors import StratusError

        try:
            [instance] = servers.server_create(actor=self.context.actor, request_id=_request_id(),
                                               **self.boot(props))
        except StratusError as exc:
            raise _failed(exc) from None
        return Outcome(physical_id=instance.id, data={"server_id": instance.id}, done=False, retry_after=1.0)

    def check_create_complete(self, props: dict[str, Any], data: dict[str, Any]) -> Outcome:  # noqa: ARG002
        from apps.compute.selectors import servers
        from apps.core.errors import NotFound

        server_id = data["server_id"]
        try:
            instance = _server(self.context.actor, server_id)
        except NotFound:
            raise ResourceFailed(f"NotFound: Server {server_id} was deleted while it was being built.") from None
        status = server_status(instance)
        if status == "ACTIVE":
            return Outcome(physical_id=server_id, data=data, attributes=self.attributes(instance))
        if status == "ERROR":
            fault = servers.server_fault(instance)
            message = fault.message if fault is not None else "Unknown"
            code = fault.code if fault is not None else 500
            raise ResourceFailed(f"ResourceInError: resources.{self.context.resource_name}: Went to status ERROR "
                                 f"due to \"Message: {message}, Code: {code}\"")
        return Outcome(physical_id=server_id, data=data, done=False, retry_after=1.0)

    def delete(self, physical_id: str, data: dict[str, Any]) -> bool:  # noqa: ARG002
        from apps.compute.services import server_lifecycle

        if not physical_id or not _remove_if_there(lambda: server_lifecycle.server_delete(
                actor=self.context.actor, server_id=physical_id, request_id=_request_id())):
            return True  # nothing to delete, or already gone
        return self.check_delete_complete(physical_id, {})

    def check_delete_complete(self, physical_id: str, data: dict[str, Any]) -> bool:  # noqa: ARG002
        from apps.core.errors import NotFound

        try:
            _server(self.context.actor, physical_id)
        except NotFound:
            return True
        return False

    def check_resource(self, physical_id: str, data: dict[str, Any]) -> None:  # noqa: ARG002
        from apps.core.errors import NotFound

        try:
            instance = _server(self.context.actor, physical_id)
        except NotFound:
            raise ResourceFailed(f"NotFound: Server {physical_id} could not be found.") from None
        status = server_status(instance)
        if status == "ERROR":
            raise ResourceFailed(f"Error: Server {physical_id} is in status ERROR.")

    def _power(self, physical_id: str, action: str, target: str) -> bool:
        """Ask for ``action`` once the server is idle; True when it shows ``target``."""
        from apps.compute.services import server_lifecycle
        from apps.core.errors import NotFound, StratusError

        try:
            instance = _server(self.context.actor, physical_id)
            status = server_status(instance)
            if status == target:
                return True
            if status == "ERROR":
                raise ResourceFailed(f"Error: Server {physical_id} is in status ERROR.")
            if instance.task_state is None:
                server_lifecycle.server_power(actor=self.context.actor, server_id=physical_id,
                                              action=action, request_id=_request_id())  # type: ignore[arg-type]
        except NotFound:
            raise ResourceFailed(f"NotFound: Server {physical_id} could not be found.") from None
        except StratusError as exc:
            raise _failed(exc) from None
        return False

    def suspend(self, physical_id: str, data: dict[str, Any]) -> bool:  # noqa: ARG002
        return self._power(physical_id, "suspend", "SUSPENDED")

    def resume(self, physical_id: str, data: dict[str, Any]) -> bool:  # noqa: ARG002
        return self._power(physical_id, "resume", "ACTIVE")

    def refreshed_attributes(self, physical_id: str, data: dict[str, Any]) -> dict[str, Any] | None:  # noqa: ARG002
        from apps.core.errors import NotFound

        try:
            return self.attributes(_server(self.context.actor, physical_id))
        except NotFound:
            return None


def _user_data(raw: str | None) -> str | None:
    """Heat hands Nova the template's user_data as it is (RAW, or a SOFTWARE_CONFIG's own text): Nova's
    API takes it base64-encoded, as the server's row keeps it."""
    if raw is None or raw == "":
        return None
    return base64.b64encode(raw.encode()).decode()


def software_config_text(actor: Any, user_data: str | None, data_format: str | None) -> str | None:
    """Heat's RAW and SOFTWARE_CONFIG user_data: the id of a software config the owner may see (an
    OS::Heat::SoftwareConfig, CloudConfig or MultipartMime) stands for that config's text; anything else
    is the text itself."""
    from apps.core.errors import NotFound
    from apps.orchestration import selectors

    if not user_data or data_format not in ("RAW", "SOFTWARE_CONFIG") or not _is_uuid(user_data.strip()):
        return user_data
    try:
        return selectors.software_config_get(actor=actor, config_id=user_data.strip()).config
    except NotFound:
        return user_data


NETWORK_ITEM = {
    "network": Prop(STRING, "Name or ID of network to create a port on."),
    "port": Prop(STRING, "ID of an existing port to associate with this server."),
    "fixed_ip": Prop(STRING, "Fixed IP address to specify for the port created on the requested network."),
    "subnet": Prop(STRING, "Subnet in which to allocate the IP address for port (its network is used)."),
    "uuid": Prop(STRING, "ID of network (deprecated: use network)."),
    "tag": Prop(STRING, "Port tag."),
    "allocate_network": Prop(STRING, "The special string values of network, auto: a network chosen for the "
                                     "server; none: no networking.", allowed_values=("auto", "none")),
}
BDM_ITEM = {
    "device_name": Prop(STRING, "A device name where the volume will be attached in the system at /dev/device_name."),
    "volume_id": Prop(STRING, "The ID of the volume to boot from."),
    "snapshot_id": Prop(STRING, "The ID of the snapshot to create a volume from."),
    "volume_size": Prop(INTEGER, "The size of the volume, in GB."),
    "delete_on_termination": Prop(BOOLEAN, "Indicate whether the volume should be deleted when the server is "
                                           "terminated."),
}
BDM_V2_ITEM = {
    "device_name": Prop(STRING, "A device name where the volume will be attached in the system at /dev/device_name."),
    "volume_id": Prop(STRING, "The volume_id can be boot or non-boot device to the server."),
    "image": Prop(STRING, "The ID or name of the image to create a volume from."),
    "image_id": Prop(STRING, "The ID of the image to create a volume from (deprecated: use image)."),
    "snapshot_id": Prop(STRING, "The ID of the snapshot to create a volume from."),
    "swap_size": Prop(INTEGER, "The size of the swap, in MB."),
    "ephemeral_size": Prop(INTEGER, "The size of the local ephemeral block device, in GB."),
    "ephemeral_format": Prop(STRING, "The format of the local ephemeral block device."),
    "device_type": Prop(STRING, "Device type.", allowed_values=("cdrom", "disk")),
    "disk_bus": Prop(STRING, "Bus of the device.", allowed_values=("ide", "lame_bus", "scsi", "usb", "virtio")),
    "boot_index": Prop(INTEGER, "Integer used for ordering the boot disks."),
    "volume_size": Prop(INTEGER, "Size of the block device in GB."),
    "delete_on_termination": Prop(BOOLEAN, "Indicate whether the volume should be deleted when the server is "
                                           "terminated."),
}


def _bdm_v2(actor: Any, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for item in items:
        image = item.get("image") or item.get("image_id")
        entry: dict[str, Any] = {"device_name": item.get("device_name"), "boot_index": item.get("boot_index"),
                                 "volume_size": item.get("volume_size"), "disk_bus": item.get("disk_bus"),
                                 "device_type": item.get("device_type")}
        if item.get("volume_id"):
            entry |= {"source_type": "volume", "destination_type": "volume", "uuid": item["volume_id"]}
        elif item.get("snapshot_id"):
            entry |= {"source_type": "snapshot", "destination_type": "volume", "uuid": item["snapshot_id"]}
        elif image:
            entry |= {"source_type": "image", "destination_type": "volume", "uuid": image_id(actor, image)}
        elif item.get("swap_size") or item.get("ephemeral_size"):
            continue  # the flavor's local disks
        else:
            entry |= {"source_type": "blank", "destination_type": "volume"}
        if item.get("delete_on_termination") is not None:
            entry["delete_on_termination"] = item["delete_on_termination"]
        out.append({k: v for k, v in entry.items() if v is not None})
    return out


def block_devices(actor: Any, legacy: list[dict[str, Any]] | None, v2: list[dict[str, Any]] | None) -> list[Any]:
    from apps.compute.block_devices import block_device
    from apps.core.errors import BadRequest

    if legacy and v2:
        raise BadRequest("Cannot define the following properties at the same time: block_device_mapping, "
                         "block_device_mapping_v2.")
    items: list[dict[str, Any]] = []
    for item in legacy or []:
        name = item.get("device_name") or ""
        root = name.rsplit("/", 1)[-1] == "vda"
        items.append({k: v for k, v in {
            "source_type": "snapshot" if item.get("snapshot_id") else "volume", "destination_type": "volume",
            "uuid": item.get("snapshot_id") or item.get("volume_id"), "boot_index": 0 if root else None,
            "device_name": name or None, "volume_size": item.get("volume_size"),
            "delete_on_termination": item.get("delete_on_termination")}.items() if v is not None})
    items += _bdm_v2(actor, v2 or [])
    return [block_device(item) for item in items]


def network_requests(actor: Any, items: list[dict[str, Any]] | None) -> list[dict[str, str]] | str | None:
    from apps.core.errors import BadRequest
    from apps.networks import selectors as networks

    if not items:
        return None
    special = [item["allocate_network"] for item in items if item.get("allocate_network")]
    if special:
        if len(items) > 1:
            raise BadRequest("Can not specify 'allocate_network' with other keys of networks at the same time.")
        return special[0]
    out: list[dict[str, str]] = []
    for item in items:
        entry: dict[str, str] = {}
        if item.get("port"):
            entry["port"] = networks.port_get(actor=actor, port_id=item["port"]).id
        else:
            ref = item.get("network") or item.get("uuid")
            if not ref and item.get("subnet"):
                ref = networks.subnet_get(actor=actor, subnet_id=item["subnet"]).network_id
            if not ref:
                raise BadRequest("One of the properties network, port or subnet should be set for the "
                                 "specified network of the server.")
            entry["uuid"] = network_id(actor, ref)
            if item.get("fixed_ip"):
                entry["fixed_ip"] = item["fixed_ip"]
        out.append(entry)
    return out


def network_requests_port(actor: Any, ref: str) -> str:
    from apps.networks import selectors as networks

    return networks.port_get(actor=actor, port_id=ref).id


@register
class Server(_ServerBase):
    type_name = "OS::Nova::Server"
    description = "A resource for managing Nova instances."
    properties_schema = {
        "name": Prop(STRING, "Server name.", update_allowed=True),
        "image": Prop(STRING, "The ID or name of the image to boot with (a change replaces the server)."),
        "flavor": Prop(STRING, "The ID or name of the flavor to boot onto (a change resizes the server, or "
                               "replaces it when flavor_update_policy is REPLACE).", required=True,
                       update_allowed=True),
        "flavor_update_policy": Prop(STRING, "Policy on how to apply a flavor update: resize the server (confirmed "
                                             "when it is done) or replace it.", default="RESIZE",
                                     allowed_values=("RESIZE", "REPLACE"), update_allowed=True),
        "image_update_policy": Prop(STRING, "Policy on how to apply an image-id update (this cloud replaces the "
                                            "server whatever the policy).", default="REBUILD",
                                    allowed_values=("REBUILD", "REPLACE", "REBUILD_PRESERVE_EPHEMERAL"),
                                    update_allowed=True),
        "key_name": Prop(STRING, "Name of keypair to inject into the server."),
        "admin_pass": Prop(STRING, "The administrator password for the server."),
        "availability_zone": Prop(STRING, "Name of the availability zone for server placement."),
        "security_groups": Prop(LIST, "List of security group names or IDs.", default=[],
                                schema={"*": Prop(STRING)}),
        "networks": Prop(LIST, "An ordered list of nics to be added to this server.",
                         schema={"*": Prop(MAP, schema=NETWORK_ITEM)}),
        "block_device_mapping": Prop(LIST, "Block device mappings for this server.",
                                     schema={"*": Prop(MAP, schema=BDM_ITEM)}),
        "block_device_mapping_v2": Prop(LIST, "Block device mappings v2 for this server.",
                                        schema={"*": Prop(MAP, schema=BDM_V2_ITEM)}),
        "scheduler_hints": Prop(MAP, "Arbitrary key-value pairs specified by the client to help boot a server "
                                     "(``group`` is the server group)."),
        "metadata": Prop(MAP, "Arbitrary key/value metadata to store for this server.", update_allowed=True),
        "user_data_format": Prop(STRING, "How the user_data should be formatted for the server (passed as it is).",
                                 default="HEAT_CFNTOOLS", allowed_values=("HEAT_CFNTOOLS", "RAW", "SOFTWARE_CONFIG")),
        "software_config_transport": Prop(STRING, "How the server should receive the metadata required for "
                                                  "software configuration.", default="POLL_SERVER_CFN",
                                          allowed_values=("POLL_SERVER_CFN", "POLL_SERVER_HEAT", "POLL_TEMP_URL",
                                                          "ZAQAR_MESSAGE")),
        "user_data": Prop(STRING, "User data script to be executed by cloud-init.", default=""),
        "user_data_update_policy": Prop(STRING, "Policy on how to apply a user_data update: replace the server, "
                                                "or ignore the change.", default="REPLACE",
                                        allowed_values=("REPLACE", "IGNORE"), update_allowed=True),
        "config_drive": Prop(BOOLEAN, "If True, enable config drive on the server."),
        "diskConfig": Prop(STRING, "Control how the disk is partitioned when the server is created.",
                           allowed_values=("AUTO", "MANUAL")),
        "reservation_id": Prop(STRING, "A UUID for the set of servers being requested (ignored)."),
        "deployment_swift_data": Prop(MAP, "Swift container and object to use for storing deployment data "
                                           "(ignored)."),
        "tags": Prop(LIST, "Server tags.", schema={"*": Prop(STRING)}),
    }
    attributes_schema = {
        "name": Attr("Name of the server."),
        "first_address": Attr("The first IPv4 address of the server (deprecated: use networks)."),
        "networks": Attr("A dict of assigned network addresses of the form {\"public\": [ip1, ip2...], "
                         "\"private\": [ip3, ip4], ...}, keyed by network name and by network id.", MAP),
        "addresses": Attr("A dict of all network addresses with corresponding port_id and subnets.", MAP),
        "accessIPv4": Attr("The manually assigned alternative public IPv4 address of the server."),
        "accessIPv6": Attr("The manually assigned alternative public IPv6 address of the server."),
        "instance_name": Attr("The server's name as the compute service knows it."),
        "console_urls": Attr("URLs of server's consoles (the dashboard's console page of the server).", MAP),
        "floating_ips": Attr("The floating IP addresses of the server.", LIST),
        "status": Attr("The status of the server."),
    }

    def boot(self, props: dict[str, Any]) -> dict[str, Any]:
        actor = self.context.actor
        hints = props.get("scheduler_hints") or {}
        group = hints.get("group")
        image = props.get("image")
        disk = props.get("diskConfig")
        return {
            "name": props.get("name") or self.context.physical_name(63),
            "image_ref": image_id(actor, image) if image else "",
            "flavor_ref": flavor_id(actor, props["flavor"]),
            "networks": network_requests(actor, props.get("networks")),
            "key_name": props.get("key_name") or None,
            "security_groups": list(props.get("security_groups") or []) or None,
            "user_data": _user_data(software_config_text(actor, props.get("user_data"), props.get("user_data_format"))),
            "metadata": _string_map(props.get("metadata")),
            "config_drive": bool(props.get("config_drive")),
            "availability_zone": props.get("availability_zone") or None,
            "group_id": str(group) if group else None,
            "block_devices": block_devices(actor, props.get("block_device_mapping"),
                                           props.get("block_device_mapping_v2")),
            "tags": props.get("tags") or None,
            "admin_pass": props.get("admin_pass") or None,
            **({"disk_config": disk} if disk else {}),
        }

    def create(self, props: dict[str, Any]) -> Outcome:
        from apps.core.errors import StratusError

        try:
            return super().create(props)
        except StratusError as exc:  # a lookup (image, flavor, network) refused
            raise _failed(exc) from None

    @classmethod
    def needs_replacement(cls, old: Any, new: Any) -> bool:
        """Heat's update policies: a flavor change resizes unless ``flavor_update_policy`` is REPLACE; a
        user_data change is ignored when ``user_data_update_policy`` is IGNORE."""
        old, new = dict(old), dict(new)
        if new.get("flavor_update_policy") == "REPLACE" and old.get("flavor") != new.get("flavor"):
            return True
        if new.get("user_data_update_policy") == "IGNORE":
            old.pop("user_data", None)
            new.pop("user_data", None)
        return super().needs_replacement(old, new)

    def update(self, physical_id: str, data: dict[str, Any], old: dict[str, Any], new: dict[str, Any]) -> Outcome:
        """The name (Nova's server update) and metadata (replaced) in place; a new flavor resizes the server
        (``check_update_complete`` confirms the resize); the rest replaces."""
        from apps.compute.services import server_lifecycle, server_metadata, server_rebuild_resize
        from apps.core.errors import StratusError

        actor = self.context.actor
        data = {k: v for k, v in data.items() if k != "resize_to"}
        try:
            if old.get("name") != new.get("name"):
                server_lifecycle.server_update(actor=actor, server_id=physical_id,
                                               name=new.get("name") or self.context.physical_name(63))
            if old.get("metadata") != new.get("metadata"):
                server_metadata.server_metadata_set(actor=actor, server_id=physical_id,
                                                    metadata=_string_map(new.get("metadata")), replace=True)
            if old.get("flavor") != new.get("flavor"):
                target = flavor_id(actor, new["flavor"])
                if target != _server(actor, physical_id).flavor_ref:
                    server_rebuild_resize.server_resize(actor=actor, server_id=physical_id, flavor_ref=target,
                                                        request_id=_request_id())
                    return Outcome(physical_id=physical_id, data={**data, "resize_to": target}, done=False,
                                   retry_after=2.0)
            instance = _server(actor, physical_id)
        except StratusError as exc:
            raise _failed(exc) from None
        return Outcome(physical_id=physical_id, data=data, attributes=self.attributes(instance))

    def check_update_complete(self, physical_id: str, data: dict[str, Any], new: dict[str, Any]) -> Outcome:  # noqa: ARG002
        """A resize: confirmed once the server is VERIFY_RESIZE, done when it is ACTIVE on the new flavor."""
        from apps.compute.selectors import servers
        from apps.compute.services import server_rebuild_resize
        from apps.core.errors import NotFound, StratusError

        target = data.get("resize_to")
        actor = self.context.actor
        try:
            instance = _server(actor, physical_id)
            status = server_status(instance)
            if target is None or (status == "ACTIVE" and instance.flavor_ref == target and not instance.new_flavor):
                return Outcome(physical_id=physical_id, data={k: v for k, v in data.items() if k != "resize_to"},
                               attributes=self.attributes(instance))
            if status == "ERROR":
                fault = servers.server_fault(instance)
                raise ResourceFailed(f"Error: resources.{self.context.resource_name}: Resizing to \"{target}\" "
                                     f"failed, status \"ERROR\": {fault.message if fault is not None else ''}")
            if status == "VERIFY_RESIZE" and instance.task_state is None:
                server_rebuild_resize.server_resize_confirm(actor=actor, server_id=physical_id,
                                                            request_id=_request_id())
            elif status == "ACTIVE" and instance.task_state is None and instance.flavor_ref != target:
                raise ResourceFailed(f"Error: resources.{self.context.resource_name}: Resizing to \"{target}\" "
                                     f"failed: the server is back on flavor {instance.flavor_ref}.")
        except NotFound:
            raise ResourceFailed(f"NotFound: Server {physical_id} could not be found.") from None
        except StratusError as exc:
            raise _failed(exc) from None
        return Outcome(physical_id=physical_id, data=data, done=False, retry_after=2.0)


@register
class EC2Instance(_ServerBase):
    """AWS::EC2::Instance: the same server, from CloudFormation's names (InstanceType is the flavor's
    name; UserData arrives decoded, as Heat's Fn::Base64 leaves it)."""

    type_name = "AWS::EC2::Instance"
    description = "A CloudFormation instance (a Nova server)."
    properties_schema = {
        "ImageId": Prop(STRING, "Glance image ID or name.", required=True),
        "InstanceType": Prop(STRING, "Nova instance type (flavor).", required=True),
        "KeyName": Prop(STRING, "Optional Nova keypair name."),
        "AvailabilityZone": Prop(STRING, "Availability zone to launch the instance in."),
        "SecurityGroups": Prop(LIST, "Security group names to assign.", schema={"*": Prop(STRING)}),
        "SecurityGroupIds": Prop(LIST, "Security group IDs to assign.", schema={"*": Prop(STRING)}),
        "SubnetId": Prop(STRING, "Subnet ID to launch instance in (a port on its network)."),
        "NetworkInterfaces": Prop(LIST, "Network interfaces to associate with instance.",
                                  schema={"*": Prop(MAP)}),
        "UserData": Prop(STRING, "User data to pass to instance."),
        "Tags": Prop(LIST, "Tags to attach to instance (the server's metadata).",
                     schema={"*": Prop(MAP, schema={"Key": Prop(STRING, required=True),
                                                    "Value": Prop(STRING, required=True)})}),
        "Volumes": Prop(LIST, "Volumes to attach to instance.", default=[],
                        schema={"*": Prop(MAP, schema={"Device": Prop(STRING, required=True),
                                                       "VolumeId": Prop(STRING, required=True)})}),
        "PrivateIpAddress": Prop(STRING, "Not Implemented."),
        "PlacementGroupName": Prop(STRING, "Not Implemented."),
        "Monitoring": Prop(BOOLEAN, "Not Implemented."),
        "DisableApiTermination": Prop(STRING, "Not Implemented."),
        "KernelId": Prop(STRING, "Not Implemented."),
        "RamDiskId": Prop(STRING, "Not Implemented."),
        "Tenancy": Prop(STRING, "Not Implemented.", allowed_values=("dedicated", "default")),
        "NovaSchedulerHints": Prop(LIST, "Scheduler hints to pass to Nova (Key: group).",
                                   schema={"*": Prop(MAP, schema={"Key": Prop(STRING, required=True),
                                                                  "Value": Prop(STRING, required=True)})}),
        "SourceDestCheck": Prop(BOOLEAN, "Not Implemented."),
    }
    attributes_schema = {
        "AvailabilityZone": Attr("The Availability Zone where the specified instance is launched."),
        "PrivateDnsName": Attr("Private DNS name of the specified instance (its address)."),
        "PublicDnsName": Attr("Public DNS name of the specified instance (its address)."),
        "PrivateIp": Attr("Private IP address of the specified instance."),
        "PublicIp": Attr("Public IP address of the specified instance."),
    }

    def boot(self, props: dict[str, Any]) -> dict[str, Any]:
        actor = self.context.actor
        networks = None
        if props.get("SubnetId"):
            networks = network_requests(actor, [{"subnet": props["SubnetId"]}])
        for nic in props.get("NetworkInterfaces") or []:
            port = nic.get("NetworkInterfaceId") if isinstance(nic, dict) else nic
            networks = [*(networks or []), {"port": network_requests_port(actor, str(port))}]
        hints = {h["Key"]: h["Value"] for h in props.get("NovaSchedulerHints") or []}
        groups = list(props.get("SecurityGroups") or []) + list(props.get("SecurityGroupIds") or [])
        return {
            "name": self.context.physical_name(63),
            "image_ref": image_id(actor, props["ImageId"]),
            "flavor_ref": flavor_id(actor, props["InstanceType"]),
            "networks": networks,
            "key_name": props.get("KeyName") or None,
            "security_groups": groups or None,
            "user_data": _user_data(props.get("UserData")),
            "metadata": {t["Key"]: t["Value"] for t in props.get("Tags") or []},
            "availability_zone": props.get("AvailabilityZone") or None,
            "group_id": hints.get("group") or None,
        }

    def create(self, props: dict[str, Any]) -> Outcome:
        from apps.core.errors import StratusError

        try:
            return super().create(props)
        except StratusError as exc:
            raise _failed(exc) from None

    def check_create_complete(self, props: dict[str, Any], data: dict[str, Any]) -> Outcome:
        outcome = super().check_create_complete(props, data)
        if outcome.done and props.get("Volumes"):
            outcome = self._attach_volumes(props, outcome)
        return outcome

    def _attach_volumes(self, props: dict[str, Any], outcome: Outcome) -> Outcome:
        from apps.compute.services import volumes
        from apps.core.errors import StratusError

        attached = outcome.data.setdefault("attached", [])
        for item in props["Volumes"]:
            if item["VolumeId"] in attached:
                continue
            try:
                volumes.server_volume_attach(actor=self.context.actor, server_id=outcome.physical_id,
                                             volume_id=item["VolumeId"], device=item["Device"])
            except StratusError as exc:
                raise _failed(exc) from None
            attached.append(item["VolumeId"])
        return outcome

    def attributes(self, instance: Any) -> dict[str, Any]:
        full = server_attributes(instance)
        private = full["first_address"]
        public = (full["floating_ips"] or [private])[0]
        return {"AvailabilityZone": instance.availability_zone or "nova", "PrivateDnsName": private,
                "PublicDnsName": public, "PrivateIp": private, "PublicIp": public, "show": full["show"]}
