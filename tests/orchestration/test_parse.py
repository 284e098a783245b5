"""Safe parsing of HOT and CloudFormation: versions, formats, limits, malformed templates."""
from __future__ import annotations

import json
import re

import pytest

from apps.orchestration.engine import (
    InvalidTemplateFormat,
    InvalidTemplateSection,
    InvalidTemplateVersion,
    RequestLimitExceeded,
    StackValidationFailed,
    Template,
    check_nested_depth,
)
from apps.orchestration.engine.parse import HOT_VERSIONS, check_document, load


@pytest.mark.parametrize("version", [*HOT_VERSIONS, "newton", "ocata", "pike", "queens", "rocky", "wallaby"])
def test_every_hot_version_is_accepted_as_a_date_or_a_name(version: str) -> None:
    tmpl = Template.parse(f"heat_template_version: {version}\nresources: {{}}\n")
    assert tmpl.version.kind == "hot"
    assert tmpl.version.date in HOT_VERSIONS


def test_the_release_name_maps_to_its_date() -> None:
    assert Template.parse("heat_template_version: wallaby\n").version.date == "2021-04-16"
    assert Template.parse("heat_template_version: '2018-08-31'\n").version.date == "2018-08-31"


def test_an_unknown_version_is_refused_with_heats_message() -> None:
    with pytest.raises(InvalidTemplateVersion) as exc:
        Template.parse("heat_template_version: 2099-01-01\n")
    assert str(exc.value).startswith('The template version is invalid: "heat_template_version: 2099-01-01". '
                                     '"heat_template_version" should be one of: 2013-05-23')
    with pytest.raises(InvalidTemplateVersion, match="should be one of: 2010-09-09"):
        Template.parse('{"AWSTemplateFormatVersion": "2011-01-01"}')


def test_missing_and_ambiguous_versions() -> None:
    with pytest.raises(InvalidTemplateVersion, match="Template version was not provided"):
        Template.parse("resources: {}\n")
    with pytest.raises(InvalidTemplateVersion, match="Ambiguous versions"):
        Template.parse("heat_template_version: 2015-10-15\nAWSTemplateFormatVersion: 2010-09-09\n")


def test_cfn_json_and_yaml() -> None:
    doc = {"AWSTemplateFormatVersion": "2010-09-09", "Resources": {"r": {"Type": "OS::Heat::None"}}}
    assert Template.parse(json.dumps(doc)).version.kind == "cfn"
    assert Template.parse("AWSTemplateFormatVersion: '2010-09-09'\nResources:\n  r: {Type: OS::Heat::None}\n"
                          ).resources["r"].type == "OS::Heat::None"


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string", "42", ""])
def test_a_template_that_is_not_a_mapping(text: str) -> None:
    with pytest.raises(InvalidTemplateFormat, match="not a JSON object or YAML mapping"):
        Template.parse(text)


@pytest.mark.parametrize("text", ["heat_template_version: [unclosed\n", '{"a": ', "a: b: c\n", "key: *nope\n"])
def test_syntax_errors_are_template_format_errors(text: str) -> None:
    with pytest.raises(InvalidTemplateFormat, match="Error parsing template"):
        Template.parse(text)


def test_unsafe_yaml_tags_are_refused() -> None:
    with pytest.raises(InvalidTemplateFormat):
        Template.parse("heat_template_version: 2015-10-15\nx: !!python/object/apply:os.system ['true']\n")


def test_template_size_limit() -> None:
    big = "heat_template_version: 2015-10-15\ndescription: " + "x" * 524288 + "\n"
    with pytest.raises(RequestLimitExceeded) as exc:
        Template.parse(big)
    assert str(exc.value) == (f"Request limit exceeded: Template size ({len(big)} bytes) exceeds maximum "
                              "allowed size (524288 bytes).")


def test_resource_count_limit() -> None:
    resources = "".join(f"  r{i}: {{type: OS::Heat::None}}\n" for i in range(1001))
    with pytest.raises(RequestLimitExceeded, match=r"Maximum resources per stack exceeded\."):
        Template.parse("heat_template_version: 2015-10-15\nresources:\n" + resources)
    resources = "".join(f"  r{i}: {{type: OS::Heat::None}}\n" for i in range(1000))
    assert len(Template.parse("heat_template_version: 2015-10-15\nresources:\n" + resources).resources) == 1000


def test_nested_stack_depth_limit() -> None:
    check_nested_depth(5)
    with pytest.raises(RequestLimitExceeded, match=r"Recursion depth exceeds 5\."):
        check_nested_depth(6)


def test_document_depth_and_alias_bombs_are_refused() -> None:
    deep = "heat_template_version: 2015-10-15\ndescription: " + "[" * 150 + "]" * 150 + "\n"
    with pytest.raises(RequestLimitExceeded, match="depth"):
        Template.parse(deep)
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(7))
    with pytest.raises(RequestLimitExceeded, match="elements"):
        load(bomb)
    check_document({"a": [1, 2, {"b": 3}]})


def test_unknown_sections_are_refused() -> None:
    with pytest.raises(InvalidTemplateSection, match=r"The template section is invalid: resource$"):
        Template.parse("heat_template_version: 2015-10-15\nresource: {}\n")
    with pytest.raises(InvalidTemplateSection, match="conditions"):
        Template.parse("heat_template_version: 2016-04-08\nconditions: {}\n")
    with pytest.raises(InvalidTemplateSection, match="resources"):
        Template.parse("AWSTemplateFormatVersion: '2010-09-09'\nresources: {}\n")


@pytest.mark.parametrize(("body", "message"), [
    ("resources: []\n", "The resources section must be a map."),
    ("resources:\n  r: [a]\n", "Resource r must be a map"),
    ("resources:\n  r: {properties: {}}\n", 'Resource r is missing "type"'),
    ("resources:\n  r: {type: 5}\n", "Resource r type type must be a string"),
    ("resources:\n  r: {type: X, propertys: {}}\n", '"propertys" is not a valid keyword inside a resource definition'),
    ("resources:\n  r: {type: X, properties: [1]}\n", "Resource r properties type must be a map"),
    ("resources:\n  r: {type: X, deletion_policy: Keep}\n", 'Invalid deletion policy "Keep"'),
    ("resources:\n  r: {type: X, depends_on: [1]}\n", "depends_on type must be a list of strings"),
    ("outputs:\n  o: {description: x}\n", "Each output definition must contain a value key. (o)"),
    ("parameters:\n  p: {type: integer}\n", "Invalid parameter p: Invalid type (integer)"),
    ("parameters:\n  p: {default: 1}\n", "Invalid parameter p: Missing parameter type"),
])
def test_malformed_templates_say_what_is_wrong(body: str, message: str) -> None:
    with pytest.raises(StackValidationFailed, match=re.escape(message)):
        Template.parse("heat_template_version: 2015-10-15\n" + body)


def test_deletion_policy_is_normalised() -> None:
    tmpl = Template.parse("heat_template_version: 2015-10-15\nresources:\n  r: {type: X, deletion_policy: retain}\n")
    assert tmpl.resources["r"].deletion_policy == "Retain"


def test_very_deep_documents_fail_cleanly_in_json_and_yaml() -> None:
    with pytest.raises(RequestLimitExceeded, match="depth"):
        Template.parse('{"heat_template_version": "2015-10-15", "d": ' + "[" * 100000 + "]" * 100000 + "}")
    with pytest.raises((RequestLimitExceeded, InvalidTemplateFormat)):
        Template.parse("heat_template_version: 2015-10-15\ndescription: " + "[" * 100000 + "]" * 100000)
