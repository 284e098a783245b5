"""EC2 credentials with the real `openstack` CLI (issue 13): create, list, show, delete, as the
demo user for themselves and the admin for another user; the demo user cannot reach the admin's."""
from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.e2e


def test_openstack_ec2_credentials_create_list_show_delete(live_cloud):
    demo = {"user": "demo", "project": "demo"}
    made = json.loads(live_cloud.openstack("ec2", "credentials", "create", "-f", "json", **demo).stdout)
    assert len(made["access"]) == 32 and len(made["secret"]) == 32
    projects = json.loads(live_cloud.openstack("project", "list", "-f", "json").stdout)
    demo_id = next(p["ID"] for p in projects if p["Name"] == "demo")
    assert made["project_id"] == demo_id

    # (the session's cloud is shared: other tests' keys of demo may be listed too)
    listed = json.loads(live_cloud.openstack("ec2", "credentials", "list", "-f", "json", **demo).stdout)
    assert [(c["Access"], c["Secret"], c["Project ID"]) for c in listed if c["Access"] == made["access"]] == [
        (made["access"], made["secret"], demo_id)]
    shown = json.loads(live_cloud.openstack("ec2", "credentials", "show", made["access"], "-f", "json",
                                            **demo).stdout)
    assert shown["secret"] == made["secret"] and shown["user_id"] == made["user_id"]

    # the same key in Keystone's /v3/credentials
    creds = json.loads(live_cloud.openstack("credential", "list", "-f", "json", **demo).stdout)
    assert made["access"] in [json.loads(c["Data"])["access"] for c in creds if c["Type"] == "ec2"]

    # the admin makes one for demo in demo; demo cannot see or delete the admin's own
    for_demo = json.loads(live_cloud.openstack("ec2", "credentials", "create", "--user", "demo", "--project", "demo",
                                               "-f", "json").stdout)
    assert for_demo["user_id"] == made["user_id"]
    admins = json.loads(live_cloud.openstack("ec2", "credentials", "create", "-f", "json").stdout)
    refused = live_cloud.openstack("ec2", "credentials", "delete", admins["access"], **demo, check=False)
    assert refused.returncode != 0
    assert admins["access"] in live_cloud.openstack("ec2", "credentials", "list").stdout

    live_cloud.openstack("ec2", "credentials", "delete", made["access"], for_demo["access"], **demo)
    left = json.loads(live_cloud.openstack("ec2", "credentials", "list", "-f", "json", **demo).stdout)
    assert not {made["access"], for_demo["access"]} & {c["Access"] for c in left}
    live_cloud.openstack("ec2", "credentials", "delete", admins["access"])
