"""OS::Neutron::Net and OS::Neutron::Subnet over apps/networks' services (never its tables): each
phase calls ``network_create``/``subnet_create``/``..._delete`` as the stack's owner (``context.actor``),
so the network app's own validation, policy, quotas and IPAM apply. A delete of what is already gone
succeeds. Ports, routers and router interfaces are here too; floating IPs are in ``neutron_floating``,
security groups in ``neutron_security``, and what they all share in ``neutron_common``."""
from __future__ import annotations

from typing import Any

from apps.orchestration.plugins.base import (
    BOOLEAN,
    INTEGER,
    LIST,
    MAP,
    STRING,
    Attr,
    Outcome,
    Prop,
    ResourceFailed,
    register,
)
from apps.orchestration.plugins.neutron_common import (
    Calls,
    NeutronPlugin,
    _call,
    _failed,
    _group_ids,
    _network_id,
    _router_id,
    _selectors,
    _subnet_id,
)


@register
class Net(NeutronPlugin):
    type_name = "OS::Neutron::Net"
    description = "A resource for managing Neutron net."
    calls = Calls.of("network")
    fields = ("name", "status", "admin_state_up", "tenant_id", "mtu", "port_security_enabled")
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

    def update(self, physical_id: str, data: dict[str, Any], old: dict[str, Any], new: dict[str, Any]) -> Outcome:
        changes: dict[str, Any] = {}
        for key in ("name", "admin_state_up", "shared", "port_security_enabled", "tags"):
            if old.get(key) != new.get(key) and (new.get(key) is not None or key == "tags"):
                changes[key] = new[key] if key != "tags" else list(new.get(key) or [])
        return Outcome(physical_id=physical_id, attributes=self.attributes_of(self.updated(physical_id, changes)),
                       data=data)

    def _attributes(self, net: Any) -> dict[str, Any]:
        return super()._attributes(net) | {"subnets": [s.id for s in net.subnets.all()]}


@register
class Subnet(NeutronPlugin):
    type_name = "OS::Neutron::Subnet"
    description = "A resource for managing Neutron subnets."
    calls = Calls.of("subnet")
    fields = ("name", "network_id", "tenant_id", "gateway_ip", "cidr", "ip_version", "allocation_pools",
              "host_routes", "dns_nameservers", "enable_dhcp")
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

    def update(self, physical_id: str, data: dict[str, Any], old: dict[str, Any], new: dict[str, Any]) -> Outcome:
        changes: dict[str, Any] = {}
        for key in ("name", "enable_dhcp", "dns_nameservers", "allocation_pools", "host_routes", "tags"):
            if old.get(key) != new.get(key) and (new.get(key) is not None or key in ("tags", "host_routes")):
                changes[key] = new.get(key) if new.get(key) is not None else []
        if old.get("gateway_ip") != new.get("gateway_ip"):
            gateway = new.get("gateway_ip")
            changes["gateway_ip"] = None if gateway in ("", "~", None) else gateway
        return Outcome(physical_id=physical_id, attributes=self.attributes_of(self.updated(physical_id, changes)),
                       data=data)


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
    calls = Calls.of("port")
    fields = ("name", "network_id", "mac_address", "status", "admin_state_up", "device_id", "device_owner",
              "port_security_enabled", "tenant_id")
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
        changed = [k for k in self.properties_schema if k not in ("network", "value_specs")
                   and old.get(k) != new.get(k)]
        changes = self._changes(new, changed)
        if "fixed_ips" in changes and changes["fixed_ips"] is None:
            changes["fixed_ips"] = [{"subnet_id": a.subnet_id} for a in _call(self.read, physical_id).fixed_ips.all()]
        if "security_groups" in changes and changes["security_groups"] is None:
            changes["security_groups"] = _group_ids(self.context.actor, ["default"])
        if "name" in changed and new.get("name") is None:
            changes["name"] = self.context.physical_name()
        return Outcome(physical_id=physical_id, attributes=self.attributes_of(self.updated(physical_id, changes)),
                       data=data)

    def _attributes(self, port: Any) -> dict[str, Any]:
        fixed = [{"subnet_id": a.subnet_id, "ip_address": a.ip_address} for a in port.fixed_ips.all()]
        return super()._attributes(port) | {
            "fixed_ips": fixed, "security_groups": [g.id for g in port.security_groups.all()],
            "allowed_address_pairs": list(port.allowed_address_pairs),
            "subnets": sorted({f["subnet_id"] for f in fixed})}


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
    calls = Calls.of("router")
    fields = ("name", "status", "admin_state_up", "tenant_id")
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

        return super()._attributes(router) | {"external_gateway_info": gateway_info(router)}


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
