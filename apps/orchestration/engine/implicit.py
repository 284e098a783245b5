"""Heat's implicit dependencies between networking resources of one template, which no reference
states: a port (or a server's network) needs the subnets of its network, else it may be made before
any subnet exists and get no address; a floating IP on a port needs the router interfaces that connect
the port's network to the outside, else the network app answers "external network not reachable";
a router needs the subnets of the external network its gateway is on. Values are compared as written
(``{get_resource: net}`` with ``{get_resource: net}``, a parameter with the same parameter), as Heat
compares them before anything exists."""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Protocol


class Definition(Protocol):
    type: str
    properties: dict[str, Any]


SUBNET = "OS::Neutron::Subnet"
PORT = "OS::Neutron::Port"
ROUTER = "OS::Neutron::Router"
INTERFACE = "OS::Neutron::RouterInterface"
FIP_TYPES = ("OS::Neutron::FloatingIP", "OS::Neutron::FloatingIPAssociation")
SERVER = "OS::Nova::Server"


def _props(res: Definition) -> Mapping[str, Any]:
    return res.properties if isinstance(res.properties, dict) else {}


def _resource_ref(value: Any) -> str | None:
    """The resource a ``get_resource`` / ``Ref`` names."""
    if isinstance(value, dict) and len(value) == 1:
        (fn, arg), = value.items()
        if fn in ("get_resource", "Ref") and isinstance(arg, str):
            return arg
    return None


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def implicit_requires(resources: Mapping[str, Definition], enabled: Iterable[str]) -> dict[str, set[str]]:
    """For each enabled resource, the enabled resources it needs implicitly (Heat's add_dependencies)."""
    names = set(enabled)
    subnets_of: dict[str, set[str]] = {}
    for n in names:
        if resources[n].type == SUBNET and _props(resources[n]).get("network") is not None:
            subnets_of.setdefault(_key(_props(resources[n])["network"]), set()).add(n)
    interfaces = [(n, _props(resources[n])) for n in sorted(names) if resources[n].type == INTERFACE]

    def subnets(network: Any) -> set[str]:
        return set() if network is None else subnets_of.get(_key(network), set())

    def port_network(port_value: Any) -> Any:
        port = _resource_ref(port_value)
        if port in names and resources[port].type == PORT:
            return _props(resources[port]).get("network")
        return None

    out: dict[str, set[str]] = {}
    for name in names:
        res = resources[name]
        props = _props(res)
        needs: set[str] = set()
        if res.type == PORT:
            needs |= subnets(props.get("network"))
        elif res.type == SERVER:
            for item in props.get("networks") or []:
                if isinstance(item, dict) and not item.get("port"):
                    needs |= subnets(item.get("network"))
        elif res.type == ROUTER:
            gateway = props.get("external_gateway_info")
            if isinstance(gateway, dict):
                needs |= subnets(gateway.get("network"))
        elif res.type in FIP_TYPES:
            network = port_network(props.get("port_id"))
            on_network = subnets(network)
            for iface, iprops in interfaces:
                subnet = _resource_ref(iprops.get("subnet"))
                if (subnet in on_network) or (network is not None and port_network(iprops.get("port")) == network):
                    needs.add(iface)
        needs.discard(name)
        if needs:
            out[name] = needs
    return out
