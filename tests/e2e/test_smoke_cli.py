import json

import pytest

pytestmark = pytest.mark.e2e


def test_token_issue_and_catalog_with_the_cli(live_cloud):
    token = json.loads(live_cloud.openstack("token", "issue", "-f", "json").stdout)
    assert token["project_id"] and token["user_id"]
    catalog = json.loads(live_cloud.openstack("catalog", "list", "-f", "json").stdout)
    assert {"identity", "compute", "image", "network", "volumev3", "object-store", "s3"} <= {c["Type"] for c in catalog}
