"""Template versions and the functions each offers, as the API will report them."""
from __future__ import annotations

import pytest

from apps.orchestration.engine import InvalidTemplateVersion
from apps.orchestration.engine.catalog import template_functions, template_versions


def test_versions() -> None:
    versions = {v["version"]: v for v in template_versions()}
    assert versions["heat_template_version.2021-04-16"]["aliases"] == ["heat_template_version.wallaby"]
    assert versions["AWSTemplateFormatVersion.2010-09-09"]["type"] == "cfn"
    assert len(versions) == 12


def test_functions_per_version() -> None:
    names = {f["functions"] for f in template_functions("heat_template_version.wallaby")}
    assert {"get_param", "get_attr", "str_replace_vstrict", "list_concat", "make_url", "if", "map_replace"} <= names
    assert "Fn::Select" not in names
    old = {f["functions"] for f in template_functions("heat_template_version.2014-10-16")}
    assert old == {"get_param", "get_resource", "get_attr", "get_file", "str_replace", "list_join", "Fn::Select"}
    conditions = {f["functions"] for f in template_functions("heat_template_version.2021-04-16",
                                                             with_condition_functions=True)}
    assert conditions == {"equals", "get_param", "not", "and", "or", "contains"}
    assert template_functions("heat_template_version.2015-10-15", with_condition_functions=True) == []
    cfn = {f["functions"] for f in template_functions("AWSTemplateFormatVersion.2010-09-09")}
    assert {"Ref", "Fn::GetAtt", "Fn::If", "Fn::FindInMap"} <= cfn
    with pytest.raises(InvalidTemplateVersion):
        template_functions("heat_template_version.2099-01-01")
