"""OS::Neutron::Net and OS::Neutron::Subnet over apps/networks' services (never its tables): each
phase calls ``network_create``/``subnet_create``/``..._delete`` as the stack's owner (``context.actor``),
so the network app's own validation, policy, quotas and IPAM apply. A delete of what is already gone
succeeds."""
from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any, TypeVar

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

T = TypeVar("T")


def _failed(exc: Exception) -> ResourceFailed:
    return ResourceFailed(f"{type(exc).__name__}: {getattr(exc, 'message', None) or exc}")


def _selectors() -> Any:
    from apps.networks import selectors

    return selectors


def _call(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``func`` (a networks service or selector); its error as the resource's failure."""
    from apps.core.errors import StratusError

    try:
        return func(*args, **kwargs)
    except StratusError as exc:
        raise _failed(exc) from None


def _in_use(exc: Exception) -> bool:
    """The network app's 409 "in use" answers: what a delete waits out (Heat retries them), e.g. a subnet
    whose router interface or a group whose port goes in the same stack walk, or one held outside it."""
    from apps.networks import errors

    return isinstance(exc, errors.NetworkInUse | errors.SubnetInUse | errors.PortInUse | errors.RouterInUse
                      | errors.RouterInterfaceInUseByFloatingIP | errors.SecurityGroupInUse)


def _by_name_or_id(actor: Any, ref: str, *, get: str, listing: str, key: str, noun: str) -> str:
    """The id of the network/subnet/router ``ref`` names (an id, else a unique name the owner sees):
    another project's answers the network app's 404."""
    from apps.core.errors import BadRequest, NotFound

    selectors = _selectors()
    try:
        return getattr(selectors, get)(actor=actor, **{key: ref}).id
    except NotFound as not_found:
        query = selectors.ListQuery(filters={"name": [ref]})
        found = list(getattr(selectors, listing)(actor=actor, query=query).values_list("id", flat=True)[:2])
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise BadRequest(f"Multiple {noun} matches found for name '{ref}', use an ID to be more "
                             "specific.") from None
        raise not_found from None


def _network_id(actor: Any, ref: str) -> str:
    return _by_name_or_id(actor, ref, get="network_get", listing="network_list", key="network_id", noun="network")


def _subnet_id(actor: Any, ref: str) -> str:
    return _by_name_or_id(actor, ref, get="subnet_get", listing="subnet_list", key="subnet_id", noun="subnet")


def _router_id(actor: Any, ref: str) -> str:
    return _by_name_or_id(actor, ref, get="router_get", listing="router_list", key="router_id", noun="router")


def _group_ids(actor: Any, refs: list[str]) -> list[str]:
    return [_selectors().security_group_by_name_or_id(actor=actor, ref=ref).id for ref in refs]


class NeutronPlugin(Plugin):
    """What every resource over the networks app shares: a delete tolerant of what is gone that waits
    out "in use" (409) answers until the stack's deadline, a check and a refresh that read the resource
    again through the networks selectors (another project's is not found), the ``show`` attribute."""

    needs_actor = True

    def remove(self, physical_id: str) -> None:
        raise NotImplementedError

    def read(self, physical_id: str) -> Any:
        raise NotImplementedError

    def show(self, row: Any) -> dict[str, Any]:  # noqa: ARG002 - the interface
        return {}

    def _attributes(self, row: Any) -> dict[str, Any]:  # noqa: ARG002 - the interface
        return {}

    def attributes_of(self, row: Any) -> dict[str, Any]:
        """What get_attr reads: the type's attributes and ``show`` (the networks API's body)."""
        return {**self._attributes(row), "show": self.show(row)}

    def delete(self, physical_id: str, data: dict[str, Any]) -> bool:  # noqa: ARG002 - the interface
        from apps.core.errors import NotFound, StratusError

        if not physical_id:
            return True
        try:
            self.remove(physical_id)
        except NotFound:
            return True  # already gone
        except StratusError as exc:
            if _in_use(exc):
                return False  # checked again (the worker's countdown) until free or the stack times out
            raise _failed(exc) from None
        return True

    def check_delete_complete(self, physical_id: str, data: dict[str, Any]) -> bool:
        return self.delete(physical_id, data)

    def check_resource(self, physical_id: str, data: dict[str, Any]) -> None:  # noqa: ARG002
        _call(self.read, physical_id)

    def refreshed_attributes(self, physical_id: str, data: dict[str, Any]) -> dict[str, Any] | None:  # noqa: ARG002
        from apps.core.errors import NotFound

        if not physical_id:
            return None
        try:
            row = self.read(physical_id)
        except NotFound:
            return None
        return self.attributes_of(row)


@register
class Net(NeutronPlugin):
    type_name = "OS::Neutron::Net"
    description = "A resource for managing Neutron net."
    needs_actor = True
    properties_schema = {
        "name": Prop(STRING, "A string specifying a symbolic name for the network.", update_allowed=True),
        "admin_state_up": Prop(BOOLEAN, "A boolean value specifying the administrative status of the network.",
                               default=True, update_allowed=True),
        "shared": Prop(BOOLEAN, "Whether this network should be shared across all tenants (admins only).",
                       default=False, update_allowed=True),
        "port_security_enabled": Prop(BOOLEAN, "Flag to enable/disable port security on the network.",
                                      update_allowed=True),
        "tags": Prop(LIST, "The tags to be added to the network.", update_allowed=True,
                     schema={"*": Prop(STRING)}),
        "value_specs": Prop(MAP, "Extra parameters to include in the request (ignored).", default={},
                            update_allowed=True),
    }
    attributes_schema = {
        "name": Attr("Friendly name of the network."), "status": Attr("The status of the network."),
        "subnets": Attr("Subnets of this network.", LIST), "admin_state_up": Attr("The administrative status.",
                                                                                   BOOLEAN),
        "tenant_id": Attr("The tenant owning this network."), "mtu": Attr("The maximum transmission unit size "
                                                                          "(in bytes) for the network.", INTEGER),
        "port_security_enabled": Attr("Port security enabled of the network.", BOOLEAN),
    }

    def create(self, props: dict[str, Any]) -> Outcome:
        from apps.core.errors import StratusError
        from apps.networks import services

        try:
            net = services.network_create(
                actor=self.context.actor, name=props.get("name") or self.context.physical_name(),
                admin_state_up=props["admin_state_up"], shared=bool(props.get("shared")),
                port_security_enabled=True if props.get("port_security_enabled") is None
                else props["port_security_enabled"], tags=props.get("tags") or None)
        except StratusError as exc:
            raise _failed(exc) from None
        return Outcome(physical_id=net.id, attributes=self.attributes_of(net))


    def remove(self, physical_id: str) -> None:
        from apps.networks import services

        services.network_delete(actor=self.context.actor, network_id=physical_id)

    def update(self, physical_id: str, data: dict[str, Any], old: dict[str, Any], new: dict[str, Any]) -> Outcome:
        from apps.networks import services

        changes: dict[str, Any] = {}
        for key in ("name", "admin_state_up", "shared", "port_security_enabled", "tags"):
            if old.get(key) != new.get(key) and (new.get(key) is not None or key == "tags"):
                changes[key] = new[key] if key != "tags" else list(new.get(key) or [])
        net = _call(services.network_update, actor=self.context.actor, network_id=physical_id, changes=changes) \
            if changes else _call(_selectors().network_get, actor=self.context.actor, network_id=physical_id)
        return Outcome(physical_id=physical_id, attributes=self.attributes_of(net), data=data)

    def _attributes(self, net: Any) -> dict[str, Any]:
        return {"name": net.name, "status": net.status, "subnets": [s.id for s in net.subnets.all()],
                "admin_state_up": net.admin_state_up, "tenant_id": net.project_id, "mtu": net.mtu,
                "port_security_enabled": net.port_security_enabled}

    def read(self, physical_id: str) -> Any:
        return _selectors().network_get(actor=self.context.actor, network_id=physical_id)

    def show(self, row: Any) -> dict[str, Any]:
        from apps.networks.api.serializers import network_out

        return network_out(row, self.context.actor)


@register
class Subnet(NeutronPlugin):
    type_name = "OS::Neutron::Subnet"
    description = "A resource for managing Neutron subnets."
    needs_actor = True
    properties_schema = {
        "network": Prop(STRING, "The ID of the attached network.", required=True),
        "cidr": Prop(STRING, "The CIDR."),
        "ip_version": Prop(INTEGER, "The IP version, which is 4 or 6.", default=4, allowed_values=(4, 6)),
        "name": Prop(STRING, "The name of the subnet.", update_allowed=True),
        "gateway_ip": Prop(STRING, "The gateway IP address (\"\" or \"~\": no gateway).", update_allowed=True),
        "enable_dhcp": Prop(BOOLEAN, "Set to true if DHCP is enabled and false if DHCP is disabled.", default=True,
                            update_allowed=True),
        "dns_nameservers": Prop(LIST, "A specified set of DNS name servers to be used.", default=[],
                                update_allowed=True, schema={"*": Prop(STRING)}),
        "allocation_pools": Prop(LIST, "The start and end addresses for the allocation pools.",
                                 update_allowed=True, schema={"*": Prop(MAP, schema={
                                     "start": Prop(STRING, "Start address for the allocation pool.", required=True),
                                     "end": Prop(STRING, "End address for the allocation pool.", required=True)})}),
        "host_routes": Prop(LIST, "A list of host route dictionaries for the subnet.", update_allowed=True,
                            schema={"*": Prop(MAP, schema={
                                "destination": Prop(STRING, "The destination for static route.", required=True),
                                "nexthop": Prop(STRING, "The next hop for the destination.", required=True)})}),
        "ipv6_ra_mode": Prop(STRING, "IPv6 RA (Router Advertisement) mode.",
                             allowed_values=("dhcpv6-stateful", "dhcpv6-stateless", "slaac")),
        "ipv6_address_mode": Prop(STRING, "IPv6 address mode.",
                                  allowed_values=("dhcpv6-stateful", "dhcpv6-stateless", "slaac")),
        "prefixlen": Prop(INTEGER, "Prefix length for subnet allocation from subnet pool.", min=0),
        "subnetpool": Prop(STRING, "The name or ID of the subnet pool."),
        "tags": Prop(LIST, "The tags to be added to the subnet.", update_allowed=True, schema={"*": Prop(STRING)}),
        "value_specs": Prop(MAP, "Extra parameters to include in the request (ignored).", default={},
                            update_allowed=True),
    }
    attributes_schema = {name: Attr(f"The subnet's {name}.") for name in (
        "name", "network_id", "tenant_id", "gateway_ip", "cidr", "ip_version")} | {
        "allocation_pools": Attr("Ip allocation pools and their ranges.", LIST),
        "host_routes": Attr("Additional routes for this subnet.", LIST),
        "dns_nameservers": Attr("List of dns nameservers.", LIST),
        "enable_dhcp": Attr("'true' if DHCP is enabled for this subnet; 'false' otherwise.", BOOLEAN)}

    def create(self, props: dict[str, Any]) -> Outcome:
        from apps.core.errors import StratusError
        from apps.core.validators import UNSET
        from apps.networks import services

        gateway = props.get("gateway_ip")
        extra: dict[str, Any] = {}
        if gateway is not None:
            extra["gateway_ip"] = None if gateway in ("", "~") else gateway
        try:
            subnet = services.subnet_create(
                actor=self.context.actor, network_id=_network_id(self.context.actor, props["network"]),
                cidr=props.get("cidr"),
                ip_version=props.get("ip_version"), name=props.get("name") or self.context.physical_name(),
                allocation_pools=props.get("allocation_pools"), dns_nameservers=props.get("dns_nameservers") or None,
                host_routes=props.get("host_routes"), enable_dhcp=props["enable_dhcp"],
                ipv6_ra_mode=props.get("ipv6_ra_mode"), ipv6_address_mode=props.get("ipv6_address_mode"),
                subnetpool_id=props.get("subnetpool"), prefixlen=props.get("prefixlen"),
                tags=props.get("tags") or None, **({"gateway_ip": UNSET} | extra))
        except StratusError as exc:
            raise _failed(exc) from None
        return Outcome(physical_id=subnet.id, attributes=self.attributes_of(subnet))

    def remove(self, physical_id: str) -> None:
        from apps.networks import services

        services.subnet_delete(actor=self.context.actor, subnet_id=physical_id)

    def update(self, physical_id: str, data: dict[str, Any], old: dict[str, Any], new: dict[str, Any]) -> Outcome:
        from apps.networks import services

        changes: dict[str, Any] = {}
        for key in ("name", "enable_dhcp", "dns_nameservers", "allocation_pools", "host_routes", "tags"):
            if old.get(key) != new.get(key) and (new.get(key) is not None or key in ("tags", "host_routes")):
                changes[key] = new.get(key) if new.get(key) is not None else []
        if old.get("gateway_ip") != new.get("gateway_ip"):
            gateway = new.get("gateway_ip")
            changes["gateway_ip"] = None if gateway in ("", "~", None) else gateway
        subnet = _call(services.subnet_update, actor=self.context.actor, subnet_id=physical_id, changes=changes) \
            if changes else _call(self.read, physical_id)
        return Outcome(physical_id=physical_id, attributes=self.attributes_of(subnet), data=data)

    def _attributes(self, subnet: Any) -> dict[str, Any]:
        return {"name": subnet.name, "network_id": subnet.network_id, "tenant_id": subnet.project_id,
                "gateway_ip": subnet.gateway_ip, "cidr": subnet.cidr, "ip_version": subnet.ip_version,
                "allocation_pools": subnet.allocation_pools, "host_routes": subnet.host_routes,
                "dns_nameservers": subnet.dns_nameservers, "enable_dhcp": subnet.enable_dhcp}

    def read(self, physical_id: str) -> Any:
        return _selectors().subnet_get(actor=self.context.actor, subnet_id=physical_id)

    def show(self, row: Any) -> dict[str, Any]:
        from apps.networks.api.serializers import subnet_out

        return subnet_out(row, self.context.actor)


# ---- ports --------------------------------------------------------------------------------------

def _fixed_ips(actor: Any, given: list[dict[str, Any]] | None) -> list[dict[str, str]] | None:
    """Heat's ``fixed_ips`` (``subnet`` by name or id, or ``subnet_id``; ``ip_address``) as the network
    app's requests."""
    if given is None:
        return None
    out: list[dict[str, str]] = []
    for item in given:
        request: dict[str, str] = {}
        subnet = item.get("subnet") or item.get("subnet_id")
        if subnet:
            request["subnet_id"] = _subnet_id(actor, subnet)
        if item.get("ip_address"):
            request["ip_address"] = item["ip_address"]
        out.append(request)
    return out


PAIR = Prop(MAP, schema={"ip_address": Prop(STRING, "IP address to allow through this port.", required=True),
                         "mac_address": Prop(STRING, "MAC address to allow through this port.")})


@register
class Port(NeutronPlugin):
    type_name = "OS::Neutron::Port"
    description = "A resource for managing Neutron ports."
    properties_schema = {
        "network": Prop(STRING, "Network this port belongs to (name or ID).", required=True),
        "name": Prop(STRING, "A symbolic name for this port.", update_allowed=True),
        "fixed_ips": Prop(LIST, "Desired IPs for this port.", update_allowed=True, schema={"*": Prop(MAP, schema={
            "subnet": Prop(STRING, "Subnet in which to allocate the IP address for this port (name or ID)."),
            "subnet_id": Prop(STRING, "Subnet ID (use subnet)."),
            "ip_address": Prop(STRING, "IP address desired in the subnet for this port.")})}),
        "security_groups": Prop(LIST, "Security group IDs or names to associate with this port.",
                                update_allowed=True, schema={"*": Prop(STRING)}),
        "mac_address": Prop(STRING, "MAC address to give to this port.", update_allowed=True),
        "admin_state_up": Prop(BOOLEAN, "The administrative state of this port.", default=True,
                               update_allowed=True),
        "allowed_address_pairs": Prop(LIST, "Additional MAC/IP address pairs allowed to pass through the port.",
                                      update_allowed=True, schema={"*": PAIR}),
        "port_security_enabled": Prop(BOOLEAN, "Flag to enable/disable port security on the port.",
                                      update_allowed=True),
        "device_owner": Prop(STRING, "Name of the network owning the port.", update_allowed=True),
        "device_id": Prop(STRING, "Device ID of this port.", update_allowed=True),
        "binding:vnic_type": Prop(STRING, "The vnic type to be bound on the neutron port.", update_allowed=True,
                                  allowed_values=("normal", "direct", "macvtap", "direct-physical", "baremetal")),
        "tags": Prop(LIST, "The tags to be added to the port.", update_allowed=True, schema={"*": Prop(STRING)}),
        "value_specs": Prop(MAP, "Extra parameters to include in the request (ignored).", default={},
                            update_allowed=True),
    }
    attributes_schema = {
        "name": Attr("Friendly name of the port."), "network_id": Attr("Unique identifier for the network owning "
                                                                       "the port."),
        "mac_address": Attr("MAC address of the port."), "status": Attr("The status of the port."),
        "fixed_ips": Attr("Fixed IP addresses.", LIST), "admin_state_up": Attr("The administrative state.", BOOLEAN),
        "device_id": Attr("Unique identifier for the device."), "device_owner": Attr("Name of the network owning "
                                                                                     "the port."),
        "security_groups": Attr("A list of security groups for the port.", LIST),
        "allowed_address_pairs": Attr("Additional MAC/IP address pairs allowed to pass through a port.", LIST),
        "port_security_enabled": Attr("Port security enabled of the port.", BOOLEAN),
        "tenant_id": Attr("Tenant owning the port."), "subnets": Attr("Subnets of this network.", LIST),
    }

    def _changes(self, props: dict[str, Any], keys: Any) -> dict[str, Any]:
        actor = self.context.actor
        out: dict[str, Any] = {}
        for key in keys:
            value = props.get(key)
            if key == "fixed_ips":
                out["fixed_ips"] = _fixed_ips(actor, value) if value is not None else None
            elif key == "security_groups":
                out["security_groups"] = _group_ids(actor, value) if value is not None else None
            elif key == "binding:vnic_type":
                if value is not None:
                    out["binding_vnic_type"] = value
            elif key == "allowed_address_pairs":
                out[key] = [{k: v for k, v in pair.items() if v is not None} for pair in value or []]
            elif key == "tags":
                out[key] = list(value or [])
            elif value is not None:
                out[key] = value
        return out

    def create(self, props: dict[str, Any]) -> Outcome:
        from apps.networks import services

        keys = ("name", "fixed_ips", "security_groups", "mac_address", "admin_state_up", "allowed_address_pairs",
                "port_security_enabled", "device_owner", "device_id", "binding:vnic_type", "tags")

        def make() -> Any:
            actor = self.context.actor
            attributes = self._changes(props, keys)
            attributes.setdefault("name", self.context.physical_name())
            for key in ("fixed_ips", "security_groups"):
                if attributes.get(key) is None:
                    attributes.pop(key, None)  # the network app's defaults
            return services.port_create(actor=actor, network_id=_network_id(actor, props["network"]), **attributes)

        port = _call(make)
        return Outcome(physical_id=port.id, attributes=self.attributes_of(port))

    def update(self, physical_id: str, data: dict[str, Any], old: dict[str, Any], new: dict[str, Any]) -> Outcome:
        from apps.networks import services

        changed = [k for k in self.properties_schema if k not in ("network", "value_specs")
                   and old.get(k) != new.get(k)]
        changes = self._changes(new, changed)
        if "fixed_ips" in changes and changes["fixed_ips"] is None:
            changes["fixed_ips"] = [{"subnet_id": a.subnet_id} for a in _call(self.read, physical_id).fixed_ips.all()]
        if "security_groups" in changes and changes["security_groups"] is None:
            changes["security_groups"] = _group_ids(self.context.actor, ["default"])
        if "name" in changed and new.get("name") is None:
            changes["name"] = self.context.physical_name()
        port = _call(lambda: services.port_update(actor=self.context.actor, port_id=physical_id, changes=changes)) \
            if changes else _call(self.read, physical_id)
        return Outcome(physical_id=physical_id, attributes=self.attributes_of(port), data=data)

    def _attributes(self, port: Any) -> dict[str, Any]:
        fixed = [{"subnet_id": a.subnet_id, "ip_address": a.ip_address} for a in port.fixed_ips.all()]
        return {"name": port.name, "network_id": port.network_id, "mac_address": port.mac_address,
                "status": port.status, "fixed_ips": fixed, "admin_state_up": port.admin_state_up,
                "device_id": port.device_id, "device_owner": port.device_owner,
                "security_groups": [g.id for g in port.security_groups.all()],
                "allowed_address_pairs": list(port.allowed_address_pairs),
                "port_security_enabled": port.port_security_enabled, "tenant_id": port.project_id,
                "subnets": sorted({f["subnet_id"] for f in fixed})}

    def read(self, physical_id: str) -> Any:
        return _selectors().port_get(actor=self.context.actor, port_id=physical_id)

    def show(self, row: Any) -> dict[str, Any]:
        from apps.networks.api.serializers import port_out

        return port_out(row, self.context.actor)

    def remove(self, physical_id: str) -> None:
        from apps.networks import services

        services.port_delete(actor=self.context.actor, port_id=physical_id)


# ---- routers ------------------------------------------------------------------------------------

GATEWAY = Prop(MAP, "External network gateway configuration for a router.", update_allowed=True, schema={
    "network": Prop(STRING, "ID or name of the external network for the gateway.", required=True),
    "enable_snat": Prop(BOOLEAN, "Enables Source NAT on the router gateway."),
    "external_fixed_ips": Prop(LIST, "External fixed IP addresses for the gateway (admins only).",
                               schema={"*": Prop(MAP, schema={
                                   "ip_address": Prop(STRING, "External fixed IP."),
                                   "subnet": Prop(STRING, "Subnet of external fixed IP.")})}),
})


@register
class Router(NeutronPlugin):
    type_name = "OS::Neutron::Router"
    description = "A resource that implements Neutron router."
    properties_schema = {
        "name": Prop(STRING, "The name of the router.", update_allowed=True),
        "external_gateway_info": GATEWAY,
        "admin_state_up": Prop(BOOLEAN, "The administrative state of the router.", default=True,
                               update_allowed=True),
        "tags": Prop(LIST, "The tags to be added to the router.", update_allowed=True, schema={"*": Prop(STRING)}),
        "value_specs": Prop(MAP, "Extra parameters to include in the request (ignored).", default={},
                            update_allowed=True),
    }
    attributes_schema = {
        "name": Attr("Friendly name of the router."), "status": Attr("The status of the router."),
        "external_gateway_info": Attr("Gateway network for the router.", MAP),
        "admin_state_up": Attr("Administrative state of the router.", BOOLEAN),
        "tenant_id": Attr("Tenant owning the router."),
    }

    def _gateway(self, info: dict[str, Any] | None) -> Any:
        from apps.networks import services

        if not info:
            return None
        actor = self.context.actor
        fixed = None
        if info.get("external_fixed_ips"):
            fixed = _fixed_ips(actor, info["external_fixed_ips"])
        return services.Gateway(network_id=_network_id(actor, info["network"]), enable_snat=info.get("enable_snat"),
                                fixed_ips=fixed)  # type: ignore[arg-type]

    def create(self, props: dict[str, Any]) -> Outcome:
        from apps.networks import services

        def make() -> Any:
            router = services.router_create(actor=self.context.actor, name=props.get("name") or
                                            self.context.physical_name(), admin_state_up=props["admin_state_up"],
                                            external_gateway_info=self._gateway(props.get("external_gateway_info")),
                                            tags=props.get("tags") or None)
            return self.read(router.id)

        router = _call(make)
        return Outcome(physical_id=router.id, attributes=self.attributes_of(router))

    def update(self, physical_id: str, data: dict[str, Any], old: dict[str, Any], new: dict[str, Any]) -> Outcome:
        from apps.networks import services

        changes: dict[str, Any] = {}
        if old.get("name") != new.get("name"):
            changes["name"] = new.get("name") or self.context.physical_name()
        if old.get("admin_state_up") != new.get("admin_state_up"):
            changes["admin_state_up"] = new["admin_state_up"]
        if old.get("tags") != new.get("tags"):
            changes["tags"] = list(new.get("tags") or [])

        def change() -> Any:
            if old.get("external_gateway_info") != new.get("external_gateway_info"):
                changes["external_gateway_info"] = self._gateway(new.get("external_gateway_info"))
            if changes:
                services.router_update(actor=self.context.actor, router_id=physical_id, changes=changes)
            return self.read(physical_id)

        return Outcome(physical_id=physical_id, attributes=self.attributes_of(_call(change)), data=data)

    def _attributes(self, router: Any) -> dict[str, Any]:
        from apps.networks.api.serializers import gateway_info

        return {"name": router.name, "status": router.status, "external_gateway_info": gateway_info(router),
                "admin_state_up": router.admin_state_up, "tenant_id": router.project_id}

    def read(self, physical_id: str) -> Any:
        return _selectors().router_get(actor=self.context.actor, router_id=physical_id)

    def show(self, row: Any) -> dict[str, Any]:
        from apps.networks.api.serializers import router_out

        return router_out(row, self.context.actor)

    def remove(self, physical_id: str) -> None:
        from apps.networks import services

        services.router_delete(actor=self.context.actor, router_id=physical_id)


@register
class RouterInterface(NeutronPlugin):
    type_name = "OS::Neutron::RouterInterface"
    description = "A resource for managing Neutron router interfaces (a subnet or a port on a router)."
    properties_schema = {
        "router": Prop(STRING, "The router (name or ID).", required=True),
        "subnet": Prop(STRING, "The subnet (name or ID); either subnet or port should be specified."),
        "port": Prop(STRING, "The port ID; either subnet or port should be specified."),
    }

    def create(self, props: dict[str, Any]) -> Outcome:
        from apps.networks import services

        if bool(props.get("subnet")) == bool(props.get("port")):
            raise ResourceFailed("StackValidationFailed: Exactly one of subnet or port must be given for "
                                 f"{self.type_name}.")
        actor = self.context.actor

        def add() -> str:
            router_id = _router_id(actor, props["router"])
            if props.get("subnet"):
                subnet_id = _subnet_id(actor, props["subnet"])
                services.router_interface_add(actor=actor, router_id=router_id, subnet_id=subnet_id)
                return f"{router_id}:subnet_id={subnet_id}"
            services.router_interface_add(actor=actor, router_id=router_id, port_id=props["port"])
            return f"{router_id}:port_id={props['port']}"

        return Outcome(physical_id=_call(add))

    @staticmethod
    def _parts(physical_id: str) -> tuple[str, str, str]:
        """Heat's ``<router>:subnet_id=<subnet>`` or ``<router>:port_id=<port>`` (the old ``<router>:<subnet>``)."""
        router_id, _, rest = physical_id.partition(":")
        key, eq, value = rest.partition("=")
        return (router_id, key, value) if eq else (router_id, "subnet_id", key)

    def remove(self, physical_id: str) -> None:
        from apps.networks import services

        router_id, key, value = self._parts(physical_id)
        services.router_interface_remove(actor=self.context.actor, router_id=router_id, **{key: value})

    def read(self, physical_id: str) -> Any:
        from apps.networks.errors import RouterInterfaceNotFound

        router_id, key, value = self._parts(physical_id)
        router = _selectors().router_get(actor=self.context.actor, router_id=router_id)
        ports = _selectors().router_interface_ports(router=router)
        found = ports.filter(pk=value) if key == "port_id" else ports.filter(fixed_ips__subnet_id=value)
        if not found.exists():
            raise RouterInterfaceNotFound(f"Router {router_id} has no interface {physical_id}")
        return router


# ---- floating IPs -------------------------------------------------------------------------------

@register
class FloatingIP(NeutronPlugin):
    type_name = "OS::Neutron::FloatingIP"
    description = "A resource for managing Neutron floating ips."
    properties_schema = {
        "floating_network": Prop(STRING, "Network to allocate floating IP from (name or ID).", required=True),
        "floating_subnet": Prop(STRING, "Subnet to allocate floating IP from."),
        "floating_ip_address": Prop(STRING, "IP address of the floating IP (admins only)."),
        "port_id": Prop(STRING, "ID of an existing port with at least one IP address to associate with this "
                                "floating IP.", update_allowed=True),
        "fixed_ip_address": Prop(STRING, "IP address to use if the port has multiple addresses.",
                                 update_allowed=True),
        "tags": Prop(LIST, "The tags to be added to the floating IP.", update_allowed=True,
                     schema={"*": Prop(STRING)}),
        "value_specs": Prop(MAP, "Extra parameters to include in the request (ignored).", default={},
                            update_allowed=True),
    }
    attributes_schema = {
        "floating_ip_address": Attr("The allocated address of this IP."),
        "floating_network_id": Attr("ID of the network in which this IP is allocated."),
        "port_id": Attr("ID of the port associated with this IP."),
        "fixed_ip_address": Attr("IP address of the associated port, if specified."),
        "router_id": Attr("ID of the router used as gateway, set when associated with a port."),
        "tenant_id": Attr("The tenant owning this floating IP."),
    }

    def create(self, props: dict[str, Any], data: dict[str, Any] | None = None) -> Outcome:
        from apps.networks import services

        data = {} if data is None else data

        def make() -> Any:
            actor = self.context.actor
            subnet = props.get("floating_subnet")
            return services.floatingip_create(
                actor=actor, floating_network_id=_network_id(actor, props["floating_network"]),
                subnet_id=_subnet_id(actor, subnet) if subnet else None,
                floating_ip_address=props.get("floating_ip_address"), port_id=props.get("port_id"),
                fixed_ip_address=props.get("fixed_ip_address"), tags=props.get("tags") or None)

        fip = gateway_wait(make, data)
        if fip is None:
            return Outcome(data=data, done=False, retry_after=1.0)
        return Outcome(physical_id=fip.id, attributes=self.attributes_of(fip))

    def check_create_complete(self, props: dict[str, Any], data: dict[str, Any]) -> Outcome:
        return self.create(props, data)

    def update(self, physical_id: str, data: dict[str, Any], old: dict[str, Any], new: dict[str, Any]) -> Outcome:
        from apps.networks import services

        changes: dict[str, Any] = {}
        if (old.get("port_id"), old.get("fixed_ip_address")) != (new.get("port_id"), new.get("fixed_ip_address")):
            changes.update(port_id=new.get("port_id"), fixed_ip_address=new.get("fixed_ip_address"))
        if old.get("tags") != new.get("tags"):
            changes["tags"] = list(new.get("tags") or [])
        fip = _call(lambda: services.floatingip_update(actor=self.context.actor, floatingip_id=physical_id,
                                                       changes=changes)) if changes else _call(self.read, physical_id)
        return Outcome(physical_id=physical_id, attributes=self.attributes_of(fip), data=data)

    def _attributes(self, fip: Any) -> dict[str, Any]:
        return {"floating_ip_address": fip.floating_ip_address, "floating_network_id": fip.floating_network_id,
                "port_id": fip.port_id, "fixed_ip_address": fip.fixed_ip_address, "router_id": fip.router_id,
                "tenant_id": fip.project_id}

    def read(self, physical_id: str) -> Any:
        return _selectors().floatingip_get(actor=self.context.actor, floatingip_id=physical_id)

    def show(self, row: Any) -> dict[str, Any]:
        from apps.networks.api.serializers import floatingip_out

        return floatingip_out(row, self.context.actor)

    def remove(self, physical_id: str) -> None:
        from apps.networks import services

        services.floatingip_delete(actor=self.context.actor, floatingip_id=physical_id)


GATEWAY_WAITS = 30  # phases (about a second apart) a floating IP waits for its port's router interface


def gateway_wait(make: Callable[[], T], data: dict[str, Any]) -> T | None:
    """``make()`` (a floating IP on a port), or None when the port's subnet is not yet reachable from
    the external network (a router interface of the same stack still being made: Heat orders these by an
    implicit dependency, here the create waits a bounded number of phases); ``data`` counts them."""
    from apps.core.errors import StratusError
    from apps.networks.errors import ExternalGatewayForFloatingIPNotFound

    try:
        return make()
    except ExternalGatewayForFloatingIPNotFound as exc:
        data["gateway_waits"] = data.get("gateway_waits", 0) + 1
        if data["gateway_waits"] > GATEWAY_WAITS:
            raise _failed(exc) from None
        return None
    except StratusError as exc:
        raise _failed(exc) from None


def associate(actor: Any, floatingip_id: str, port_id: str | None, fixed_ip_address: str | None = None) -> Any:
    """Point the floating IP at a port (None: let it go) through ``floatingip_update``."""
    from apps.networks import services

    return services.floatingip_update(actor=actor, floatingip_id=floatingip_id,
                                      changes={"port_id": port_id, "fixed_ip_address": fixed_ip_address})


def dissociate(actor: Any, floatingip_id: str, port_id: str) -> None:
    """Let the floating IP go from ``port_id`` (a delete of the association): nothing when it is gone or
    points elsewhere by now."""
    fip = _selectors().floatingip_get(actor=actor, floatingip_id=floatingip_id)
    if fip.port_id == port_id:
        associate(actor, floatingip_id, None)


class AssociationPlugin(NeutronPlugin):
    """A floating IP's association with a port, whose physical id is ``<floating IP id>:<port id>``
    (OS::Neutron::FloatingIPAssociation, AWS::EC2::EIPAssociation): removed by dissociating, read as the
    floating IP while it is still on that port."""

    def remove(self, physical_id: str) -> None:
        fip_id, _, port_id = physical_id.partition(":")
        dissociate(self.context.actor, fip_id, port_id)

    def read(self, physical_id: str) -> Any:
        from apps.networks.errors import FloatingIPNotFound

        fip_id, _, port_id = physical_id.partition(":")
        fip = _selectors().floatingip_get(actor=self.context.actor, floatingip_id=fip_id)
        if fip.port_id != port_id:
            raise FloatingIPNotFound(f"Floating IP {fip_id} is not associated with port {port_id}.")
        return fip


@register
class FloatingIPAssociation(AssociationPlugin):
    type_name = "OS::Neutron::FloatingIPAssociation"
    description = "A resource for associating floating ips and ports."
    properties_schema = {
        "floatingip_id": Prop(STRING, "ID of the floating IP to associate.", required=True, update_allowed=True),
        "port_id": Prop(STRING, "ID of an existing port with at least one IP address to associate with this "
                                "floating IP.", required=True, update_allowed=True),
        "fixed_ip_address": Prop(STRING, "IP address to use if the port has multiple addresses.",
                                 update_allowed=True),
    }

    def create(self, props: dict[str, Any], data: dict[str, Any] | None = None) -> Outcome:
        data = {} if data is None else data
        if gateway_wait(lambda: associate(self.context.actor, props["floatingip_id"], props["port_id"],
                                          props.get("fixed_ip_address")), data) is None:
            return Outcome(data=data, done=False, retry_after=1.0)
        return Outcome(physical_id=f"{props['floatingip_id']}:{props['port_id']}")

    def check_create_complete(self, props: dict[str, Any], data: dict[str, Any]) -> Outcome:
        return self.create(props, data)

    def update(self, physical_id: str, data: dict[str, Any], old: dict[str, Any],  # noqa: ARG002
               new: dict[str, Any]) -> Outcome:
        old_fip, _, old_port = physical_id.partition(":")

        def change() -> None:
            if new["floatingip_id"] != old_fip:
                dissociate(self.context.actor, old_fip, old_port)
            associate(self.context.actor, new["floatingip_id"], new["port_id"], new.get("fixed_ip_address"))

        _call(change)
        return Outcome(physical_id=f"{new['floatingip_id']}:{new['port_id']}", data=data)



# ---- security groups ----------------------------------------------------------------------------

RULE_SCHEMA = {
    "direction": Prop(STRING, "The direction in which the security group rule is applied.", default="ingress",
                      allowed_values=("ingress", "egress")),
    "ethertype": Prop(STRING, "Ethertype of the traffic.", default="IPv4", allowed_values=("IPv4", "IPv6")),
    "port_range_min": Prop(INTEGER, "The minimum port number in the range.", min=0, max=65535),
    "port_range_max": Prop(INTEGER, "The maximum port number in the range.", min=0, max=65535),
    "protocol": Prop(STRING, "The protocol that is matched by the security group rule."),
    "remote_mode": Prop(STRING, "Whether to specify a remote group or a remote IP prefix.",
                        default="remote_ip_prefix", allowed_values=("remote_ip_prefix", "remote_group_id")),
    "remote_group_id": Prop(STRING, "The remote group ID (this group itself when remote_mode is "
                                    "remote_group_id and none is given)."),
    "remote_ip_prefix": Prop(STRING, "The remote IP prefix (CIDR) to be associated with this rule."),
    "description": Prop(STRING, "Description of the security group rule."),
}

RuleKey = tuple[str, str, str | None, int | None, int | None, str | None, str | None]


def rule_key(actor: Any, group_id: str, rule: dict[str, Any]) -> RuleKey:
    """A rule as the network app keeps it, to compare the rules a template wants with those a group has:
    (direction, ethertype, protocol, port min, port max, remote prefix, remote group)."""
    remote_group = None
    prefix = rule.get("remote_ip_prefix")
    if rule.get("remote_mode") == "remote_group_id":
        ref = rule.get("remote_group_id")
        remote_group = group_id if not ref else _group_ids(actor, [ref])[0]
        prefix = None
    elif rule.get("remote_group_id"):  # an id given without the mode (AWS's source groups)
        remote_group = _group_ids(actor, [rule["remote_group_id"]])[0]
    if prefix:
        try:
            prefix = str(ipaddress.ip_network(prefix if "/" in prefix else f"{prefix}/{128 if ':' in prefix else 32}",
                                              strict=False))
        except ValueError:
            pass  # the network app refuses it, in its own words
    protocol = rule.get("protocol")
    protocol = None if protocol in (None, "", "any") else str(protocol).lower()
    return (rule.get("direction") or "ingress", rule.get("ethertype") or "IPv4", protocol,
            rule.get("port_range_min"), rule.get("port_range_max"), prefix or None, remote_group)


def _existing_key(rule: Any) -> RuleKey:
    return (rule.direction, rule.ethertype, rule.protocol, rule.port_range_min, rule.port_range_max,
            rule.remote_ip_prefix, rule.remote_group_id)


def wanted_rules(actor: Any, group_id: str, rules: list[dict[str, Any]]) -> list[RuleKey]:
    """The rules the group should have: those given, and (as Heat and Neutron do) egress to anywhere
    over IPv4 and IPv6 unless an egress rule is given."""
    wanted = [rule_key(actor, group_id, r) for r in rules]
    if not any(k[0] == "egress" for k in wanted):
        wanted += [("egress", eth, None, None, None, None, None) for eth in ("IPv4", "IPv6")]
    return list(dict.fromkeys(wanted))


def converge_rules(actor: Any, group_id: str, wanted: list[RuleKey]) -> None:
    """Make the group's rules ``wanted`` in place: the rules it has that are not wanted are deleted, the
    wanted ones it lacks created (a rule the network app refuses fails the resource)."""
    from apps.networks import services

    group = _selectors().security_group_get(actor=actor, security_group_id=group_id)
    have = {_existing_key(r): r.id for r in group.rules.all()}
    for key, rule_id in have.items():
        if key not in wanted:
            services.security_group_rule_delete(actor=actor, rule_id=rule_id)
    for key in wanted:
        if key not in have:
            direction, ethertype, protocol, low, high, prefix, remote = key
            services.security_group_rule_create(
                actor=actor, security_group_id=group_id, direction=direction,  # type: ignore[arg-type]
                ethertype=ethertype, protocol=protocol, port_range_min=low,  # type: ignore[arg-type]
                port_range_max=high, remote_ip_prefix=prefix, remote_group_id=remote)


class GroupPlugin(NeutronPlugin):
    """A security group and its rules (OS::Neutron::SecurityGroup, AWS::EC2::SecurityGroup)."""

    def group_fields(self, props: dict[str, Any]) -> tuple[str, str]:
        raise NotImplementedError

    def rules(self, props: dict[str, Any]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def create(self, props: dict[str, Any]) -> Outcome:
        from apps.networks import services

        name, description = self.group_fields(props)
        actor = self.context.actor
        group = _call(services.security_group_create, actor=actor, name=name, description=description)
        try:
            _call(lambda: converge_rules(actor, group.id, wanted_rules(actor, group.id, self.rules(props))))
        except ResourceFailed:
            # a refused rule fails the resource, which then holds nothing: the group goes with it
            _call(services.security_group_delete, actor=actor, security_group_id=group.id)
            raise
        return Outcome(physical_id=group.id, attributes=self.attributes_of(_call(self.read, group.id)))

    def update(self, physical_id: str, data: dict[str, Any], old: dict[str, Any], new: dict[str, Any]) -> Outcome:
        from apps.networks import services

        actor = self.context.actor
        name, description = self.group_fields(new)
        old_name, old_description = self.group_fields(old)

        def change() -> None:
            changes: dict[str, Any] = {}
            if (name, description) != (old_name, old_description):
                changes = {"name": name, "description": description}
                services.security_group_update(actor=actor, security_group_id=physical_id,
                                               changes=changes)  # type: ignore[arg-type]
            converge_rules(actor, physical_id, wanted_rules(actor, physical_id, self.rules(new)))

        _call(change)
        return Outcome(physical_id=physical_id, attributes=self.attributes_of(_call(self.read, physical_id)),
                       data=data)

    def _attributes(self, group: Any) -> dict[str, Any]:
        from apps.networks.api.serializers import security_group_rule_out

        return {"name": group.name, "rules": [security_group_rule_out(r, self.context.actor)
                                              for r in group.rules.all()], "tenant_id": group.project_id}

    def read(self, physical_id: str) -> Any:
        return _selectors().security_group_get(actor=self.context.actor, security_group_id=physical_id)

    def show(self, row: Any) -> dict[str, Any]:
        from apps.networks.api.serializers import security_group_out

        return security_group_out(row, self.context.actor)

    def remove(self, physical_id: str) -> None:
        from apps.networks import services

        services.security_group_delete(actor=self.context.actor, security_group_id=physical_id)


@register
class SecurityGroup(GroupPlugin):
    type_name = "OS::Neutron::SecurityGroup"
    description = "A resource for managing Neutron security groups."
    properties_schema = {
        "name": Prop(STRING, "A string specifying a symbolic name for the security group.", update_allowed=True),
        "description": Prop(STRING, "Description of the security group.", update_allowed=True),
        "rules": Prop(LIST, "List of security group rules.", default=[], update_allowed=True,
                      schema={"*": Prop(MAP, schema=RULE_SCHEMA)}),
    }
    attributes_schema = {"name": Attr("The name of the security group."),
                         "rules": Attr("The rules of the security group.", LIST),
                         "tenant_id": Attr("The tenant owning the security group.")}

    def group_fields(self, props: dict[str, Any]) -> tuple[str, str]:
        if props.get("name") == "default":
            raise ResourceFailed("StackValidationFailed: Security groups cannot be assigned the name 'default'.")
        return props.get("name") or self.context.physical_name(), props.get("description") or ""

    def rules(self, props: dict[str, Any]) -> list[dict[str, Any]]:
        return list(props.get("rules") or [])

    def update(self, physical_id: str, data: dict[str, Any], old: dict[str, Any], new: dict[str, Any]) -> Outcome:
        if not new.get("name") and not old.get("name"):  # the generated name stays
            current = _call(self.read, physical_id).name
            old, new = {**old, "name": current}, {**new, "name": current}
        return super().update(physical_id, data, old, new)


@register
class SecurityGroupRule(NeutronPlugin):
    type_name = "OS::Neutron::SecurityGroupRule"
    description = "A resource for managing Neutron security group rules."
    properties_schema = {
        "security_group": Prop(STRING, "Security group name or ID to add the rule to.", required=True),
        "description": Prop(STRING, "Description of the security group rule."),
        "remote_group": Prop(STRING, "The remote group name or ID to be associated with this rule."),
        "remote_ip_prefix": Prop(STRING, "The remote IP prefix (CIDR) to be associated with this rule."),
        "direction": RULE_SCHEMA["direction"], "ethertype": RULE_SCHEMA["ethertype"],
        "port_range_min": RULE_SCHEMA["port_range_min"], "port_range_max": RULE_SCHEMA["port_range_max"],
        "protocol": RULE_SCHEMA["protocol"],
    }

    def create(self, props: dict[str, Any]) -> Outcome:
        from apps.networks import services

        actor = self.context.actor

        def make() -> Any:
            group_id = _group_ids(actor, [props["security_group"]])[0]
            remote = _group_ids(actor, [props["remote_group"]])[0] if props.get("remote_group") else None
            protocol = props.get("protocol")
            return services.security_group_rule_create(
                actor=actor, security_group_id=group_id, direction=props["direction"],
                ethertype=props["ethertype"], protocol=None if protocol in (None, "", "any") else protocol,
                port_range_min=props.get("port_range_min"), port_range_max=props.get("port_range_max"),
                remote_ip_prefix=props.get("remote_ip_prefix"), remote_group_id=remote,
                description=props.get("description") or "")

        rule = _call(make)
        return Outcome(physical_id=rule.id, attributes={"show": self.show(rule)})

    def read(self, physical_id: str) -> Any:
        return _selectors().security_group_rule_get(actor=self.context.actor, rule_id=physical_id)

    def show(self, row: Any) -> dict[str, Any]:
        from apps.networks.api.serializers import security_group_rule_out

        return security_group_rule_out(row, self.context.actor)

    def remove(self, physical_id: str) -> None:
        from apps.networks import services

        services.security_group_rule_delete(actor=self.context.actor, rule_id=physical_id)
