"""Intrinsic functions of HOT and CloudFormation, resolved against a stack context."""
from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
import yaml

from apps.orchestration.engine import (
    FunctionError,
    InvalidTemplateReference,
    Stack,
    StackContext,
    StackValidationFailed,
    Template,
)

ATTRS = {("server", "networks"): {"private": ["10.0.0.5", "fd00::5"]}, ("server", "name"): "web-1",
         ("server", "addresses"): {"private": [{"addr": "10.0.0.5", "port": "p-1"}]}}


def context() -> StackContext:
    return StackContext(
        stack_name="mystack", stack_id="1234", project_id="p1", region="RegionTwo",
        files={"scripts/boot.sh": "#!/bin/sh\necho hi\n"},
        resource_ref=lambda name: f"{name}-id", resource_attr=lambda name, attr: ATTRS.get((name, attr)),
        availability_zones=lambda: ["az1", "az2"],
        resource_attrs=lambda name: {a: v for (n, a), v in ATTRS.items() if n == name})


def hot(version: str = "2021-04-16", params: dict[str, Any] | None = None) -> Stack:
    doc = {"heat_template_version": version,
           "parameters": {"name": {"type": "string", "default": "web"},
                          "cfg": {"type": "json", "default": {"a": {"b": [1, 2, 3]}}},
                          "nets": {"type": "comma_delimited_list", "default": "n1,n2"},
                          "count": {"type": "number", "default": 2},
                          "env": {"type": "string", "default": "prod"}},
           "resources": {"server": {"type": "OS::Nova::Server"}, "net": {"type": "OS::Neutron::Net"}}}
    if version >= "2016-10-14":
        doc["conditions"] = {"is_prod": {"equals": [{"get_param": "env"}, "prod"]}}
    return Template(doc).stack(parameters=params, context=context())


def r(snippet: str, stack: Stack | None = None) -> Any:
    return (stack or hot()).resolve(yaml.safe_load(snippet))


def test_get_param_with_path() -> None:
    assert r("{get_param: name}") == "web"
    assert r("{get_param: [cfg, a, b, 1]}") == 2
    assert r("{get_param: [nets, 1]}") == "n2"
    assert r("{get_param: [cfg, a, missing]}") is None
    assert r("{get_param: OS::stack_name}") == "mystack"
    assert r("{get_param: OS::stack_id}") == "1234"
    assert r("{get_param: OS::project_id}") == "p1"
    with pytest.raises(StackValidationFailed, match=re.escape("The Parameter (nope) was not defined in template.")):
        r("{get_param: nope}")
    with pytest.raises(FunctionError, match="can't traverse path"):
        r("{get_param: [name, x]}")


def test_get_resource_and_get_attr_use_the_callbacks() -> None:
    assert r("{get_resource: server}") == "server-id"
    assert r("{get_attr: [server, name]}") == "web-1"
    assert r("{get_attr: [server, networks, private, 0]}") == "10.0.0.5"
    assert r("{get_attr: [server, addresses, private, 0, port]}") == "p-1"
    assert r("{get_attr: [server, networks, public, 0]}") is None
    with pytest.raises(InvalidTemplateReference, match='The specified reference "db" \\(in get_resource\\)'):
        r("{get_resource: db}")
    with pytest.raises(FunctionError, match="must be a list"):
        r("{get_attr: server}")


def test_get_attr_path_needs_2014_10_16() -> None:
    with pytest.raises(FunctionError, match="may not have a path"):
        r("{get_attr: [server, networks, private]}", hot("2013-05-23"))


def test_get_file() -> None:
    assert r("{get_file: scripts/boot.sh}") == "#!/bin/sh\necho hi\n"
    message = 'No content found in the "files" section for get_file path: x.sh'
    with pytest.raises(FunctionError, match=re.escape(message)):
        r("{get_file: x.sh}")


def test_str_replace_longest_key_first_and_values_as_text() -> None:
    out = r("""
str_replace:
  template: "$NAME-$NAME_SUFFIX $n $l $m $nothing"
  params: {$NAME: web, $NAME_SUFFIX: a, $n: 3, $l: [1, 2], $m: {k: v}, $nothing: null}
""")
    assert out == 'web-a 3 [1, 2] {"k": "v"} '
    assert r("{str_replace: {template: 'hello $x', params: {$x: {get_param: name}}}}") == "hello web"
    with pytest.raises(FunctionError, match='must be a map with "template" and "params"'):
        r("{str_replace: {template: x}}")


def test_str_replace_strict() -> None:
    assert r("{str_replace_strict: {template: 'a X', params: {X: b}}}") == "a b"
    with pytest.raises(FunctionError, match="The following params were not found in the template: Y"):
        r("{str_replace_strict: {template: 'a X', params: {X: b, Y: c}}}")
    with pytest.raises(StackValidationFailed, match='"str_replace_strict" is not supported'):
        r("{str_replace_strict: {template: 'a X', params: {X: b}}}", hot("2016-10-14"))


def test_list_join() -> None:
    assert r("{list_join: [',', [a, b], [c]]}") == "a,b,c"
    assert r("{list_join: [' ', {get_param: nets}]}") == "n1 n2"
    assert r("{list_join: ['-', [1, {k: v}]]}") == '1-{"k": "v"}'
    with pytest.raises(FunctionError, match="Items to join must be lists"):
        r("{list_join: [',', abc]}")


def test_str_split() -> None:
    assert r("{str_split: [',', 'a,b,c']}") == ["a", "b", "c"]
    assert r("{str_split: [',', 'a,b,c', 1]}") == "b"
    with pytest.raises(FunctionError, match='Incorrect index to "str_split" should be between 0 and 2'):
        r("{str_split: [',', 'a,b,c', 5]}")
    with pytest.raises(StackValidationFailed, match='"str_split" is not supported'):
        r("{str_split: [',', 'a']}", hot("2015-04-30"))


def test_repeat_with_and_without_permutations() -> None:
    out = r("""
repeat:
  for_each: {<%port%>: [80, 443], <%cidr%>: [10.0.0.0/8]}
  template: {protocol: tcp, port_range_min: <%port%>, remote_ip_prefix: <%cidr%>}
""")
    assert out == [{"protocol": "tcp", "port_range_min": 80, "remote_ip_prefix": "10.0.0.0/8"},
                   {"protocol": "tcp", "port_range_min": 443, "remote_ip_prefix": "10.0.0.0/8"}]
    assert r("{repeat: {for_each: {'%n%': {get_param: nets}}, template: 'net-%n%'}}") == ["net-n1", "net-n2"]
    assert r("{repeat: {for_each: {X: [1, 2], Y: [a, b]}, template: X-Y, permutations: false}}") == ["1-a", "2-b"]
    assert len(r("{repeat: {for_each: {X: [1, 2], Y: [a, b]}, template: X-Y}}")) == 4
    with pytest.raises(FunctionError, match="must be the same length"):
        r("{repeat: {for_each: {X: [1], Y: [a, b]}, template: X-Y, permutations: false}}")
    with pytest.raises(FunctionError, match='The values of the "for_each" argument to "repeat" must be lists'):
        r("{repeat: {for_each: {X: 1}, template: X}}")


def test_map_merge_and_map_replace() -> None:
    assert r("{map_merge: [{a: 1, b: 1}, {b: 2}, {c: 3}]}") == {"a": 1, "b": 2, "c": 3}
    with pytest.raises(FunctionError, match="arguments must be a list of maps"):
        r("{map_merge: [{a: 1}, [1]]}")
    assert r("{map_replace: [{k1: v1, k2: v2}, {keys: {k1: K1}, values: {v2: V2}}]}") == {"K1": "v1", "k2": "V2"}
    with pytest.raises(FunctionError, match="collides"):
        r("{map_replace: [{k1: v1, k2: v2}, {keys: {k1: k2}}]}")
    with pytest.raises(StackValidationFailed, match='"map_merge" is not supported'):
        r("{map_merge: [{a: 1}]}", hot("2015-10-15"))


def test_digest() -> None:
    assert r("{digest: [sha256, hello]}") == hashlib.sha256(b"hello").hexdigest()
    assert r("{digest: [md5, {get_param: name}]}") == hashlib.md5(b"web").hexdigest()
    with pytest.raises(FunctionError, match="Algorithm must be one of"):
        r("{digest: [crc32, hello]}")


def test_if_with_condition_names_and_expressions() -> None:
    assert r("{if: [is_prod, big, small]}") == "big"
    assert r("{if: [is_prod, big, small]}", hot(params={"env": "dev"})) == "small"
    assert r("{if: [{equals: [{get_param: count}, 2]}, two, other]}") == "two"
    assert r("{if: [true, {get_param: name}, {get_param: nope}]}") == "web"  # the other branch is not resolved
    with pytest.raises(InvalidTemplateReference, match='"missing"'):
        r("{if: [missing, a, b]}")


def test_functions_before_their_version_are_refused() -> None:
    with pytest.raises(StackValidationFailed, match=re.escape(
            'The function "repeat" is not supported in this version of the template '
            '(heat_template_version.2014-10-16).')):
        r("{repeat: {for_each: {X: [1]}, template: X}}", hot("2014-10-16"))
    with pytest.raises(StackValidationFailed, match='"Fn::Join" is not supported'):
        r("{'Fn::Join': [',', [a]]}", hot("2015-10-15"))
    assert r("{'Fn::Join': [',', [a, b]]}", hot("2013-05-23")) == "a,b"
    assert r("{'Fn::Select': ['1', [a, b]]}", hot("2016-04-08")) == "b"


def test_a_map_that_is_not_a_call_is_data() -> None:
    assert r("{not_a_function: {get_param: name}}") == {"not_a_function": "web"}
    assert r("{get_param: name, other: 1}") == {"get_param": "name", "other": 1}


CFN = """
AWSTemplateFormatVersion: '2010-09-09'
Parameters:
  Env: {Type: String, Default: prod}
  Zones: {Type: CommaDelimitedList, Default: 'a,b,c'}
Mappings:
  Images: {RegionTwo: {x86: ami-123}}
Conditions:
  IsProd: {'Fn::Equals': [{Ref: Env}, prod]}
  NotProd: {'Fn::Not': [{Condition: IsProd}]}
  Both: {'Fn::And': [{Condition: IsProd}, {'Fn::Equals': [a, a]}]}
  Either: {'Fn::Or': [{Condition: NotProd}, {Condition: IsProd}]}
Resources:
  Server: {Type: 'AWS::EC2::Instance'}
"""


def cfn(params: dict[str, Any] | None = None) -> Stack:
    return Template.parse(CFN).stack(parameters=params, context=context())


def test_cfn_functions() -> None:
    s = cfn()
    assert r("{Ref: Env}", s) == "prod"
    assert r("{Ref: Zones}", s) == ["a", "b", "c"]
    assert r("{Ref: Server}", s) == "Server-id"
    assert r("{Ref: 'AWS::StackName'}", s) == "mystack"
    assert r("{Ref: 'AWS::StackId'}", s) == "1234"
    assert r("{Ref: 'AWS::Region'}", s) == "RegionTwo"
    assert r("{'Fn::GetAtt': [Server, name]}", s) is None
    assert r("{'Fn::Join': ['-', [a, {Ref: Env}, 1]]}", s) == "a-prod-1"
    assert r("{'Fn::Base64': 'echo hi'}", s) == "echo hi"
    assert r("{'Fn::Select': ['2', {Ref: Zones}]}", s) == "c"
    assert r("{'Fn::Select': [9, {Ref: Zones}]}", s) == ""
    assert r("{'Fn::Select': [k, {k: v}]}", s) == "v"
    assert r("{'Fn::Split': [',', 'x,y']}", s) == ["x", "y"]
    assert r("{'Fn::FindInMap': [Images, {Ref: 'AWS::Region'}, x86]}", s) == "ami-123"
    assert r("{'Fn::GetAZs': ''}", s) == ["az1", "az2"]
    assert r("{'Fn::Replace': [{'%name%': {Ref: 'AWS::StackName'}}, 'I am %name%']}", s) == "I am mystack"
    assert r("{'Fn::If': [IsProd, p, d]}", s) == "p"
    assert r("{'Fn::If': [IsProd, p, d]}", cfn({"Env": "dev"})) == "d"
    assert s.conditions() == {"IsProd": True, "NotProd": False, "Both": True, "Either": True}
    with pytest.raises(FunctionError, match=re.escape("no value for Images.RegionOne.x86")):
        r("{'Fn::FindInMap': [Images, RegionOne, x86]}", s)
    with pytest.raises(InvalidTemplateReference, match='"Nope" \\(in Ref\\)'):
        r("{Ref: Nope}", s)
    with pytest.raises(FunctionError, match='Arguments to "Fn::Join"'):
        r("{'Fn::Join': [',', a]}", s)
    # HOT names are data in a CFN template
    assert r("{get_param: Env}", s) == {"get_param": "Env"}


def test_list_concat_filter_and_make_url() -> None:
    assert r("{list_concat: [[a, b], [b], null]}") == ["a", "b", "b"]
    assert r("{list_concat_unique: [[a, b], [b, c]]}") == ["a", "b", "c"]
    assert r("{filter: [[b, null], [a, b, null, c]]}") == ["a", "c"]
    assert r("""
make_url:
  scheme: https
  username: u s
  password: p@ss
  host: example.org
  port: 8443
  path: /v1/x y
  query: {a: '1', b: two}
  fragment: top
""") == "https://u%20s:p%40ss@example.org:8443/v1/x%20y?a=1&b=two#top"
    assert r("{make_url: {host: 'fd00::1', path: x}}") == "http://[fd00::1]/x"
    with pytest.raises(FunctionError, match="Invalid URL port 70000"):
        r("{make_url: {host: h, port: 70000}}")
    with pytest.raises(StackValidationFailed, match='"list_concat" is not supported'):
        r("{list_concat: [[a]]}", hot("2017-02-24"))
    assert r("{filter: [[a], [a, b]]}", hot("2017-02-24")) == ["b"]


def test_yaql_is_refused_clearly() -> None:
    with pytest.raises(StackValidationFailed, match=re.escape('The function "yaql" is not supported by this cloud.')):
        r("{yaql: {expression: '$.data', data: {}}}")


def test_get_attr_of_every_attribute() -> None:
    assert r("{get_attr: [server]}")["name"] == "web-1"
    with pytest.raises(FunctionError, match="must be a list"):
        r("{get_attr: [server]}", hot("2015-04-30"))
    assert r("{Condition: x}", cfn()) == {"Condition": "x"}


def test_repeat_cannot_build_without_bound() -> None:
    lists = ", ".join(f"k{i}: [a, b, c, d, e, f, g, h, i, j]" for i in range(6))
    with pytest.raises(FunctionError, match='"repeat" would build more than 100000 items'):
        r(f"{{repeat: {{for_each: {{{lists}}}, template: x}}}}")
