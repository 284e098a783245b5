"""tempest's identity API-discovery and default-domain tests against the running cloud (issue 2,
"Done when"). tempest lives in its own virtualenv (.venv-tempest, made by `make test`); run bare pytest without
it and these tests are skipped, saying how to make it. STRATUS_TEMPEST_IDENTITY_ALL=1 also runs the whole
identity API suite, less the Keystone extensions Stratus does not serve."""
from __future__ import annotations

import re

import pytest

from tests.capabilities import opt_in_run
from tests.e2e import tempest_support as ts

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not ts.TEMPEST_READY, reason=(
        f"tempest ({ts.TEMPEST_REQUIREMENT}) is not installed in {ts.TEMPEST_VENV}: make it with `make venv-tempest`")),
]

RESULT = re.compile(r"^\{\d+\} (tempest\.\S+?)(?:\[[^\]]*\])? \[[\d.]+s\] \.\.\. (ok|FAILED)$", re.MULTILINE)


@pytest.fixture(scope="module")
def tempest_workspace(live_cloud, tmp_path_factory):
    workspace = tmp_path_factory.mktemp("tempest")
    ts.write_workspace(workspace, auth_url=live_cloud.auth_url, admin_password=live_cloud.admin_password)
    return workspace


def _run(workspace, regex: str) -> tuple[str, dict[str, str]]:
    result = ts.run(workspace, regex=regex, timeout=600)
    output = result.stdout + result.stderr
    outcomes = dict(RESULT.findall(output))
    failed = [name for name, outcome in outcomes.items() if outcome != "ok"]
    assert result.returncode == 0 and not failed, f"failed: {failed}\n{output[-8000:]}"
    return output, outcomes


def test_tempest_identity_discovery_and_default_domain(tempest_workspace):
    output, outcomes = _run(tempest_workspace, "|".join(ts.DONE_WHEN_TESTS))
    # each group ran and passed (a regex that matched nothing would "succeed" with no test at all)
    for pattern in ts.DONE_WHEN_TESTS:
        assert any(re.match(pattern, name) for name in outcomes), (pattern, output[-3000:])
    assert len(outcomes) == ts.DONE_WHEN_COUNT and re.search(r"Skipped: 0\b", output), output[-3000:]


@opt_in_run("STRATUS_TEMPEST_IDENTITY_ALL", "the whole identity suite takes about a minute")
def test_tempest_identity_api_suite(tempest_workspace):
    output, outcomes = _run(tempest_workspace, ts.IDENTITY_ALL)
    assert len(outcomes) >= 90, output[-3000:]
