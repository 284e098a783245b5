"""What each Nova operation takes from its body, checked and typed (``apps.core.validators``); a
malformed body is a 400 in Nova's format before any service runs. One parser per operation; the views
pass what it returns to the keyword-only services (``server_create``, ``server_reboot``, ...), which the
dashboard calls with the same arguments."""
from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from apps.compute.block_devices import MAX_TAG, BlockDevice, block_device
from apps.compute.models import ServerGroup
from apps.compute.services.instances import MAX_TAGS, NetworkRequest
from apps.compute.services.nodes import STATUSES as SERVICE_STATUSES
from apps.core import validators as check
from apps.core.errors import BadRequest
from apps.core.validators import UNSET, Unset

CREATE_KEYS = frozenset({
    "name", "imageRef", "flavorRef", "adminPass", "metadata", "networks", "OS-DCF:diskConfig", "accessIPv4",
    "accessIPv6", "key_name", "availability_zone", "block_device_mapping", "block_device_mapping_v2",
    "config_drive", "min_count", "max_count", "return_reservation_id", "security_groups", "user_data",
    "personality",
})
REBUILD_KEYS = frozenset({"imageRef", "name", "metadata", "adminPass", "accessIPv4", "accessIPv6",
                          "OS-DCF:diskConfig", "preserve_ephemeral"})
NETWORK_KEYS = frozenset({"uuid", "port", "fixed_ip", "tag"})
LEGACY_BDM_KEYS = frozenset({"device_name", "volume_id", "snapshot_id", "volume_size", "delete_on_termination",
                             "no_device", "virtual_name"})
DISK_CONFIGS = ("AUTO", "MANUAL")
MAX_USER_DATA = 65535
MAX_INT = 2**31 - 1
SERVER_GROUP_POLICIES = tuple(ServerGroup.POLICIES)


def wrapped(data: Any, key: str) -> dict[str, Any]:
    """The object under ``key`` (``{"server": {...}}``)."""
    if not isinstance(data, dict) or not isinstance(data.get(key), dict):
        raise BadRequest(f"Invalid input: the request body must be an object with '{key}'.")
    return data[key]


def single_action(data: Any) -> tuple[str, Any]:
    """``{"reboot": {...}}``: the one action and its body."""
    if not isinstance(data, dict) or len(data) != 1:
        raise BadRequest("Malformed request body: exactly one action is expected.")
    ((action, body),) = data.items()
    return action, body


def _name(value: Any) -> str:
    return check.text(value, field="name", required=True) or ""


def _access_ip(value: Any, version: int) -> str:
    if value is None or value == "":
        return ""
    return check.ip_address(value, field=f"accessIPv{version}", version=version)


def _disk_config(value: Any) -> str:
    return check.choice(value, field="OS-DCF:diskConfig", choices=DISK_CONFIGS)


def _admin_pass(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise BadRequest("Invalid input for field/attribute adminPass: a string is expected.")
    return value


def _metadata(value: Any) -> dict[str, str]:
    """Server metadata: its count is checked against the metadata_items quota by the service."""
    return check.string_map(value, field="metadata", max_items=None)


def tag(value: Any) -> str:
    return check.tag(value, field="tag", max_length=MAX_TAG, forbidden="/,")


def _tags(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise BadRequest("Invalid input for field/attribute tags: a list is expected.")
    clean = check.tags(value, field="tags", max_length=MAX_TAG, forbidden="/,")
    if len(clean) > MAX_TAGS:
        raise BadRequest(f"The number of tags exceeded the per-server limit {MAX_TAGS}")
    return clean


def _device_tags(version: tuple[int, int]) -> bool:
    """Whether a network or block device of a new server may carry a ``tag``: Nova's 2.32, then from
    2.42 (2.33-2.41 dropped it by mistake). Not before 2.32."""
    return version == (2, 32) or version >= (2, 42)


def _networks(value: Any, version: tuple[int, int]) -> list[NetworkRequest] | str | None:
    """None (the project's only network, if any), a list of requests, or from 2.37 "auto" / "none"."""
    if value is None or (value in ("auto", "none") and version >= (2, 37)):
        return value
    if not isinstance(value, list):
        raise BadRequest(f"Invalid input for field/attribute networks. Value: {value!r}. A list is expected"
                         + (", or 'auto' or 'none'." if version >= (2, 37) else "."))
    keys = NETWORK_KEYS if _device_tags(version) else NETWORK_KEYS - {"tag"}
    requests: list[NetworkRequest] = []
    for item in value:
        if not isinstance(item, dict) or not item or set(item) - keys:
            raise BadRequest(f"Invalid input for field/attribute networks. Value: {item!r}.")
        if item.get("port"):
            requests.append({"port": str(item["port"])})
            continue
        network_id = item.get("uuid")
        if not isinstance(network_id, str) or not network_id:
            raise BadRequest(f"Invalid input for field/attribute networks. Value: {item!r}: uuid or port needed.")
        request: NetworkRequest = {"uuid": network_id}
        if item.get("fixed_ip"):
            try:
                request["fixed_ip"] = check.ip_address(item["fixed_ip"], field="fixed_ip")
            except BadRequest:
                raise BadRequest(f"Invalid fixed IP address ({item['fixed_ip']})") from None
        requests.append(request)
    return requests


def _security_groups(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadRequest("Invalid input for field/attribute security_groups: a list is expected.")
    names = [g.get("name") if isinstance(g, dict) else g for g in value]
    for ref in names:
        if not isinstance(ref, str) or not ref:
            raise BadRequest(f"Invalid input for field/attribute security_groups. Value: {ref!r}.")
    return names


def _group_hint(data: dict[str, Any]) -> str | None:
    hints = data.get("os:scheduler_hints") or data.get("OS-SCH-HNT:scheduler_hints")
    if hints is None:
        return None
    group = check.obj(hints, field="os:scheduler_hints").get("group")
    return str(group) if group else None


def _flavor_ref(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"Invalid flavorRef provided: {value!r}.")
    return value


def _image_ref(value: Any) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"Invalid imageRef provided: {value!r}.")
    return value


# ---- servers -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ServerCreate:
    name: str
    image_ref: str
    flavor_ref: str
    networks: list[NetworkRequest] | str | None
    key_name: str | None = None
    security_groups: list[str] = field(default_factory=list)
    user_data: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    config_drive: bool = False
    availability_zone: str | None = None
    group_id: str | None = None
    min_count: int = 1
    max_count: int = 1
    description: str | None = None
    access_ip_v4: str = ""
    access_ip_v6: str = ""
    block_devices: list[BlockDevice] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    admin_pass: str | None = None
    disk_config: str = "MANUAL"


def server_create(data: Any, *, version: tuple[int, int]) -> tuple[ServerCreate, bool]:
    """The server to create, and whether the answer is only its reservation id."""
    b = wrapped(data, "server")
    check.only_keys(b, field="server", allowed=CREATE_KEYS | ({"description"} if version >= (2, 19) else set()))
    check.required(b, field="server", keys=("name", "flavorRef"))
    min_count = check.integer(b.get("min_count", 1), field="min_count", minimum=1)
    user_data = b.get("user_data")
    zone = b.get("availability_zone")
    key_name = b.get("key_name")
    server = ServerCreate(
        name=_name(b.get("name")), image_ref=_image_ref(b.get("imageRef", "")),
        flavor_ref=_flavor_ref(b.get("flavorRef")), networks=_networks(b.get("networks"), version),
        key_name=None if key_name is None else str(key_name),
        security_groups=_security_groups(b.get("security_groups")),
        user_data=None if user_data is None else check.base64_text(user_data, field="user_data",
                                                                   max_length=MAX_USER_DATA),
        metadata=_metadata(b.get("metadata")),
        config_drive=check.boolean(b.get("config_drive") if b.get("config_drive") not in (None, "") else False,
                                   field="config_drive"),
        availability_zone=check.text(zone, field="availability_zone") or None, group_id=_group_hint(data),
        min_count=min_count, max_count=check.integer(b.get("max_count", min_count), field="max_count", minimum=1),
        description=check.text(b.get("description"), field="description"),
        access_ip_v4=_access_ip(b.get("accessIPv4"), 4), access_ip_v6=_access_ip(b.get("accessIPv6"), 6),
        block_devices=block_devices(b.get("block_device_mapping_v2"), legacy=b.get("block_device_mapping"),
                                    tags=_device_tags(version)),
        tags=_tags(b.get("tags") or []), admin_pass=_admin_pass(b.get("adminPass")),
        disk_config=_disk_config(b.get("OS-DCF:diskConfig") or "MANUAL"))
    return server, b.get("return_reservation_id") in (True, "True", "true", "1")


def _list(value: Any, name: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadRequest(f"Invalid input for field/attribute {name}: a list is expected.")
    return value


def block_devices(bdm_v2: Any, *, legacy: Any = None, tags: bool = True) -> list[BlockDevice]:
    """A server's ``block_device_mapping_v2``, or Nova's legacy ``block_device_mapping`` (one or the
    other, never both), as ``BlockDevice`` values; a ``tag`` only where ``tags`` allows it."""
    bdm_v2, legacy = _list(bdm_v2, "block_device_mapping_v2"), _list(legacy, "block_device_mapping")
    if legacy and bdm_v2:
        raise BadRequest("Using different block_device_mapping syntaxes is not allowed in the same request.")
    if not tags and any(isinstance(item, Mapping) and "tag" in item for item in bdm_v2):
        raise BadRequest("Invalid input for field/attribute block_device_mapping_v2. Additional properties "
                         "are not allowed (tag was unexpected)")
    return [block_device(item) for item in (_from_legacy(legacy) if legacy else bdm_v2)]


def _from_legacy(mappings: list[Any]) -> list[dict[str, Any]]:
    """Nova's legacy mappings (volume_id / snapshot_id at a device_name) in the v2 format: the one at
    the root device (vda) boots (boot index 0); ephemeral and swap ones are the flavor's, skipped."""
    converted = []
    for item in mappings:
        if not isinstance(item, Mapping):
            raise BadRequest(f"Invalid input for field/attribute block_device_mapping. Value: {item!r}.")
        check.only_keys(item, field="block_device_mapping", allowed=LEGACY_BDM_KEYS)
        if item.get("no_device") or item.get("virtual_name"):
            continue
        name = item.get("device_name")
        root = isinstance(name, str) and name.rsplit("/", 1)[-1] == "vda"
        converted.append({"source_type": "snapshot" if item.get("snapshot_id") else "volume",
                          "destination_type": "volume", "uuid": item.get("snapshot_id") or item.get("volume_id"),
                          "boot_index": 0 if root else None, "device_name": name,
                          "volume_size": item.get("volume_size"),
                          "delete_on_termination": item.get("delete_on_termination", False)})
    return converted


@dataclass(frozen=True)
class ServerUpdate:
    name: str | Unset = UNSET
    description: str | Unset | None = UNSET
    access_ip_v4: str | Unset = UNSET
    access_ip_v6: str | Unset = UNSET
    disk_config: str | Unset = UNSET


def server_update(data: Any, *, version: tuple[int, int]) -> ServerUpdate:
    b = wrapped(data, "server")
    allowed = {"name", "accessIPv4", "accessIPv6", "OS-DCF:diskConfig"} | ({"description"} if version >= (2, 19)
                                                                          else set())
    check.only_keys(b, field="server", allowed=allowed)
    return ServerUpdate(
        name=_name(b["name"]) if "name" in b else UNSET,
        description=check.text(b["description"], field="description") if "description" in b else UNSET,
        access_ip_v4=_access_ip(b["accessIPv4"], 4) if "accessIPv4" in b else UNSET,
        access_ip_v6=_access_ip(b["accessIPv6"], 6) if "accessIPv6" in b else UNSET,
        disk_config=_disk_config(b["OS-DCF:diskConfig"]) if "OS-DCF:diskConfig" in b else UNSET)


# ---- actions -------------------------------------------------------------------------------------

def reboot(body: Any) -> str:
    """SOFT or HARD (any case)."""
    kind = body.get("type") if isinstance(body, dict) else None
    if not isinstance(kind, str) or kind.upper() not in ("SOFT", "HARD"):
        raise BadRequest(f"Invalid input for field/attribute type. Value: {kind}. It must be one of SOFT, HARD.")
    return kind.upper()


def lock(body: Any, *, version: tuple[int, int]) -> str | None:
    """``{"lock": {"locked_reason"}}`` (2.73; before it the body is not read, as in Nova)."""
    if version < (2, 73):
        return None
    reason = body.get("locked_reason") if isinstance(body, dict) else None
    return check.text(reason, field="locked_reason")


@dataclass(frozen=True)
class ServerRebuild:
    image_ref: str
    name: str | None = None
    metadata: dict[str, str] | None = None
    access_ip_v4: str | None = None
    access_ip_v6: str | None = None
    disk_config: str | None = None
    admin_pass: str | None = None
    description: str | Unset | None = UNSET


def rebuild(body: Any, *, version: tuple[int, int]) -> ServerRebuild:
    """``{"rebuild": {...}}``; ``description`` (null clears it) from 2.19."""
    if not isinstance(body, dict):
        raise BadRequest("Invalid input for field/attribute rebuild: an object is expected.")
    check.only_keys(body, field="rebuild", allowed=REBUILD_KEYS | ({"description"} if version >= (2, 19) else set()))
    check.required(body, field="rebuild", keys=("imageRef",))
    return ServerRebuild(
        image_ref=_image_ref(body["imageRef"]), name=_name(body["name"]) if "name" in body else None,
        metadata=_metadata(body["metadata"]) if "metadata" in body else None,
        access_ip_v4=_access_ip(body["accessIPv4"], 4) if "accessIPv4" in body else None,
        access_ip_v6=_access_ip(body["accessIPv6"], 6) if "accessIPv6" in body else None,
        disk_config=_disk_config(body["OS-DCF:diskConfig"]) if "OS-DCF:diskConfig" in body else None,
        admin_pass=_admin_pass(body.get("adminPass")),
        description=check.text(body["description"], field="description") if "description" in body else UNSET)


@dataclass(frozen=True)
class ServerResize:
    flavor_ref: str
    disk_config: str | None = None


def resize(body: Any) -> ServerResize:
    if not isinstance(body, dict) or "flavorRef" not in body:
        raise BadRequest("Invalid input for field/attribute resize: 'flavorRef' is a required property")
    return ServerResize(flavor_ref=_flavor_ref(body["flavorRef"]),
                        disk_config=_disk_config(body["OS-DCF:diskConfig"]) if "OS-DCF:diskConfig" in body else None)


@dataclass(frozen=True)
class ServerImageCreate:
    name: str
    metadata: dict[str, str]


def create_image(body: Any) -> ServerImageCreate:
    if not isinstance(body, dict) or "name" not in body:
        raise BadRequest("Invalid input for field/attribute createImage: 'name' is a required property")
    return ServerImageCreate(name=_name(body["name"]), metadata=_metadata(body.get("metadata")))


def crash_dump(body: Any) -> dict[str, Any]:
    """``{"trigger_crash_dump": null}``: nothing else is valid."""
    if body is not None:
        raise BadRequest(f"Invalid input for field/attribute trigger_crash_dump. Value: {body}. "
                         f"{body!r} is not of type 'null'")
    return {}


def console_length(body: Any) -> int | None:
    """os-getConsoleOutput's ``length``: the last lines to show (None or -1: all)."""
    length = body.get("length") if isinstance(body, dict) else None
    if length is None:
        return None
    length = check.integer(length, field="length", minimum=-1)
    return None if length == -1 else length


REMOTE_CONSOLE_PROTOCOLS = ("vnc", "spice", "rdp", "serial")
REMOTE_CONSOLE_TYPES = ("novnc", "xvpvnc", "rdp-html5", "spice-html5", "serial")


def remote_console(data: Any, *, version: tuple[int, int]) -> tuple[str, str]:
    """os-remote-consoles' ``{"remote_console": {"protocol", "type"}}``: (protocol, type), each one Nova
    knows at ``version`` (2.8 adds the mks protocol and its webmks type)."""
    body = data.get("remote_console") if isinstance(data, dict) else None
    if not isinstance(body, dict) or set(body) - {"protocol", "type"}:
        raise BadRequest("Invalid input for field/attribute remote_console: expected an object with protocol "
                         "and type only.")
    protocols = REMOTE_CONSOLE_PROTOCOLS + (("mks",) if version >= (2, 8) else ())
    types = REMOTE_CONSOLE_TYPES + (("webmks",) if version >= (2, 8) else ())
    protocol, kind = body.get("protocol"), body.get("type")
    if protocol not in protocols:
        raise BadRequest(f"Invalid input for field/attribute protocol. Value: {protocol}. "
                         f"It must be one of {', '.join(protocols)}.")
    if kind not in types:
        raise BadRequest(f"Invalid input for field/attribute type. Value: {kind}. "
                         f"It must be one of {', '.join(types)}.")
    return str(protocol), str(kind)


def console_type(body: Any, allowed: tuple[str, ...]) -> str:
    """os-getVNCConsole's / os-getSerialConsole's ``{"type": ...}``, one of ``allowed``."""
    kind = body.get("type") if isinstance(body, dict) else None
    if kind not in allowed:
        raise BadRequest(f"Invalid input for field/attribute type. Value: {kind}. "
                         f"It must be one of {', '.join(allowed)}.")
    return str(kind)


def security_group(body: Any) -> str:
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str) or not name:
        raise BadRequest("Invalid input for field/attribute name: a security group name is required.")
    return name


# ---- metadata and tags ---------------------------------------------------------------------------

def metadata(data: Any) -> dict[str, str]:
    if not isinstance(data, dict) or not isinstance(data.get("metadata"), dict):
        raise BadRequest("Malformed request body: {\"metadata\": {...}} expected.")
    return _metadata(data["metadata"])


def metadata_item(data: Any, key: str) -> str:
    """``{"meta": {key: value}}``: the value (the key must be the URL's)."""
    if not isinstance(data, dict) or not isinstance(data.get("meta"), dict):
        raise BadRequest("Malformed request body: {\"meta\": {key: value}} expected.")
    meta = data["meta"]
    if len(meta) != 1:
        raise BadRequest("Request body contains too many items")
    if key not in meta:
        raise BadRequest("Request body and URI mismatch")
    return _metadata(meta)[key]


def tags(data: Any) -> list[str]:
    if not isinstance(data, dict) or "tags" not in data:
        raise BadRequest("Invalid input for field/attribute tags: 'tags' is a required property")
    return _tags(data["tags"])


# ---- flavors, key pairs, server groups, quotas ---------------------------------------------------

@dataclass(frozen=True)
class FlavorCreate:
    name: str
    ram: int
    vcpus: int
    disk: int
    flavor_id: str | None
    ephemeral: int
    swap: int
    rxtx_factor: float
    is_public: bool


def _rxtx_factor(value: Any) -> float:
    try:
        factor = float(value)
    except (TypeError, ValueError):
        raise BadRequest(f"Invalid input for field/attribute rxtx_factor. Value: {value}.") from None
    if isinstance(value, bool) or not 0 < factor <= 3.40282e38:
        raise BadRequest(f"Invalid input for field/attribute rxtx_factor. Value: {value}.")
    return factor


def flavor_create(data: Any) -> FlavorCreate:
    b = wrapped(data, "flavor")
    flavor_id = b.get("id")
    if isinstance(flavor_id, int) and not isinstance(flavor_id, bool):
        flavor_id = str(flavor_id)
    swap = b.get("swap", 0)
    return FlavorCreate(
        name=_name(b.get("name")), flavor_id=check.text(flavor_id, field="id") or None,
        ram=check.integer(b.get("ram"), field="ram", minimum=1, maximum=MAX_INT),
        vcpus=check.integer(b.get("vcpus"), field="vcpus", minimum=1, maximum=MAX_INT),
        disk=check.integer(b.get("disk"), field="disk", minimum=0, maximum=MAX_INT),
        ephemeral=check.integer(b.get("OS-FLV-EXT-DATA:ephemeral", 0), field="OS-FLV-EXT-DATA:ephemeral",
                                minimum=0, maximum=MAX_INT),
        swap=check.integer(swap if swap != "" else 0, field="swap", minimum=0, maximum=MAX_INT),
        rxtx_factor=_rxtx_factor(b.get("rxtx_factor", 1.0)),
        is_public=check.boolean(b.get("os-flavor-access:is_public", True), field="os-flavor-access:is_public"))


def flavor_access(data: Any) -> tuple[str, str]:
    """(addTenantAccess or removeTenantAccess, the project id)."""
    data = data if isinstance(data, dict) else {}
    for action in ("addTenantAccess", "removeTenantAccess"):
        if isinstance(data.get(action), dict):
            tenant = data[action].get("tenant")
            if not isinstance(tenant, str) or not tenant:
                raise BadRequest("Missing tenant parameter")
            return action, tenant
    raise BadRequest("Invalid action: addTenantAccess or removeTenantAccess expected.")


def _spec(key: Any, value: Any) -> tuple[str, str]:
    if not isinstance(key, str) or not re.fullmatch(r"[\w.:-]{1,255}", key):
        raise BadRequest(f"Invalid extra spec key {key!r}: 1-255 letters, digits, '_', '-', '.', ':'.")
    if isinstance(value, bool):
        value = str(value).lower()
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str) or len(value) > 255:
        raise BadRequest(f"Invalid extra spec value for {key}: a string of at most 255 characters.")
    return key, value


def extra_specs(data: Any) -> dict[str, str]:
    specs = data.get("extra_specs") if isinstance(data, dict) else None
    if not isinstance(specs, dict) or not specs:
        raise BadRequest("Invalid input: extra_specs must be a non-empty object.")
    return dict(_spec(k, v) for k, v in specs.items())


def extra_spec_item(data: Any, key: str) -> dict[str, str]:
    """``{key: value}`` (the key must be the URL's)."""
    if not isinstance(data, dict) or len(data) != 1:
        raise BadRequest("Request body contains too many items: exactly one extra spec is expected.")
    if key not in data:
        raise BadRequest("Request body and URI mismatch")
    return dict([_spec(key, data[key])])


@dataclass(frozen=True)
class KeyPairCreate:
    name: str
    public_key: str | None
    key_type: str = "ssh"
    user_id: str | None = None


def _public_key(value: Any) -> str | None:
    """An OpenSSH public key or a PEM certificate to import (None: generate the pair)."""
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise BadRequest("Keypair data is invalid: public_key must be a non-empty string.")
    return value


def keypair_create(data: Any, *, version: tuple[int, int]) -> KeyPairCreate:
    """``{"keypair": {"name", "public_key"?}}``; ``type`` (ssh or x509) from 2.2, ``user_id`` (an
    admin's, for another user) from 2.10. Anything else is a 400, as Nova's schemas say."""
    b = wrapped(data, "keypair")
    allowed = {"name", "public_key"} | ({"type"} if version >= (2, 2) else set()) | \
        ({"user_id"} if version >= (2, 10) else set())
    check.only_keys(b, field="keypair", allowed=allowed)
    key_type = check.choice(b.get("type", "ssh"), field="type", choices=("ssh", "x509"))
    user_id = check.text(b.get("user_id"), field="user_id") or None
    return KeyPairCreate(name=_name(b.get("name")), public_key=_public_key(b.get("public_key")),
                         key_type=key_type, user_id=user_id)


@dataclass(frozen=True)
class ServerGroupCreate:
    name: str
    policy: str


def server_group_create(data: Any, *, version: tuple[int, int]) -> ServerGroupCreate:
    b = wrapped(data, "server_group")
    policies = b.get("policies")
    if not isinstance(policies, list) or len(policies) != 1:
        raise BadRequest("Invalid input for field/attribute policies: exactly one policy is expected.")
    if policies[0] in ("soft-affinity", "soft-anti-affinity") and version < (2, 15):
        raise BadRequest(f"Invalid input for field/attribute policies. Value: {policies}. "
                         "The soft policies need microversion 2.15 or later.")
    return ServerGroupCreate(name=_name(b.get("name")),
                             policy=check.choice(policies[0], field="policies", choices=SERVER_GROUP_POLICIES))


def quota_limits(data: Any, *, key: str, keys: dict[str, str]) -> tuple[dict[str, int], bool]:
    """``{"quota_set": {nova key: limit, "force": ...}}``: (limits by resource name, force)."""
    b = dict(wrapped(data, key))
    force = b.pop("force", False) in (True, "true", "True")
    check.only_keys(b, field=key, allowed=keys)
    return {keys[k]: check.integer(v, field=k, minimum=-1) for k, v in b.items()}, force


# ---- os-services ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ServiceChange:
    """What ``PUT os-services`` changes on a compute service (None: left as it is)."""

    status: str | None = None
    disabled_reason: str | None = None
    forced_down: bool | None = None


def _object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise BadRequest("Invalid input: the request body must be an object.")
    return data


def _disabled_reason(value: Any) -> str | None:
    return None if value is None else check.text(value, field="disabled_reason", required=True)


def _forced_down(value: Any) -> bool | None:
    return None if value is None else check.boolean(value, field="forced_down", strict=True)


def service_action(data: Any, *, action: str) -> tuple[str, str, ServiceChange]:
    """``PUT os-services/{enable,disable,disable-log-reason,force-down}`` (before 2.53): the host and
    binary of the service, and the change."""
    b = _object(data)
    host, binary = b.get("host"), b.get("binary")
    if not isinstance(host, str) or not host or not isinstance(binary, str) or not binary:
        raise BadRequest("Invalid input: 'host' and 'binary' are required.")
    if action == "force-down":
        if not isinstance(b.get("forced_down"), bool):
            raise BadRequest("Invalid input for field/attribute forced_down: a boolean is required.")
        return host, binary, ServiceChange(forced_down=b["forced_down"])
    if action == "disable-log-reason":
        if b.get("disabled_reason") is None:
            raise BadRequest("Missing disabled reason field")
        return host, binary, ServiceChange(status="disabled", disabled_reason=_disabled_reason(b["disabled_reason"]))
    return host, binary, ServiceChange(status="enabled" if action == "enable" else "disabled")


def service_update(data: Any) -> ServiceChange:
    """``PUT os-services/{service_id}`` (2.53+): status, disabled_reason and forced_down, any of them."""
    b = _object(data)
    unknown = set(b) - {"status", "disabled_reason", "forced_down"}
    if unknown or not b:
        raise BadRequest(f"Invalid input: unexpected {sorted(unknown)} (status, disabled_reason, forced_down)."
                         if unknown else "Invalid input: nothing to update.")
    if "disabled_reason" in b and b.get("status") != "disabled":
        raise BadRequest("Specifying 'disabled_reason' with status other than 'disabled' is invalid.")
    status = b.get("status")
    return ServiceChange(status=None if status is None else check.choice(status, field="status",
                                                                        choices=SERVICE_STATUSES),
                         disabled_reason=_disabled_reason(b.get("disabled_reason")),
                         forced_down=_forced_down(b.get("forced_down")))


# ---- volume attachments --------------------------------------------------------------------------

@dataclass(frozen=True)
class VolumeAttachment:
    volume_id: str
    device: str | None


def volume_attachment(data: Any) -> VolumeAttachment:
    b = wrapped(data, "volumeAttachment")
    check.only_keys(b, field="volumeAttachment", allowed=("volumeId", "device"))
    if "volumeId" not in b:
        raise BadRequest(f"Invalid input for field/attribute volumeAttachment. Value: {b}. 'volumeId' is a "
                         "required property")
    return VolumeAttachment(volume_id=_volume_id(b["volumeId"]), device=check.text(b.get("device"), field="device"))


def _volume_id(value: Any) -> str:
    try:
        uuid.UUID(value if isinstance(value, str) else "")
    except ValueError:
        raise BadRequest(f"Invalid input for field/attribute volumeId. Value: {value}. '{value}' is not a "
                         "'uuid'") from None
    return value
