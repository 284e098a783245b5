"""Parameters: types, defaults, hidden, constraints, custom constraints, groups, CFN Parameters."""
from __future__ import annotations

import re

import pytest

from apps.orchestration.engine import (
    ConstraintRegistry,
    Environment,
    StackContext,
    StackValidationFailed,
    Template,
    UnknownUserParameter,
    UserParameterMissing,
)

HEAD = "heat_template_version: 2021-04-16\n"


def bind(params: str, given: dict[str, object] | None = None, **kwargs: object) -> dict[str, object]:
    tmpl = Template.parse(HEAD + "parameters:\n" + params)
    tmpl.validate()
    return tmpl.stack(parameters=given, **kwargs).parameters.values  # type: ignore[arg-type]


def refused(params: str, given: dict[str, object], message: str) -> None:
    with pytest.raises(StackValidationFailed) as exc:
        bind(params, given)
    assert str(exc.value) == message


def test_types_convert_values() -> None:
    values = bind("""
  s: {type: string}
  n: {type: number}
  f: {type: number}
  j: {type: json}
  l: {type: comma_delimited_list}
  b: {type: boolean}
""", {"s": 5, "n": "42", "f": "2.5", "j": '{"a": [1]}', "l": "a, b,c", "b": "yes"})
    assert values == {"s": "5", "n": 42, "f": 2.5, "j": {"a": [1]}, "l": ["a", "b", "c"], "b": True}


@pytest.mark.parametrize(("ptype", "value", "message"), [
    ("number", "ten", 'Parameter \'p\' is invalid: Value "ten" is invalid for data type "number".'),
    ("boolean", "maybe", 'Parameter \'p\' is invalid: Unrecognized value "maybe", acceptable values are: true, false.'),
    ("json", "{nope", "Parameter 'p' is invalid: Value must be valid JSON: Expecting property name enclosed in "
                      "double quotes: line 1 column 2 (char 1)"),
])
def test_type_errors(ptype: str, value: str, message: str) -> None:
    refused(f"  p: {{type: {ptype}}}\n", {"p": value}, message)


def test_defaults_environment_defaults_and_missing() -> None:
    spec = "  a: {type: string, default: x}\n  b: {type: number}\n"
    assert bind(spec, {"b": 1}) == {"a": "x", "b": 1}
    env = Environment(parameter_defaults={"a": "from-env", "b": 2})
    assert bind(spec, {}, environment=env) == {"a": "from-env", "b": 2}
    env = Environment(parameters={"b": 3}, parameter_defaults={"b": 2})
    assert bind(spec, {}, environment=env)["b"] == 3
    assert bind(spec, {"b": 4}, environment=env)["b"] == 4
    with pytest.raises(UserParameterMissing, match=re.escape("The Parameter (b) was not provided.")):
        bind(spec, {})
    with pytest.raises(UnknownUserParameter, match=re.escape("The Parameter (c) was not defined in template.")):
        bind(spec, {"b": 1, "c": 2})


def test_hidden_parameters_are_masked_when_shown() -> None:
    tmpl = Template.parse(HEAD + "parameters:\n  pw: {type: string, hidden: true}\n  l: {type: comma_delimited_list}\n")
    shown = tmpl.stack(parameters={"pw": "secret", "l": "a,b"},
                       context=StackContext(stack_name="s", stack_id="i")).parameters.shown()
    assert shown["pw"] == "******"
    assert shown["l"] == "a,b"
    assert shown["OS::stack_name"] == "s"
    assert tmpl.parameter_schemas["pw"].hidden


def test_range() -> None:
    spec = "  p:\n    type: number\n    constraints:\n      - range: {min: 1, max: 10}\n"
    assert bind(spec, {"p": 10}) == {"p": 10}
    refused(spec, {"p": 11}, "Parameter 'p' is invalid: 11 is out of range (min: 1, max: 10)")
    refused(spec, {"p": 0.5}, "Parameter 'p' is invalid: 0.5 is out of range (min: 1, max: 10)")
    spec = "  p:\n    type: number\n    constraints:\n      - range: {min: 1}\n        description: At least one\n"
    refused(spec, {"p": 0}, "Parameter 'p' is invalid: At least one")


def test_length_on_strings_and_lists() -> None:
    spec = "  p:\n    type: string\n    constraints:\n      - length: {min: 2, max: 4}\n"
    assert bind(spec, {"p": "abcd"}) == {"p": "abcd"}
    refused(spec, {"p": "abcde"}, "Parameter 'p' is invalid: length (5) is out of range (min: 2, max: 4)")
    spec = "  p:\n    type: comma_delimited_list\n    constraints:\n      - length: {max: 2}\n"
    refused(spec, {"p": "a,b,c"}, "Parameter 'p' is invalid: length (3) is out of range (min: None, max: 2)")


def test_allowed_values() -> None:
    spec = "  p:\n    type: string\n    constraints:\n      - allowed_values: [m1.small, m1.large]\n"
    assert bind(spec, {"p": "m1.small"}) == {"p": "m1.small"}
    refused(spec, {"p": "m1.huge"},
            "Parameter 'p' is invalid: \"m1.huge\" is not an allowed value ['m1.small', 'm1.large']")
    spec = "  p:\n    type: number\n    constraints:\n      - allowed_values: [1, '2']\n"
    assert bind(spec, {"p": "2"}) == {"p": 2}
    spec = "  p:\n    type: comma_delimited_list\n    constraints:\n      - allowed_values: [a, b]\n"
    assert bind(spec, {"p": "a,b"}) == {"p": ["a", "b"]}
    refused(spec, {"p": "a,c"}, "Parameter 'p' is invalid: \"a,c\" is not an allowed value ['a', 'b']")


def test_allowed_pattern_matches_the_whole_value() -> None:
    spec = "  p:\n    type: string\n    constraints:\n      - allowed_pattern: '[a-z][a-z0-9]*'\n"
    assert bind(spec, {"p": "web1"}) == {"p": "web1"}
    refused(spec, {"p": "web-1"}, "Parameter 'p' is invalid: \"web-1\" does not match pattern \"[a-z][a-z0-9]*\"")
    refused(spec, {"p": "1web"}, "Parameter 'p' is invalid: \"1web\" does not match pattern \"[a-z][a-z0-9]*\"")


def test_allowed_pattern_is_pythons_regular_expression_language_as_in_heat() -> None:
    dotted = "  p:\n    type: string\n    constraints:\n      - allowed_pattern: '[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+'\n"
    assert bind(dotted, {"p": "10.0.0.1"}) == {"p": "10.0.0.1"}
    refused(dotted, {"p": "10.0.0"},
            "Parameter 'p' is invalid: \"10.0.0\" does not match pattern \"[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+\"")
    backref = "  p:\n    type: string\n    constraints:\n      - allowed_pattern: '(a|b)\\1+'\n"
    assert bind(backref, {"p": "aaa"}) == {"p": "aaa"}
    refused(backref, {"p": "ab"}, "Parameter 'p' is invalid: \"ab\" does not match pattern \"(a|b)\\1+\"")
    # Heat's re.match: the first match found must reach the end (an alternation does not retry for it)
    first = "  p:\n    type: string\n    constraints:\n      - allowed_pattern: 'a|ab'\n"
    refused(first, {"p": "ab"}, "Parameter 'p' is invalid: \"ab\" does not match pattern \"a|ab\"")


@pytest.mark.parametrize(("pattern", "reason"), [("(", "not a valid regular expression"),
                                                 ("[a-", "not a valid regular expression"),
                                                 ("a{3,1}", "not a valid regular expression"),
                                                 ("a" * 2049, "longer than 2048 characters")])
def test_bad_patterns_are_refused_at_parse_time(pattern: str, reason: str) -> None:
    with pytest.raises(StackValidationFailed, match=rf"Invalid parameter p: allowed_pattern is {reason}"):
        Template.parse(HEAD + f"parameters:\n  p:\n    type: string\n    constraints:\n"
                              f"      - allowed_pattern: \"{pattern}\"\n")


def test_constraint_definitions_are_checked() -> None:
    for body, message in [
        ("    type: string\n    constraints:\n      - range: {min: 1}\n",
         'range constraint invalid for parameter type "string"'),
        ("    type: number\n    constraints:\n      - range: {min: 5, max: 1}\n", '"range" min is greater than max'),
        ("    type: number\n    constraints:\n      - between: [1, 2]\n", "Invalid constraint ['between']"),
        ("    type: string\n    constraints:\n      - allowed_values: []\n", "allowed_values must be a non-empty list"),
        ("    type: string\n    constraints: {length: {min: 1}}\n", "constraints must be a list"),
        ("    type: string\n    secret: true\n", '"secret" is not a valid keyword inside a parameter definition'),
    ]:
        with pytest.raises(StackValidationFailed, match=re.escape(message)):
            Template.parse(HEAD + "parameters:\n  p:\n" + body)


def test_a_default_must_meet_its_constraints() -> None:
    tmpl = Template.parse(HEAD + "parameters:\n  p:\n    type: number\n    default: 50\n    constraints:\n"
                                 "      - range: {max: 10}\n")
    with pytest.raises(StackValidationFailed, match=re.escape("50 is out of range (min: None, max: 10)")):
        tmpl.validate()


def test_custom_constraints_use_the_registry() -> None:
    registry = ConstraintRegistry()
    flavors = {"m1.small", "m1.tiny"}

    def flavor(value: object, context: object) -> bool:
        return value in flavors

    def image(value: object, context: object) -> None:
        if value != "cirros":
            raise ValueError(f"The Image ({value}) could not be found.")

    registry.register("nova.flavor", flavor)
    registry.register("glance.image", image)
    spec = ("  f:\n    type: string\n    constraints:\n      - custom_constraint: nova.flavor\n"
            "  i:\n    type: string\n    constraints:\n      - custom_constraint: glance.image\n"
            "  k:\n    type: string\n    default: x\n    constraints:\n      - custom_constraint: nova.keypair\n")
    tmpl = Template.parse(HEAD + "parameters:\n" + spec)
    tmpl.validate(registry=registry)  # custom constraints need the cloud: not checked on defaults
    with pytest.raises(StackValidationFailed) as exc:
        tmpl.stack(parameters={"f": "m1.small", "i": "cirros"}, registry=registry)
    assert str(exc.value) == "Parameter 'k' is invalid: \"x\" does not validate nova.keypair (constraint not found)"
    registry.register("nova.keypair", lambda value, context: True)
    assert tmpl.stack(parameters={"f": "m1.small", "i": "cirros"}, registry=registry).parameters["f"] == "m1.small"
    with pytest.raises(StackValidationFailed) as exc:
        tmpl.stack(parameters={"f": "m1.huge", "i": "cirros"}, registry=registry)
    assert str(exc.value) == "Parameter 'f' is invalid: \"m1.huge\" does not validate nova.flavor"
    with pytest.raises(StackValidationFailed) as exc:
        tmpl.stack(parameters={"f": "m1.tiny", "i": "fedora"}, registry=registry)
    assert str(exc.value) == ("Parameter 'i' is invalid: \"fedora\" does not validate glance.image: "
                              "The Image (fedora) could not be found.")


def test_parameter_groups() -> None:
    params = "parameters:\n  a: {type: string}\n  b: {type: string}\n"
    ok = Template.parse(HEAD + "parameter_groups:\n- label: x\n  parameters: [a]\n- parameters: [b]\n" + params)
    ok.validate()
    for groups, message in [
        ("parameter_groups: {a: 1}\n", "Parameter Groups must be a list."),
        ("parameter_groups:\n- label: x\n", "Parameters must be provided for each Parameter Group."),
        ("parameter_groups:\n- parameters: a\n", "Parameters must be a list."),
        ("parameter_groups:\n- parameters: [c]\n", "The grouped parameter c does not reference a valid parameter."),
        ("parameter_groups:\n- parameters: [a]\n- parameters: [a]\n",
         "The a parameter must be assigned to one Parameter Group only."),
    ]:
        with pytest.raises(StackValidationFailed) as exc:
            Template.parse(HEAD + groups + params).validate()
        assert str(exc.value) == message


CFN = """AWSTemplateFormatVersion: '2010-09-09'
Parameters:
  KeyName: {Type: 'AWS::EC2::KeyPair::KeyName', Description: key}
  InstanceType:
    Type: String
    Default: m1.small
    AllowedValues: [m1.small, m1.large]
    ConstraintDescription: must be a valid instance type
  Size: {Type: Number, MinValue: 1, MaxValue: 100, Default: 10}
  Name: {Type: String, MinLength: 3, MaxLength: 8, AllowedPattern: '[a-z]+', Default: web}
  Zones: {Type: CommaDelimitedList, Default: 'a,b'}
  Password: {Type: String, NoEcho: 'true', Default: pw}
Resources: {}
"""


def test_cfn_parameters() -> None:
    tmpl = Template.parse(CFN)
    tmpl.validate()
    assert tmpl.parameter_schemas["KeyName"].type == "string"
    assert tmpl.parameter_schemas["KeyName"].original_type == "AWS::EC2::KeyPair::KeyName"
    values = tmpl.stack(parameters={"KeyName": "k"}).parameters.values
    assert values == {"KeyName": "k", "InstanceType": "m1.small", "Size": 10, "Name": "web", "Zones": ["a", "b"],
                      "Password": "pw"}
    assert tmpl.parameter_schemas["Password"].hidden
    for given, message in [
        ({"InstanceType": "t2.micro"}, "Parameter 'InstanceType' is invalid: must be a valid instance type"),
        ({"Size": 101}, "Parameter 'Size' is invalid: 101 is out of range (min: 1, max: 100)"),
        ({"Name": "ab"}, "Parameter 'Name' is invalid: length (2) is out of range (min: 3, max: 8)"),
        ({"Name": "abc1"}, "Parameter 'Name' is invalid: \"abc1\" does not match pattern \"[a-z]+\""),
    ]:
        with pytest.raises(StackValidationFailed) as exc:
            tmpl.stack(parameters={"KeyName": "k", **given})
        assert str(exc.value) == message
    with pytest.raises(StackValidationFailed, match=re.escape("Invalid type (Text)")):
        Template.parse("AWSTemplateFormatVersion: '2010-09-09'\nParameters:\n  p: {Type: Text}\n")
