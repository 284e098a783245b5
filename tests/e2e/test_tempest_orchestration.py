"""heat-tempest-plugin's API tests (its gabbi files: stacks with update and patch, resources with
mark-unhealthy and signal, resource types, templates and validate, environments, software configs and
deployments) against the running cloud, as a Heat deployment is checked. Prints what passed; asserts
that none failed and that the run found the whole suite."""
from __future__ import annotations

import configparser
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import live_control_worker
from tests.e2e import tempest_support as ts

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not ts.TEMPEST_READY, reason=(
        f"tempest ({ts.TEMPEST_REQUIREMENT}) is not installed in {ts.TEMPEST_VENV}: make it with `make venv-tempest`")),
]

RESULT = re.compile(r"^\{\d+\} (heat_tempest_plugin\.\S+?)(?:\[[^\]]*\])? \[[\d.]+s\] \.\.\. (ok|FAILED)$",
                    re.MULTILINE)
API_TESTS = r"heat_tempest_plugin\.tests\.api\."
FLOOR = 45  # the gabbi tests of heat-tempest-plugin 3.0.0's six files


@pytest.fixture(scope="module")
def tempest_workspace(live_cloud: Any, tmp_path_factory: Any) -> Any:
    workspace = tmp_path_factory.mktemp("tempest-heat")
    path = ts.write_workspace(workspace, auth_url=live_cloud.auth_url, admin_password=live_cloud.admin_password,
                              services=("heat",))
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(path)
    conf["heat_plugin"] = {
        "auth_url": live_cloud.auth_url, "auth_version": "3", "username": "demo",
        "password": live_cloud.demo_password, "project_name": "demo", "admin_username": "admin",
        "admin_password": live_cloud.admin_password, "admin_project_name": "admin",
        "user_domain_name": "Default", "project_domain_name": "Default", "region": "RegionOne",
        "endpoint_type": "public", "catalog_type": "orchestration", "disable_ssl_certificate_validation": "true",
    }
    conf["heat_features_enabled"] = {"multi_cloud": "false", "stack_cancel": "true"}
    with open(path, "w") as fh:
        conf.write(fh)
    return workspace


@pytest.fixture(scope="module")
def heat_engine(live_cloud: Any) -> Iterator[Any]:
    """Orchestration's tasks run on the control queue: a worker of it for the live cloud, 4 threads."""
    with live_control_worker(live_cloud, name="heat-tempest", pool="threads", concurrency=4) as worker:
        yield worker


def test_heat_tempest_plugin_api(tempest_workspace: Any, heat_engine: Any) -> None:
    result = ts.run(tempest_workspace, regex=API_TESTS, timeout=900)
    output = result.stdout + result.stderr
    outcomes = dict(RESULT.findall(output))
    passed = sorted(name for name, outcome in outcomes.items() if outcome == "ok")
    failed = sorted(name for name, outcome in outcomes.items() if outcome != "ok")
    print(f"\nheat-tempest-plugin API: {len(passed)} passed, {len(failed)} failed")
    assert not failed and result.returncode == 0, f"failed: {failed}\n{output[-8000:]}"
    assert len(passed) >= FLOOR, (len(passed), output[-3000:])
