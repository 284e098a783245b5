"""Neutron request bodies -> the typed keyword arguments of apps.networks.services, one parser per
operation (``network_create(body)``, ``network_update(body)``, ...).

Each operation declares its attributes once (``Op``: Neutron's name -> the service's argument and
the checker of its JSON value); a body with an unknown attribute, an attribute of an extension this
cloud does not offer (unless empty: clients send defaults), or a value of the wrong JSON type is an
InvalidInput (400, Neutron's error shape) here, before any service runs. What a value means (is the
CIDR free, may this caller set it, ...) is the services' to check.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from apps.core import validators
from apps.core.errors import BadRequest
from apps.networks import errors
from apps.networks.services import FixedIP, Gateway

Check = Callable[[Any, str], Any]  # (JSON value, Neutron attribute) -> the typed value
E = errors.InvalidInput

# Attributes of extensions Stratus does not offer: accepted when empty (clients send defaults), refused
# otherwise rather than silently ignored.
UNSUPPORTED_EMPTY_OK = ("qos_policy_id", "extra_dhcp_opts", "propagate_uplink_status", "data_plane_status",
                        "availability_zone_hints", "dns_domain", "service_types", "segment_id", "distributed", "ha",
                        "is_default", "dns_publish_fixed_ip", "flavor_id", "dns_name", "address_scope_id")


# ---- value checkers ------------------------------------------------------------------------

def boolean(value: Any, key: str) -> bool:
    return validators.boolean(value, field=key, error=E)


def text(value: Any, key: str) -> str:
    return validators.text(value, field=key, error=E) or ""


def text_or_empty(value: Any, key: str) -> str:
    """A string where clients send null, false or "" for none."""
    return validators.text(value or "", field=key, error=E) or ""


def text_or_none(value: Any, key: str) -> str | None:
    return None if value is None else validators.text(value, field=key, error=E)


def integer(value: Any, key: str) -> int:
    return validators.integer(value, field=key, error=E)


def integer_or_none(value: Any, key: str) -> int | None:
    return None if value is None else integer(value, key)


def ranged(low: int, high: int | None = None, *, none: bool = False) -> Check:
    def check(value: Any, key: str) -> int | None:
        if none and value is None:
            return None
        return validators.integer(value, field=key, minimum=low, maximum=high, error=E)
    return check


def tags_or_empty(value: Any, key: str = "tags") -> list[str]:
    """Neutron's tags: strings without commas (null: none)."""
    return validators.tags(value, field=key, forbidden=",", error=E)


def tags(value: Any, key: str = "tags") -> list[str]:
    """Tags that replace a resource's (a list: null is not one)."""
    return tags_or_empty([None] if value is None else value, key)


def tag(value: str) -> str:
    """One tag (from a URL)."""
    return validators.tag(value, forbidden=",", error=E)


def required_id(noun: str) -> Check:
    def check(value: Any, key: str) -> str:
        if not isinstance(value, str) or not value:
            raise E(f"Invalid input for {key}: a {noun} id is required.")
        return value
    return check


def strings(reason: str, *, none: Any = ...) -> Check:
    """A list (of strings: anything else is its string); ``none``: what null stands for, if allowed."""
    def check(value: Any, key: str) -> Any:
        if value is None and none is not ...:
            return none
        return [str(v) for v in list_of(value, key, reason)]
    return check


def list_of(value: Any, key: str, reason: str) -> list[Any]:
    if not isinstance(value, list):
        raise E(f"Invalid input for {key}. Reason: {reason}")
    return value


def routes(value: Any, key: str) -> list[dict[str, str]]:
    """[{destination, nexthop}, ...] (the addresses are the service's to read)."""
    items = list_of(value, key, "a list of {destination, nexthop}.")
    for item in items:
        if not isinstance(item, dict) or set(item) != {"destination", "nexthop"}:
            raise E(f"Invalid input for {key}. Reason: {item!r} needs destination and nexthop.")
    return [dict(item) for item in items]


def pools(value: Any, key: str) -> list[dict[str, str]] | None:
    """allocation_pools; null or []: the default pools (the addresses are the service's to read)."""
    if value is None:
        return None
    items = list_of(value, key, "a list of {start, end} is expected.")
    for item in items:
        if not isinstance(item, dict) or set(item) != {"start", "end"}:
            raise E(f"Invalid input for {key}. Reason: {item!r} needs exactly start and end.")
    return [dict(item) for item in items]


def address_pairs(value: Any, key: str) -> list[dict[str, str]]:
    """allowed_address_pairs; null: none."""
    items = list_of(value or [], key, "a list is expected.")
    for item in items:
        if not isinstance(item, dict) or "ip_address" not in item or not set(item) <= {"ip_address", "mac_address"}:
            raise E(f"Invalid input for {key}. Reason: {item!r} needs ip_address.")
    return [{"ip_address": str(item["ip_address"]), **({"mac_address": str(item["mac_address"])}
                                                       if item.get("mac_address") else {})} for item in items]


def fixed_ips(value: Any, key: str = "fixed_ips") -> list[FixedIP]:
    """Neutron's fixed_ips: [{subnet_id?, ip_address?}, ...] (each with one of them at least)."""
    if not isinstance(value, list):
        raise E(f"Invalid input for {key}. Reason: a list of {{subnet_id, ip_address}}.")
    result: list[FixedIP] = []
    for item in value:
        if not isinstance(item, dict) or not set(item) <= {"subnet_id", "ip_address"} or not item:
            raise E(f"Invalid input for {key}. Reason: {item!r} is not a valid fixed IP.")
        entry: FixedIP = {}
        if item.get("subnet_id"):
            entry["subnet_id"] = str(item["subnet_id"])
        if item.get("ip_address") not in (None, ""):
            entry["ip_address"] = str(item["ip_address"])
        if not entry:
            raise E(f"Invalid input for {key}. Reason: {item!r} is not a valid fixed IP.")
        result.append(entry)
    return result


def gateway(value: Any, key: str = "external_gateway_info") -> Gateway | None:
    """A router's external_gateway_info; None (null, {} or no network_id) clears the gateway."""
    if value is not None and not isinstance(value, dict):
        raise E(f"Invalid input for {key}. Reason: a dict is expected.")
    if not value or not value.get("network_id"):
        return None
    unknown = set(value) - {"network_id", "enable_snat", "external_fixed_ips"}
    if unknown:
        raise E(f"Invalid input for {key}. Reason: unknown keys {sorted(unknown)}.")
    if not isinstance(value["network_id"], str):
        raise E(f"Invalid input for {key}: network_id is required.")
    return Gateway(network_id=value["network_id"],
                   enable_snat=boolean(value["enable_snat"], "enable_snat") if "enable_snat" in value else None,
                   fixed_ips=fixed_ips(value["external_fixed_ips"]) if value.get("external_fixed_ips") else None)


def one_of(*choices: str, default: str | None = None) -> Check:
    def check(value: Any, key: str) -> str:
        value = value or default
        if value not in choices:
            raise E(f"Invalid input for {key}. Reason: {value} is not in [{', '.join(choices)}].")
        return str(value)
    return check


def scalar_or_none(value: Any, key: str) -> str | None:
    """A protocol, remote prefix or group that clients send as a string or a number; "" and null: none."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise E(f"Invalid input for {key}. Reason: '{value}' is not a valid value.")
    return str(value)


def port_bound(value: Any, key: str) -> int | None:  # noqa: ARG001 - a Check
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise E(f"Invalid value for port {value}.") from None
    if isinstance(value, bool) or not 0 <= number <= 65535:
        raise E(f"Invalid value for port {value}.")
    return number


def profile(value: Any, key: str) -> dict[str, Any]:
    return validators.obj(value or {}, field=key, error=E)


def uuid_or_none(value: Any, key: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise E(f"Invalid input for {key}. Reason: '{value}' is not a valid UUID.")
    return value


# ---- bodies --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Op:
    """One operation's body: Neutron attribute -> (the service's argument, its checker)."""

    fields: dict[str, tuple[str, Check]]
    unsupported: tuple[str, ...] = ()   # extension attributes accepted only when empty
    owner: bool = False                 # project_id/tenant_id name the owner (creates)
    required: tuple[str, ...] = ()      # checked (as null) when absent
    read_only: str = "Cannot update read-only attribute {}."


def _refuse_unsupported(body: dict[str, Any], keys: tuple[str, ...]) -> None:
    for key in keys:
        if body.get(key) not in (None, [], {}, "", False):
            raise E(f"Attribute '{key}' is not supported by this cloud (its extension is not enabled).")


def owner(body: dict[str, Any]) -> str | None:
    project_id = body.get("project_id") or body.get("tenant_id")
    if project_id in (None, ""):
        return None
    if not isinstance(project_id, str):
        raise E(f"Invalid input for project_id. Reason: '{project_id}' is not a string.")
    return project_id


def parse_create(body: dict[str, Any], op: Op) -> dict[str, Any]:
    """The keyword arguments of a create service; unknown attributes are refused all at once."""
    allowed = set(op.fields) | set(op.unsupported) | ({"project_id", "tenant_id"} if op.owner else set())
    unknown = set(body) - allowed
    if unknown:
        raise E(f"Unrecognized attribute(s) '{', '.join(sorted(unknown))}'")
    _refuse_unsupported(body, op.unsupported)
    kwargs = {arg: check(body.get(key), key) for key, (arg, check) in op.fields.items()
              if key in body or key in op.required}
    if op.owner:
        kwargs["project_id"] = owner(body)
    return kwargs


def parse_update(body: dict[str, Any], op: Op) -> dict[str, Any]:
    """The ``changes`` of an update service, in the body's order."""
    _refuse_unsupported(body, op.unsupported)
    changes: dict[str, Any] = {}
    for key, value in body.items():
        if key in op.unsupported:
            continue
        if key not in op.fields:
            raise E(op.read_only.format(key))
        arg, check = op.fields[key]
        changes[arg] = check(value, key)
    return changes


def _same(*keys: str, check: Check) -> dict[str, tuple[str, Check]]:
    return {key: (key, check) for key in keys}


NAMES = _same("name", "description", check=text)
CREATE_NAMES = {**NAMES, "tags": ("tags", tags_or_empty)}
UPDATE_NAMES = {**NAMES, "tags": ("tags", tags)}

NETWORK_FLAGS = {**_same("admin_state_up", "shared", "port_security_enabled", check=boolean),
                 "router:external": ("external", boolean)}
NETWORK_CREATE = Op({**CREATE_NAMES, **NETWORK_FLAGS, "mtu": ("mtu", integer_or_none),
                     "provider:network_type": ("network_type", text_or_none),
                     "provider:physical_network": ("physical_network", lambda v, k: None if v is None else
                                                   validators.text(v, field=k, max_length=64, error=E)),
                     "provider:segmentation_id": ("segmentation_id", ranged(1, 2**24 - 1, none=True))},
                    unsupported=("availability_zone_hints", "dns_domain", "qos_policy_id", "is_default"), owner=True)
NETWORK_UPDATE = Op({**UPDATE_NAMES, **NETWORK_FLAGS, "mtu": ("mtu", integer)}, unsupported=UNSUPPORTED_EMPTY_OK)

DNS_REASON = "a list of IP addresses is expected."
SUBNET_CREATE = Op({**CREATE_NAMES, "network_id": ("network_id", required_id("network")),
                    "cidr": ("cidr", text_or_none), "ip_version": ("ip_version", integer_or_none),
                    "gateway_ip": ("gateway_ip", text_or_none), "allocation_pools": ("allocation_pools", pools),
                    "dns_nameservers": ("dns_nameservers", strings(DNS_REASON, none=[])),
                    "host_routes": ("host_routes", lambda v, k: routes(v or [], k)),
                    "enable_dhcp": ("enable_dhcp", boolean),
                    **_same("ipv6_ra_mode", "ipv6_address_mode", "subnetpool_id", check=text_or_none),
                    "prefixlen": ("prefixlen", ranged(0, 128, none=True)),
                    "use_default_subnetpool": ("use_default_subnetpool", boolean)},
                   unsupported=("service_types", "segment_id", "dns_publish_fixed_ip"), owner=True,
                   required=("network_id",))
SUBNET_UPDATE = Op({**UPDATE_NAMES, "gateway_ip": ("gateway_ip", text_or_none),
                    "allocation_pools": ("allocation_pools", pools),
                    "dns_nameservers": ("dns_nameservers", strings(DNS_REASON)), "host_routes": ("host_routes", routes),
                    "enable_dhcp": ("enable_dhcp", boolean)}, unsupported=UNSUPPORTED_EMPTY_OK)

PREFIXES = strings("a non-empty list of CIDRs is required.")
PREFIXLENS = ("default_prefixlen", "min_prefixlen", "max_prefixlen")
SUBNETPOOL_CREATE = Op({**CREATE_NAMES, "prefixes": ("prefixes", PREFIXES),
                        **_same(*PREFIXLENS, check=ranged(0, 128, none=True)), "shared": ("shared", boolean),
                        "default_quota": ("default_quota", ranged(0, none=True))},
                       unsupported=("is_default", "address_scope_id"), owner=True)
SUBNETPOOL_UPDATE = Op({**UPDATE_NAMES, "prefixes": ("prefixes", PREFIXES), **_same(*PREFIXLENS, check=ranged(0, 128)),
                        "is_default": ("is_default", boolean),
                        "default_quota": ("default_quota", ranged(0, none=True))})

PORT_FIELDS = {**_same("name", "description", "device_id", "device_owner", "dns_name", check=text_or_empty),
               "mac_address": ("mac_address", text_or_none), "admin_state_up": ("admin_state_up", boolean),
               "port_security_enabled": ("port_security_enabled", boolean),
               "allowed_address_pairs": ("allowed_address_pairs", address_pairs),
               "binding:host_id": ("binding_host_id", text_or_empty),
               "binding:profile": ("binding_profile", profile), "binding:vnic_type": ("binding_vnic_type", text)}
GROUPS_REASON = "a list of security group ids."
UNSUPPORTED_PORT = tuple(k for k in UNSUPPORTED_EMPTY_OK if k != "dns_name")
PORT_CREATE = Op({**PORT_FIELDS, "network_id": ("network_id", required_id("network")),
                  "tags": ("tags", tags_or_empty), "security_groups": ("security_groups", strings(GROUPS_REASON,
                                                                                                  none=None)),
                  "fixed_ips": ("fixed_ips", lambda v, k: None if v is None else fixed_ips(v, k))},
                 unsupported=UNSUPPORTED_PORT, owner=True, required=("network_id",))
PORT_UPDATE = Op({**PORT_FIELDS, "tags": ("tags", tags),
                  "security_groups": ("security_groups", strings(GROUPS_REASON, none=[])),
                  "fixed_ips": ("fixed_ips", lambda v, k: fixed_ips(v or [], k))},
                 unsupported=UNSUPPORTED_PORT)

ROUTER_CREATE = Op({**CREATE_NAMES, "admin_state_up": ("admin_state_up", boolean),
                    "external_gateway_info": ("external_gateway_info", gateway)},
                   unsupported=("availability_zone_hints", "distributed", "ha", "flavor_id"), owner=True)
ROUTER_UPDATE = Op({**UPDATE_NAMES, "admin_state_up": ("admin_state_up", boolean),
                    "external_gateway_info": ("external_gateway_info", gateway),
                    "routes": ("routes", lambda v, k: routes(v or [], k))}, unsupported=UNSUPPORTED_EMPTY_OK)

FIP_FIELDS = {"description": ("description", text), "port_id": ("port_id", uuid_or_none),
              "fixed_ip_address": ("fixed_ip_address", text_or_none)}
FIP_CREATE = Op({**FIP_FIELDS, "tags": ("tags", tags_or_empty),
                 "floating_network_id": ("floating_network_id", required_id("network")),
                 "floating_ip_address": ("floating_ip_address", text_or_none),
                 "subnet_id": ("subnet_id", text_or_none)},
                unsupported=("qos_policy_id", "dns_name", "dns_domain"), owner=True, required=("floating_network_id",))
FIP_UPDATE = Op({**FIP_FIELDS, "tags": ("tags", tags)})

SG_CREATE = Op({**CREATE_NAMES, "stateful": ("stateful", boolean)}, owner=True)
SG_UPDATE = Op({**UPDATE_NAMES, "stateful": ("stateful", boolean)})

RULE_CREATE = Op({"security_group_id": ("security_group_id", required_id("security group")),
                  "direction": ("direction", one_of("ingress", "egress")),
                  "ethertype": ("ethertype", one_of("IPv4", "IPv6", default="IPv4")),
                  **_same("port_range_min", "port_range_max", check=port_bound),
                  **_same("protocol", "remote_ip_prefix", "remote_group_id", check=scalar_or_none),
                  "description": ("description", text)},
                 unsupported=("remote_address_group_id",), owner=True, required=("security_group_id", "direction"))

AGENT_UPDATE = Op({"admin_state_up": ("admin_state_up", boolean), "description": ("description", text)})


def rule_create(body: dict[str, Any]) -> dict[str, Any]:
    if body.get("remote_address_group_id"):
        raise E("Address groups are not supported.")
    return parse_create(body, RULE_CREATE)


def port_update(body: dict[str, Any]) -> dict[str, Any]:
    unknown = set(body) - set(PORT_UPDATE.fields) - set(UNSUPPORTED_PORT)
    if unknown:
        raise E(f"Cannot update read-only attribute(s) {', '.join(sorted(unknown))}")
    return parse_update(body, PORT_UPDATE)


def router_interface(body: dict[str, Any]) -> dict[str, str | None]:
    return {key: text_or_none(body.get(key), key) for key in ("subnet_id", "port_id")}


def quota_limits(body: dict[str, Any]) -> dict[str, int]:
    """Neutron's quota body (which resources are Neutron's is the service's to say)."""
    limits = {}
    for resource, value in body.items():
        if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).lstrip("-").isdigit():
            raise BadRequest(f"Quota limit {value!r} for {resource} must be an integer.")
        limits[resource] = int(value)
    return limits
