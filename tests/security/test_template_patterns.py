"""A template's allowed_pattern is the author's regular expression and the parameter value the stack
user's: a catastrophic pair (``(a|a)*$`` against ``aaaa…!``, exponential for a backtracking matcher)
must not hold the API worker. Each match has a time budget; past it the value is refused."""
from __future__ import annotations

import time

import pytest

from apps.orchestration.engine import StackValidationFailed, Template
from apps.orchestration.engine.parameters import MATCH_SECONDS


@pytest.mark.parametrize("pattern", ["(a|a)*$", "(a|aa)+$", "(aa|a)*$"])
def test_a_catastrophic_pattern_is_cut_off_within_its_budget(pattern: str) -> None:
    tmpl = Template.parse("heat_template_version: 2021-04-16\nparameters:\n  p:\n    type: string\n"
                          f"    constraints:\n      - allowed_pattern: '{pattern}'\n")
    tmpl.validate()
    started = time.monotonic()
    with pytest.raises(StackValidationFailed, match="matching took longer than"):
        tmpl.stack(parameters={"p": "a" * 60 + "!"})
    assert time.monotonic() - started < 20 * MATCH_SECONDS + 0.5


def test_a_list_of_values_costs_one_budget_each_and_stops_at_the_first_failure() -> None:
    tmpl = Template.parse("heat_template_version: 2021-04-16\nparameters:\n  p:\n    type: comma_delimited_list\n"
                          "    constraints:\n      - allowed_pattern: '(a|a)*$'\n")
    started = time.monotonic()
    with pytest.raises(StackValidationFailed, match="matching took longer than"):
        tmpl.stack(parameters={"p": ",".join(["a" * 60 + "!"] * 200)})
    assert time.monotonic() - started < 20 * MATCH_SECONDS + 0.5
