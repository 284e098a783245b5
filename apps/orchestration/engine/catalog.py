"""What ``GET /template_versions`` and ``/template_versions/{version}/functions`` report."""
from __future__ import annotations

from typing import Any

from apps.orchestration.engine.errors import InvalidTemplateVersion
from apps.orchestration.engine.functions import (
    CFN_CONDITION_FUNCTIONS,
    CFN_FUNCTIONS,
    hot_condition_functions,
    hot_functions,
)
from apps.orchestration.engine.parse import CFN_KEY, CFN_VERSIONS, HOT_KEY, HOT_NAMES, HOT_VERSIONS

DESCRIPTIONS = {
    "get_param": "A function for resolving parameter references.",
    "get_resource": "A function for resolving resource references.",
    "get_attr": "A function for resolving resource attributes.",
    "get_file": "A function for including a file inline.",
    "str_replace": "A function for performing string substitutions.",
    "str_replace_strict": "A function for performing string substitutions; every key must be in the template.",
    "str_replace_vstrict": "Like str_replace_strict, and every value must be non-empty.",
    "list_join": "A function for joining one or more lists of strings.",
    "str_split": "A function for splitting delimited strings into a list.",
    "repeat": "A function for iterating over a list of items.",
    "map_merge": "A function for merging maps.",
    "map_replace": "A function for performing substitutions on maps.",
    "digest": "A function for performing digest operations.",
    "if": "A function to return corresponding value based on condition evaluation.",
    "equals": "A function for comparing whether two values are equal.",
    "not": "A function that acts as a NOT operator on a condition.",
    "and": "A function that acts as an AND operator on conditions.",
    "or": "A function that acts as an OR operator on conditions.",
    "contains": "A function for checking whether specific value is in sequence.",
    "filter": "A function for filtering out values from lists.",
    "list_concat": "A function for extending lists.",
    "list_concat_unique": "A function for extending lists with unique items.",
    "make_url": "A function for performing URL construction.",
    "Ref": "A function for resolving parameters or resource references.",
    "Condition": "A function for referencing a condition by name.",
}


def template_versions() -> list[dict[str, Any]]:
    versions: list[dict[str, Any]] = [
        {"version": f"{CFN_KEY}.{v}", "type": "cfn", "aliases": []} for v in CFN_VERSIONS]
    for date, name in HOT_VERSIONS.items():
        versions.append({"version": f"{HOT_KEY}.{date}", "type": "hot",
                         "aliases": [f"{HOT_KEY}.{name}"] if name else []})
    return versions


def template_functions(version: str, *, with_condition_functions: bool = False) -> list[dict[str, str]]:
    """``version`` as the API names it: ``heat_template_version.2021-04-16`` (or ``.wallaby``) or
    ``AWSTemplateFormatVersion.2010-09-09``."""
    key, _, value = version.partition(".")
    if key == HOT_KEY and HOT_NAMES.get(value, value) in HOT_VERSIONS:
        date = HOT_NAMES.get(value, value)
        names = hot_condition_functions(date) if with_condition_functions else hot_functions(date)
    elif key == CFN_KEY and value in CFN_VERSIONS:
        names = CFN_CONDITION_FUNCTIONS if with_condition_functions else CFN_FUNCTIONS
    else:
        raise InvalidTemplateVersion(explanation=f"Invalid template version: {version}")
    return [{"functions": name, "description": DESCRIPTIONS.get(name, f"The {name} function.")}
            for name in sorted(names)]
