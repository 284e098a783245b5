"""Conditions, resources, outputs, environments and the dependency graph of whole templates."""
from __future__ import annotations

import json
import re

import pytest

from apps.orchestration.engine import (
    CircularDependency,
    Graph,
    InvalidTemplateReference,
    RequestLimitExceeded,
    ResolvedType,
    StackContext,
    StackValidationFailed,
    Template,
    parse_environment,
)

WEB = """
heat_template_version: 2021-04-16
description: A network, a router to the outside, a server with a floating IP
parameters:
  image: {type: string, default: cirros}
  flavor: {type: string, default: m1.tiny}
  public_net: {type: string, default: public}
  with_fip: {type: boolean, default: true}
conditions:
  has_fip: {get_param: with_fip}
resources:
  net:
    type: OS::Neutron::Net
  subnet:
    type: OS::Neutron::Subnet
    properties:
      network: {get_resource: net}
      cidr: 10.0.0.0/24
  router:
    type: OS::Neutron::Router
    properties:
      external_gateway_info: {network: {get_param: public_net}}
  router_interface:
    type: OS::Neutron::RouterInterface
    properties:
      router: {get_resource: router}
      subnet: {get_resource: subnet}
  port:
    type: OS::Neutron::Port
    properties:
      network: {get_resource: net}
      fixed_ips: [{subnet: {get_resource: subnet}}]
  server:
    type: OS::Nova::Server
    metadata: {role: web}
    deletion_policy: Delete
    update_policy: {replace_on_change: true}
    properties:
      image: {get_param: image}
      flavor: {get_param: flavor}
      networks: [{port: {get_resource: port}}]
  floating_ip:
    type: OS::Neutron::FloatingIP
    condition: has_fip
    depends_on: router_interface
    properties:
      floating_network: {get_param: public_net}
      port_id: {get_resource: port}
outputs:
  server_ip:
    description: the server's private address
    value: {get_attr: [server, first_address]}
  public_ip:
    condition: has_fip
    value: {get_attr: [floating_ip, floating_ip_address]}
"""


def web_context() -> StackContext:
    attrs = {("server", "first_address"): "10.0.0.5", ("floating_ip", "floating_ip_address"): "172.24.4.9"}
    return StackContext(stack_name="web", resource_ref=lambda n: f"{n}-uuid",
                        resource_attr=lambda n, a: attrs[(n, a)])


def test_levels_of_a_realistic_template() -> None:
    tmpl = Template.parse(WEB)
    tmpl.validate()
    stack = tmpl.stack(context=web_context())
    assert stack.levels() == [["net", "router"], ["subnet"], ["port", "router_interface"],
                              ["floating_ip", "server"]]
    assert stack.deletion_levels() == [["floating_ip", "server"], ["port", "router_interface"], ["subnet"],
                                       ["net", "router"]]
    assert stack.properties("floating_ip") == {"floating_network": "public", "port_id": "port-uuid"}
    assert stack.properties("server")["networks"] == [{"port": "port-uuid"}]
    assert stack.metadata("server") == {"role": "web"}
    server = tmpl.resources["server"]
    assert (server.deletion_policy, server.update_policy) == ("Delete", {"replace_on_change": True})
    assert tmpl.resources["floating_ip"].depends_on == ["router_interface"]
    outputs = stack.outputs()
    assert outputs["server_ip"].value == "10.0.0.5"
    assert outputs["server_ip"].description == "the server's private address"
    assert outputs["public_ip"].value == "172.24.4.9"


def test_a_false_condition_drops_the_resource_and_its_output() -> None:
    stack = Template.parse(WEB).stack(parameters={"with_fip": "false"}, context=web_context())
    assert stack.conditions() == {"has_fip": False}
    assert "floating_ip" not in stack.enabled
    assert stack.levels()[-1] == ["server"]
    assert [r.name for r in stack.resources()] == ["net", "router", "subnet", "port", "router_interface", "server"]
    assert stack.outputs()["public_ip"].value is None
    assert stack.resolve({"get_resource": "floating_ip"}) is None


def test_an_output_that_cannot_be_resolved_carries_its_error() -> None:
    stack = Template.parse(WEB).stack()
    out = stack.output("server_ip")
    assert out.value is None
    assert out.error == '"get_attr" cannot be resolved: no attributes are available yet'


CONDITIONS = """
heat_template_version: 2021-04-16
parameters:
  env: {type: string, default: prod}
  zones: {type: comma_delimited_list, default: 'a,b'}
  replicas: {type: number, default: 3}
conditions:
  prod: {equals: [{get_param: env}, prod]}
  dev: {not: prod}
  test: {equals: [{get_param: env}, test]}
  dev_or_test: {or: [dev, test]}
  prod_in_a: {and: [prod, {contains: [a, {get_param: zones}]}]}
  in_c: {contains: [c, {get_param: zones}]}
  always: true
  many: {not: {equals: [{get_param: replicas}, 1]}}
resources:
  big: {type: OS::Heat::None, condition: prod}
  small: {type: OS::Heat::None, condition: dev_or_test}
  inline: {type: OS::Heat::None, condition: {equals: [{get_param: env}, test]}}
  value:
    type: OS::Heat::Value
    properties:
      value: {if: [prod, {get_resource: big}, {get_resource: small}]}
outputs:
  which: {value: {if: [prod_in_a, prod-a, other]}}
  only_dev: {value: dev!, condition: dev}
"""


def test_conditions() -> None:
    tmpl = Template.parse(CONDITIONS)
    tmpl.validate()
    prod = tmpl.stack()
    assert prod.conditions() == {"prod": True, "dev": False, "test": False, "dev_or_test": False,
                                 "prod_in_a": True, "in_c": False, "always": True, "many": True}
    assert prod.enabled == {"big", "value"}
    assert prod.properties("value") == {"value": "big"}
    assert {k: o.value for k, o in prod.outputs().items()} == {"which": "prod-a", "only_dev": None}
    test = tmpl.stack(parameters={"env": "test", "zones": "c"})
    assert test.enabled == {"small", "inline", "value"}
    assert test.properties("value") == {"value": "small"}
    assert test.conditions()["in_c"] is True
    # the value resource depends only on resources that exist in this stack
    assert test.graph().requires["value"] == {"small"}


@pytest.mark.parametrize(("conditions", "message"), [
    ("  a: {equals: [1]}\n", 'Arguments to "equals" must be a list of two values'),
    ("  a: {and: [true]}\n", 'Arguments to "and" must be a list of at least two conditions'),
    ("  a: {not: b}\n  b: {not: a}\n", "Circular definition for condition a: a -> b -> a"),
    ("  a: {get_resource: x}\n", 'The function "get_resource" is not supported in conditions'),
    ("  a: {list_join: [',', [a]]}\n", 'The function "list_join" is not supported in conditions'),
])
def test_bad_conditions(conditions: str, message: str) -> None:
    tmpl = Template.parse("heat_template_version: 2021-04-16\nconditions:\n" + conditions +
                          "resources:\n  x: {type: OS::Heat::None, condition: a}\n")
    with pytest.raises(StackValidationFailed, match=re.escape(message)):
        tmpl.stack().conditions()


def test_contains_in_conditions_needs_pike() -> None:
    tmpl = Template.parse("heat_template_version: 2017-02-24\nconditions:\n  c: {contains: [a, [a]]}\n")
    with pytest.raises(StackValidationFailed, match='"contains" is not supported in conditions'):
        tmpl.validate()


@pytest.mark.parametrize(("resources", "error", "message"), [
    ("  a: {type: X, depends_on: b}\n", InvalidTemplateReference,
     'The specified reference "b" (in a.depends_on) is incorrect.'),
    ("  a: {type: X, properties: {p: {get_resource: b}}}\n", InvalidTemplateReference,
     'The specified reference "b" (in get_resource) is incorrect.'),
    ("  a: {type: X, properties: {p: {get_attr: [b, c]}}}\n", InvalidTemplateReference,
     'The specified reference "b" (in get_attr) is incorrect.'),
    ("  a: {type: X, properties: {p: {get_param: q}}}\n", InvalidTemplateReference,
     'The specified reference "q" (in get_param) is incorrect.'),
    ("  a: {type: X, condition: nope}\n", InvalidTemplateReference,
     'The specified reference "nope" (in a) is incorrect.'),
    ("  a: {type: X, metadata: {m: {Fn::Join: [',', [x]]}}}\n", StackValidationFailed,
     'The function "Fn::Join" is not supported in this version of the template'),
])
def test_validate_finds_bad_references(resources: str, error: type[Exception], message: str) -> None:
    tmpl = Template.parse("heat_template_version: 2021-04-16\nresources:\n" + resources)
    with pytest.raises(error, match=re.escape(message)):
        tmpl.validate()


def test_a_cycle_is_found_with_heats_error() -> None:
    tmpl = Template.parse("""
heat_template_version: 2021-04-16
resources:
  a: {type: OS::Heat::None, depends_on: c}
  b: {type: OS::Heat::None, properties: {x: {get_resource: a}}}
  c: {type: OS::Heat::None, properties: {x: {get_attr: [b, value]}}}
  d: {type: OS::Heat::None}
""")
    with pytest.raises(CircularDependency) as exc:
        tmpl.validate()
    assert str(exc.value) == "Circular Dependency Found: a -> c -> b -> a"
    with pytest.raises(CircularDependency, match="Circular Dependency Found: x -> x"):
        Template.parse("heat_template_version: 2021-04-16\nresources:\n  x: {type: X, depends_on: x}\n").validate()


def test_graph_of_a_long_chain_and_a_wide_fan() -> None:
    chain = Graph({f"r{i}": ({f"r{i - 1}"} if i else set()) for i in range(1000)})
    assert chain.levels() == [[f"r{i}"] for i in range(1000)]
    fan = Graph({"root": set(), **{f"leaf{i:03}": {"root"} for i in range(500)}})
    levels = fan.levels()
    assert levels[0] == ["root"] and len(levels[1]) == 500
    assert fan.deletion_levels()[-1] == ["root"]


CHOSEN = """
heat_template_version: 2021-04-16
parameters:
  which: {type: string, default: a}
  enable: {type: boolean, default: true}
conditions:
  enabled: {get_param: enable}
resources:
  a: {type: OS::Heat::None}
  b: {type: OS::Heat::None, condition: enabled}
  c: {type: OS::Heat::None, properties: {v: {get_resource: {get_param: which}}}}
  d: {type: OS::Heat::None, depends_on: c, metadata: {m: {get_attr: [b, x]}}}
"""


def test_graph_follows_the_values_it_is_bound_to() -> None:
    """The graph validate makes (defaults) is reused by a stack bound to the same enabled set only when
    no reference can change with a value: a reference named by a parameter, a condition that drops a
    resource, each give the bound stack its own graph."""
    tmpl = Template.parse(CHOSEN)
    tmpl.validate()
    assert tmpl.stack().graph().requires["c"] == {"a"}
    assert tmpl.stack(parameters={"which": "b"}).graph().requires["c"] == {"b"}
    assert tmpl.stack(parameters={"which": "b"}).levels() == [["a", "b"], ["c"], ["d"]]
    off = tmpl.stack(parameters={"enable": False})
    assert off.enabled == {"a", "c", "d"} and off.graph().requires == {"a": set(), "c": {"a"}, "d": {"c"}}
    assert tmpl.stack(parameters={"which": "d"}).graph().requires["c"] == {"d"}
    with pytest.raises(CircularDependency):
        tmpl.stack(parameters={"which": "d"}).levels()
    static = Template.parse(CHOSEN.replace("{get_resource: {get_param: which}}", "{get_resource: a}"))
    static.validate()
    bound = static.stack()
    assert bound.graph() is static.stack(parameters={"which": "b"}).graph()  # one graph for the template
    assert static.stack(parameters={"enable": False}).graph().requires == {"a": set(), "c": {"a"}, "d": {"c"}}
    levels = bound.levels()
    levels[0].append("changed")
    assert bound.levels() == [["a", "b"], ["c"], ["d"]]  # each caller has its own copy


def test_environment_registry_and_parameters() -> None:
    env = parse_environment(["""
parameters: {image: fedora}
parameter_defaults: {flavor: m1.large}
resource_registry:
  "My::Server": OS::Nova::Server
  "My::Alias": "My::Server"
  "OS::Networking::*": "OS::Neutron::*"
  "My::Web": templates/web.yaml
  resources:
    special:
      "OS::Nova::Server": provider/special.yaml
""", {"parameter_defaults": {"flavor": "m1.xlarge"}, "resource_registry": {"My::Gone": None}}])
    assert env.parameters == {"image": "fedora"}
    assert env.parameter_defaults == {"flavor": "m1.xlarge"}
    reg = env.registry
    assert reg.resolve("My::Alias") == ResolvedType("OS::Nova::Server")
    assert reg.resolve("OS::Networking::Net") == ResolvedType("OS::Neutron::Net")
    assert reg.resolve("My::Web") == ResolvedType("My::Web", template="templates/web.yaml")
    assert reg.resolve("OS::Nova::Server", "special").template == "provider/special.yaml"
    assert reg.resolve("OS::Nova::Server", "other") == ResolvedType("OS::Nova::Server")
    stack = Template.parse(WEB).stack(environment=env)
    assert stack.parameters["image"] == "fedora"
    assert stack.parameters["flavor"] == "m1.xlarge"
    assert stack.resource_type("server") == ResolvedType("OS::Nova::Server")


@pytest.mark.parametrize(("env", "message"), [
    ("paramters: {a: 1}\n", 'environment has wrong section "paramters"'),
    ("parameters: [a]\n", 'The "parameters" section of the environment must be a map'),
    ("resource_registry: {'A::*': B}\n", 'wildcard "A::*" must end with "*" on both sides'),
    ("resource_registry: {'A': 1}\n", 'the mapping of "A" must be a string'),
])
def test_bad_environments(env: str, message: str) -> None:
    with pytest.raises(StackValidationFailed, match=re.escape(message)):
        parse_environment(env)


def test_a_mapping_loop_is_refused() -> None:
    env = parse_environment("resource_registry: {'A::X': 'B::X', 'B::X': 'A::X'}\n")
    with pytest.raises(StackValidationFailed, match=re.escape("Resource type mapping loop: A::X -> B::X -> A::X")):
        env.registry.resolve("A::X")


CFN = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Description": "An instance with an EIP",
    "Parameters": {
        "KeyName": {"Type": "AWS::EC2::KeyPair::KeyName"},
        "InstanceType": {"Type": "String", "Default": "m1.small", "AllowedValues": ["m1.small", "m1.large"]},
        "WithEIP": {"Type": "String", "Default": "yes", "AllowedValues": ["yes", "no"]},
    },
    "Mappings": {"Arch": {"m1.small": {"Image": "cirros"}, "m1.large": {"Image": "fedora"}}},
    "Conditions": {"MakeEIP": {"Fn::Equals": [{"Ref": "WithEIP"}, "yes"]}},
    "Resources": {
        "SG": {"Type": "AWS::EC2::SecurityGroup",
               "Properties": {"SecurityGroupIngress": [{"IpProtocol": "tcp", "FromPort": "22", "ToPort": "22"}]}},
        "Instance": {"Type": "AWS::EC2::Instance",
                     "Metadata": {"AWS::CloudFormation::Init": {}},
                     "Properties": {
                         "ImageId": {"Fn::FindInMap": ["Arch", {"Ref": "InstanceType"}, "Image"]},
                         "InstanceType": {"Ref": "InstanceType"}, "KeyName": {"Ref": "KeyName"},
                         "SecurityGroups": [{"Ref": "SG"}],
                         "UserData": {"Fn::Base64": {"Fn::Join": ["", ["#!/bin/sh\n", "echo ",
                                                                       {"Ref": "AWS::StackName"}]]}}}},
        "IP": {"Type": "AWS::EC2::EIP", "Condition": "MakeEIP", "DeletionPolicy": "Retain",
               "Properties": {"InstanceId": {"Ref": "Instance"}}},
        "Assoc": {"Type": "AWS::EC2::EIPAssociation", "Condition": "MakeEIP", "DependsOn": ["Instance"],
                  "Properties": {"EIP": {"Ref": "IP"}}},
    },
    "Outputs": {
        "PublicIp": {"Value": {"Fn::GetAtt": ["IP", "PublicIp"]}, "Condition": "MakeEIP"},
        "Address": {"Value": {"Fn::GetAtt": ["Instance", "PrivateIp"]}, "Description": "private"},
    },
}


def test_a_cloudformation_template() -> None:
    tmpl = Template.parse(json.dumps(CFN))
    tmpl.validate()
    attrs = {("IP", "PublicIp"): "172.24.4.20", ("Instance", "PrivateIp"): "10.0.0.3"}
    stack = tmpl.stack(parameters={"KeyName": "mykey", "InstanceType": "m1.large"},
                       context=StackContext(stack_name="cfn", resource_ref=lambda n: f"{n}-id",
                                            resource_attr=lambda n, a: attrs[(n, a)]))
    assert stack.levels() == [["SG"], ["Instance"], ["IP"], ["Assoc"]]
    props = stack.properties("Instance")
    assert props["ImageId"] == "fedora"
    assert props["SecurityGroups"] == ["SG-id"]
    assert props["UserData"] == "#!/bin/sh\necho cfn"
    assert tmpl.resources["IP"].deletion_policy == "Retain"
    assert {k: o.value for k, o in stack.outputs().items()} == {"PublicIp": "172.24.4.20", "Address": "10.0.0.3"}
    no_eip = tmpl.stack(parameters={"KeyName": "k", "WithEIP": "no"})
    assert no_eip.levels() == [["SG"], ["Instance"]]
    assert no_eip.output("PublicIp").value is None


def test_cfn_resource_keys_are_cfn_keys() -> None:
    with pytest.raises(StackValidationFailed, match='"type" is not a valid keyword inside a resource definition'):
        Template({"AWSTemplateFormatVersion": "2010-09-09", "Resources": {"r": {"type": "X"}}})
    with pytest.raises(InvalidTemplateReference, match=re.escape('"Nope" (in r.DependsOn)')):
        Template({"AWSTemplateFormatVersion": "2010-09-09",
                  "Resources": {"r": {"Type": "X", "DependsOn": "Nope"}}}).validate()


def test_provider_templates_from_files_and_the_nesting_limit() -> None:
    server = "heat_template_version: 2021-04-16\nparameters:\n  flavor: {type: string}\nresources:\n" \
             "  s: {type: OS::Nova::Server, properties: {flavor: {get_param: flavor}}}\n"
    files = {"server.yaml": server, "env/db.yaml": server}
    tmpl = Template.parse("heat_template_version: 2021-04-16\nresources:\n"
                          "  direct: {type: server.yaml, properties: {flavor: m1.tiny}}\n"
                          "  mapped: {type: My::DB}\n  plain: {type: OS::Heat::None}\n"
                          "  missing: {type: gone.yaml}\n", files=files)
    stack = tmpl.stack(environment=parse_environment("resource_registry: {'My::DB': env/db.yaml}\n"))
    nested = stack.provider_template("direct")
    assert nested is not None and list(nested.resources) == ["s"]
    assert nested.stack(parameters=stack.properties("direct")).properties("s") == {"flavor": "m1.tiny"}
    assert stack.provider_template("mapped") is not None
    assert stack.provider_template("plain") is None
    with pytest.raises(StackValidationFailed, match=re.escape('Could not fetch remote template "gone.yaml"')):
        stack.provider_template("missing")
    assert stack.provider_template("direct", depth=4) is not None
    with pytest.raises(RequestLimitExceeded, match=re.escape("Recursion depth exceeds 5.")):
        stack.provider_template("direct", depth=5)
