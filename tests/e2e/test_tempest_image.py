"""tempest's image (Glance v2) API tests against the running cloud: the basic operations (register,
upload, download, update, delete, deactivate/reactivate), version discovery, the negative tests,
members, tags and the glance-direct import (stage, import, image tasks).

STRATUS_TEMPEST_IMAGE_ALL=1 runs the whole image API suite, less the Glance APIs Stratus does not
serve (metadata definitions, the tasks API; multiple stores and web-download are not configured)."""
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
IMAGE_TESTS = {
    r"tempest\.api\.image\.v2\.test_images\.BasicOperationsImagesTest\.": 4,
    r"tempest\.api\.image\.v2\.test_versions\.": 1,
    r"tempest\.api\.image\.v2\.test_images_negative\.ImagesNegativeTest\.": 10,
    r"tempest\.api\.image\.v2\.test_images\.ImportImagesTest\.test_image_glance_direct_import": 1,
    r"tempest\.api\.image\.v2\.test_images_member\.": 6,
    r"tempest\.api\.image\.v2\.test_images_member_negative\.": 2,
    r"tempest\.api\.image\.v2\.test_images_tags": 3,
}
IMAGE_NOT_SERVED = ["metadefs", "test_image_task"]
IMAGE_ALL = r"^(?!.*(" + "|".join(IMAGE_NOT_SERVED) + r"))tempest\.api\.image\."


@pytest.fixture(scope="module")
def tempest_workspace(live_cloud, tmp_path_factory):
    workspace = tmp_path_factory.mktemp("tempest-image")
    ts.write_workspace(workspace, auth_url=live_cloud.auth_url, admin_password=live_cloud.admin_password,
                       services=("glance",))
    return workspace


def _run(workspace, regex: str) -> tuple[str, dict[str, str]]:
    result = ts.run(workspace, regex=regex, timeout=900)
    output = result.stdout + result.stderr
    outcomes = dict(RESULT.findall(output))
    failed = [name for name, outcome in outcomes.items() if outcome != "ok"]
    assert result.returncode == 0 and not failed, f"failed: {failed}\n{output[-8000:]}"
    return output, outcomes


def test_tempest_image_basic_versions_negative_members_tags(tempest_workspace):
    output, outcomes = _run(tempest_workspace, "|".join(IMAGE_TESTS))
    for pattern, count in IMAGE_TESTS.items():  # each group ran in full (a regex matching nothing passes)
        ran = [name for name in outcomes if re.match(pattern, name)]
        assert len(ran) == count, (pattern, ran, output[-3000:])
    assert re.search(r"Failed: 0\b", output), output[-3000:]


@opt_in_run("STRATUS_TEMPEST_IMAGE_ALL", "the whole image suite takes about a minute")
def test_tempest_image_api_suite(tempest_workspace):
    output, outcomes = _run(tempest_workspace, IMAGE_ALL)
    assert len(outcomes) >= 45, output[-3000:]
