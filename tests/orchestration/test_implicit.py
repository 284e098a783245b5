"""Heat's implicit networking dependencies in the stack's graph (apps/orchestration/engine/implicit.py):
a port or a server's network waits for the subnets of that network, a floating IP (or association) on
a port for the router interfaces of the port's network, a router for the subnets of its gateway's
network; an implicit dependency that would make a cycle is dropped, never an error."""
from __future__ import annotations

from apps.orchestration.engine import StackContext, Template

NET = """
heat_template_version: 2018-08-31
parameters:
  public: {type: string, default: public}
resources:
  ext: {type: OS::Neutron::Net}
  ext_sub: {type: OS::Neutron::Subnet, properties: {network: {get_resource: ext}, cidr: 198.51.100.0/24}}
  net: {type: OS::Neutron::Net}
  sub: {type: OS::Neutron::Subnet, properties: {network: {get_resource: net}, cidr: 10.0.0.0/24}}
  router:
    type: OS::Neutron::Router
    properties: {external_gateway_info: {network: {get_resource: ext}}}
  iface: {type: OS::Neutron::RouterInterface, properties: {router: {get_resource: router}, subnet: {get_resource: sub}}}
  port: {type: OS::Neutron::Port, properties: {network: {get_resource: net}}}
  fip:
    type: OS::Neutron::FloatingIP
    properties: {floating_network: {get_resource: ext}, port_id: {get_resource: port}}
  fip2: {type: OS::Neutron::FloatingIP, properties: {floating_network: {get_param: public}}}
  assoc:
    type: OS::Neutron::FloatingIPAssociation
    properties: {floatingip_id: {get_resource: fip2}, port_id: {get_resource: port}}
  server:
    type: OS::Nova::Server
    properties: {image: cirros, flavor: m1.tiny, networks: [{network: {get_resource: net}}]}
"""


def test_implicit_networking_dependencies_order_the_walk() -> None:
    stack = Template.parse(NET).stack(context=StackContext(stack_name="s"))
    level = {name: i for i, names in enumerate(stack.levels()) for name in names}
    assert level["port"] > level["sub"] and level["server"] > level["sub"]  # no reference says so
    assert level["router"] > level["ext_sub"]
    assert level["fip"] > level["iface"] and level["assoc"] > level["iface"]
    deletion = {name: i for i, names in enumerate(stack.deletion_levels()) for name in names}
    assert deletion["fip"] < deletion["iface"] and deletion["port"] < deletion["sub"]


def test_an_implicit_dependency_that_would_make_a_cycle_is_dropped() -> None:
    cyclic = NET.replace("ext_sub: {type: OS::Neutron::Subnet, properties:",
                         "ext_sub: {type: OS::Neutron::Subnet, depends_on: [router], properties:")
    stack = Template.parse(cyclic).stack(context=StackContext(stack_name="s"))
    level = {name: i for i, names in enumerate(stack.levels()) for name in names}
    assert level["ext_sub"] > level["router"]
