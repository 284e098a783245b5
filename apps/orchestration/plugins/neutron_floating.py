"""OS::Neutron::FloatingIP and OS::Neutron::FloatingIPAssociation over apps/networks' services (as
the stack's owner), with what AWS::EC2::EIP and EIPAssociation share of them: a floating IP's wait
for its port's router interface, associate and dissociate, ``AssociationPlugin``."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apps.orchestration.plugins.base import (
    LIST,
    MAP,
    STRING,
    Attr,
    Outcome,
    Prop,
    register,
)
from apps.orchestration.plugins.neutron_common import (
    Calls,
    NeutronPlugin,
    T,
    _call,
    _failed,
    _network_id,
    _selectors,
    _subnet_id,
)


@register
class FloatingIP(NeutronPlugin):
    type_name = "OS::Neutron::FloatingIP"
    description = "A resource for managing Neutron floating ips."
    calls = Calls.of("floatingip")
    fields = ("floating_ip_address", "floating_network_id", "port_id", "fixed_ip_address", "router_id", "tenant_id")
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
        changes: dict[str, Any] = {}
        if (old.get("port_id"), old.get("fixed_ip_address")) != (new.get("port_id"), new.get("fixed_ip_address")):
            changes.update(port_id=new.get("port_id"), fixed_ip_address=new.get("fixed_ip_address"))
        if old.get("tags") != new.get("tags"):
            changes["tags"] = list(new.get("tags") or [])
        return Outcome(physical_id=physical_id, attributes=self.attributes_of(self.updated(physical_id, changes)),
                       data=data)


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
