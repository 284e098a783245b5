"""Plain NodeState values for the driver tests (what apps.networks' selector would build)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace

from lib.netmodel import (
    DEVICE_OWNER_DHCP,
    DEVICE_OWNER_ROUTER_GATEWAY,
    DEVICE_OWNER_ROUTER_INTERFACE,
    DhcpPortSpec,
    FixedIpSpec,
    FloatingIpSpec,
    GatewayAddressSpec,
    NetworkSpec,
    NodeState,
    PortSpec,
    RouterGatewaySpec,
    RouterInterfaceSpec,
    RouterSpec,
    SecurityGroupRuleSpec,
    SecurityGroupSpec,
    SubnetSpec,
)


def new_id() -> str:
    return str(uuid.uuid4())


def rule(direction: str, protocol: str | None = None, lo: int | None = None, hi: int | None = None,
         prefix: str | None = None, group: str | None = None, ethertype: str = "IPv4") -> SecurityGroupRuleSpec:
    return SecurityGroupRuleSpec(id=new_id(), direction=direction, ethertype=ethertype, protocol=protocol,
                                 port_range_min=lo, port_range_max=hi, remote_ip_prefix=prefix,
                                 remote_group_id=group)


@dataclass
class Cloud:
    """A small cloud: an external network, a tenant network with DHCP, a router with SNAT."""

    ext_net: str = field(default_factory=new_id)
    ext_subnet: str = field(default_factory=new_id)
    net: str = field(default_factory=new_id)
    subnet: str = field(default_factory=new_id)
    dhcp_port: str = field(default_factory=new_id)
    router: str = field(default_factory=new_id)
    router_itf: str = field(default_factory=new_id)
    router_gw: str = field(default_factory=new_id)
    ext_host_port: str = field(default_factory=new_id)
    sg: str = field(default_factory=new_id)
    vni: int = 0

    def __post_init__(self) -> None:
        self.vni = 1000 + uuid.UUID(self.net).int % 100000

    def networks(self) -> tuple[NetworkSpec, ...]:
        ext = NetworkSpec(id=self.ext_net, vni=self.vni + 1, mtu=1450, external=True, admin_state_up=True,
                          subnets=(SubnetSpec(id=self.ext_subnet, network_id=self.ext_net, cidr="203.0.113.0/24",
                                              ip_version=4, gateway_ip="203.0.113.1", enable_dhcp=False),))
        tenant = NetworkSpec(
            id=self.net, vni=self.vni, mtu=1450, external=False, admin_state_up=True,
            subnets=(SubnetSpec(id=self.subnet, network_id=self.net, cidr="10.10.0.0/24", ip_version=4,
                                gateway_ip="10.10.0.1", enable_dhcp=True, dns_nameservers=("192.0.2.53",),
                                dhcp_port=DhcpPortSpec(id=self.dhcp_port, mac="fa:16:3e:00:00:02",
                                                       ip="10.10.0.2")),))
        return (ext, tenant)

    def guest_port(self, port_id: str, ip: str, mac: str, host: str, *, security: bool = True,
                   groups: tuple[str, ...] | None = None) -> PortSpec:
        return PortSpec(id=port_id, network_id=self.net, mac=mac, fixed_ips=(FixedIpSpec(self.subnet, ip),),
                        device_owner="compute:nova", device_id=new_id(), port_security_enabled=security,
                        security_group_ids=(self.sg,) if groups is None else groups, binding_host=host)

    def ext_host(self, host: str) -> PortSpec:
        """The external network's "upstream" machine (also the external gateway, 203.0.113.1)."""
        return PortSpec(id=self.ext_host_port, network_id=self.ext_net, mac="fa:16:3e:00:01:01",
                        fixed_ips=(FixedIpSpec(self.ext_subnet, "203.0.113.1"),), device_owner="",
                        device_id="", port_security_enabled=False, binding_host=host)

    def network_ports(self) -> tuple[PortSpec, ...]:
        return (
            PortSpec(id=self.dhcp_port, network_id=self.net, mac="fa:16:3e:00:00:02",
                     fixed_ips=(FixedIpSpec(self.subnet, "10.10.0.2"),), device_owner=DEVICE_OWNER_DHCP,
                     device_id="dhcp", port_security_enabled=False),
            PortSpec(id=self.router_itf, network_id=self.net, mac="fa:16:3e:00:00:01",
                     fixed_ips=(FixedIpSpec(self.subnet, "10.10.0.1"),), device_owner=DEVICE_OWNER_ROUTER_INTERFACE,
                     device_id=self.router, port_security_enabled=False),
            PortSpec(id=self.router_gw, network_id=self.ext_net, mac="fa:16:3e:00:01:0a",
                     fixed_ips=(FixedIpSpec(self.ext_subnet, "203.0.113.10"),),
                     device_owner=DEVICE_OWNER_ROUTER_GATEWAY, device_id=self.router, port_security_enabled=False),
        )

    def router_spec(self, floating: tuple[FloatingIpSpec, ...] = (), snat: bool = True) -> RouterSpec:
        return RouterSpec(
            id=self.router, admin_state_up=True,
            interfaces=(RouterInterfaceSpec(port_id=self.router_itf, mac="fa:16:3e:00:00:01", network_id=self.net,
                                            subnet_id=self.subnet, ip="10.10.0.1", prefixlen=24),),
            gateway=RouterGatewaySpec(port_id=self.router_gw, mac="fa:16:3e:00:01:0a", network_id=self.ext_net,
                                      ips=(GatewayAddressSpec("203.0.113.10", 24, self.ext_subnet),),
                                      external_gateway_ip="203.0.113.1", enable_snat=snat),
            floating_ips=floating,
        )

    def group(self, *rules: SecurityGroupRuleSpec, members: tuple[str, ...] = ()) -> SecurityGroupSpec:
        return SecurityGroupSpec(id=self.sg, rules=rules, member_ips=members)

    def state(self, host: str, vtep: str, *, ports: tuple[PortSpec, ...] = (), routers: tuple[RouterSpec, ...] = (),
              groups: tuple[SecurityGroupSpec, ...] = (), peers: tuple[str, ...] = (), dhcp_l3: bool = True,
              networks: tuple[NetworkSpec, ...] | None = None) -> NodeState:
        return NodeState(host=host, local_vtep=vtep, peers=peers,
                         networks=self.networks() if networks is None else networks,
                         ports=self.network_ports() + ports if dhcp_l3 else ports, routers=routers,
                         security_groups=groups, dhcp_l3=dhcp_l3)


__all__ = ["Cloud", "new_id", "replace", "rule"]
