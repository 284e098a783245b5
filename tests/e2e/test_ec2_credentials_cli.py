"""EC2 credentials with the real `openstack` CLI (issue 13): create, list, show, delete, as the
demo user for themselves and the admin for another user; the demo user cannot reach the admin's.
Each CLI call costs about a second of start-up, so the checks around those commands (the project's
id, Keystone's /v3/credentials, the admin's own key and what is left) go through openstacksdk."""
from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.e2e


def test_openstack_ec2_credentials_create_list_show_delete(live_cloud):
    demo = {"user": "demo", "project": "demo"}
    demo_sdk, admin_sdk = live_cloud.sdk(user="demo"), live_cloud.sdk()
    made = json.loads(live_cloud.openstack("ec2", "credentials", "create", "-f", "json", **demo).stdout)
    assert len(made["access"]) == 32 and len(made["secret"]) == 32
    demo_id = admin_sdk.identity.find_project("demo", ignore_missing=False).id
    assert made["project_id"] == demo_id

    # (the session's cloud is shared: other tests' keys of demo may be listed too)
    listed = json.loads(live_cloud.openstack("ec2", "credentials", "list", "-f", "json", **demo).stdout)
    assert [(c["Access"], c["Secret"], c["Project ID"]) for c in listed if c["Access"] == made["access"]] == [
        (made["access"], made["secret"], demo_id)]
    shown = json.loads(live_cloud.openstack("ec2", "credentials", "show", made["access"], "-f", "json",
                                            **demo).stdout)
    assert shown["secret"] == made["secret"] and shown["user_id"] == made["user_id"]

    # the same key in Keystone's /v3/credentials
    creds = list(demo_sdk.identity.credentials())
    assert made["access"] in [json.loads(c.blob)["access"] for c in creds if c.type == "ec2"]

    # the admin makes one for demo in demo; demo cannot see or delete the admin's own
    for_demo = json.loads(live_cloud.openstack("ec2", "credentials", "create", "--user", "demo", "--project", "demo",
                                               "-f", "json").stdout)
    assert for_demo["user_id"] == made["user_id"]
    admin_ec2 = f"/users/{admin_sdk.current_user_id}/credentials/OS-EC2"
    made_by_admin = admin_sdk.identity.post(admin_ec2, json={"tenant_id": admin_sdk.current_project_id})
    assert made_by_admin.status_code == 201, made_by_admin.text
    admins = made_by_admin.json()["credential"]
    refused = live_cloud.openstack("ec2", "credentials", "delete", admins["access"], **demo, check=False)
    assert refused.returncode != 0
    assert admins["access"] in [c["access"] for c in admin_sdk.identity.get(admin_ec2).json()["credentials"]]

    live_cloud.openstack("ec2", "credentials", "delete", made["access"], for_demo["access"], **demo)
    left = demo_sdk.identity.get(f"/users/{made['user_id']}/credentials/OS-EC2").json()["credentials"]
    assert not {made["access"], for_demo["access"]} & {c["access"] for c in left}
    assert admin_sdk.identity.delete(f"{admin_ec2}/{admins['access']}").status_code == 204
