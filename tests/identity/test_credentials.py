"""Keystone's credentials (/v3/credentials) and their EC2 view (OS-EC2), through the API: a user
manages their own, an admin everyone's; the blob is encrypted at rest; EC2 authentication."""
from __future__ import annotations

import hashlib
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.core.errors import BadRequest
from apps.identity import services as identity
from apps.identity.models import Credential

pytestmark = pytest.mark.django_db


def _ec2_body(project_id: str, user_id: str, access: str = "AK1", secret: str = "S1") -> dict:
    return {"credential": {"type": "ec2", "user_id": user_id, "project_id": project_id,
                           "blob": json.dumps({"access": access, "secret": secret})}}


def test_create_show_list_update_delete_own_credential(cloud):
    me = cloud.member_actor.user.id
    made = cloud.member.post("credentials", _ec2_body(cloud.demo_project.id, me))
    assert made.status_code == 201, made.content
    cred = made.json()["credential"]
    assert cred["id"] == hashlib.sha256(b"AK1").hexdigest()
    assert json.loads(cred["blob"]) == {"access": "AK1", "secret": "S1"}
    assert cred["user_id"] == me and cred["project_id"] == cloud.demo_project.id and cred["type"] == "ec2"
    assert cred["links"]["self"].endswith(f"/identity/v3/credentials/{cred['id']}")

    shown = cloud.member.get(f"credentials/{cred['id']}").json()["credential"]
    assert shown == cred
    listed = cloud.member.get("credentials").json()["credentials"]
    assert [c["id"] for c in listed] == [cred["id"]]
    assert cloud.member.get("credentials?type=cert").json()["credentials"] == []

    other = cloud.member.post("credentials", {"credential": {"type": "cert", "user_id": me, "blob": "pem"}})
    assert other.status_code == 201
    cert_id = other.json()["credential"]["id"]
    patched = cloud.member.patch(f"credentials/{cert_id}", {"credential": {"blob": "pem2"}})
    assert patched.status_code == 200 and patched.json()["credential"]["blob"] == "pem2"

    assert cloud.member.delete(f"credentials/{cred['id']}").status_code == 204
    assert cloud.member.get(f"credentials/{cred['id']}").status_code == 404


def test_blob_is_encrypted_at_rest(cloud):
    me = cloud.member_actor.user.id
    cloud.member.post("credentials", _ec2_body(cloud.demo_project.id, me, secret="the-secret-value"))
    row = Credential.objects.get()
    assert "the-secret-value" not in row.encrypted_blob and "AK1" not in row.encrypted_blob
    with connection.cursor() as cursor:
        cursor.execute("SELECT encrypted_blob FROM identity_credential")
        (stored,) = cursor.fetchone()
    assert "the-secret-value" not in stored
    assert json.loads(row.blob)["secret"] == "the-secret-value"


def test_duplicate_access_key_conflicts(cloud):
    me = cloud.member_actor.user.id
    assert cloud.member.post("credentials", _ec2_body(cloud.demo_project.id, me)).status_code == 201
    again = cloud.admin.post("credentials", _ec2_body(cloud.demo_project.id, me, secret="other"))
    assert again.status_code == 409 and again.json()["error"]["code"] == 409


@pytest.mark.parametrize("body, why", [
    ({"type": "ec2", "blob": "not json"}, "blob"),
    ({"type": "ec2", "blob": json.dumps({"access": "x"})}, "blob"),
    ({"type": "ec2", "blob": json.dumps({"access": "x", "secret": "y"}), "project_id": None}, "project_id"),
    ({"type": "", "blob": "b"}, "type"),
    ({"type": "ec2", "blob": 5}, "blob"),
])
def test_bad_bodies_are_400_and_store_nothing(cloud, body, why):
    body = {"user_id": cloud.member_actor.user.id, "project_id": cloud.demo_project.id, **body}
    r = cloud.member.post("credentials", {"credential": body})
    assert r.status_code == 400, r.content
    assert r.json()["error"]["code"] == 400 and why in r.json()["error"]["message"]
    assert not Credential.objects.exists()


def test_a_user_manages_only_their_own(cloud):
    alice, olga = cloud.member_actor.user.id, cloud.other_actor.user.id
    # not for someone else
    r = cloud.member.post("credentials", _ec2_body(cloud.demo_project.id, olga))
    assert r.status_code == 403
    # not in a project the user holds no role on
    r = cloud.member.post("credentials", _ec2_body(cloud.other_project.id, alice))
    assert r.status_code == 400 and "project" in r.json()["error"]["message"]
    cred_id = cloud.member.post("credentials", _ec2_body(cloud.demo_project.id, alice)).json()["credential"]["id"]
    # olga sees nothing of it, changes nothing, cannot take it over
    assert cloud.other.get(f"credentials/{cred_id}").status_code == 404
    assert cloud.other.get("credentials").json()["credentials"] == []
    assert cloud.other.get(f"credentials?user_id={alice}").json()["credentials"] == []
    assert cloud.other.patch(f"credentials/{cred_id}", {"credential": {"user_id": olga}}).status_code == 404
    assert cloud.other.delete(f"credentials/{cred_id}").status_code == 404
    # alice cannot give it to olga either
    assert cloud.member.patch(f"credentials/{cred_id}", {"credential": {"user_id": olga}}).status_code == 403
    # nor move it to a project she has no role on
    r = cloud.member.patch(f"credentials/{cred_id}", {"credential": {"project_id": cloud.other_project.id}})
    assert r.status_code == 400
    # nor change the access key its id is made of
    r = cloud.member.patch(f"credentials/{cred_id}",
                           {"credential": {"blob": json.dumps({"access": "AK2", "secret": "S"})}})
    assert r.status_code == 400
    row = Credential.objects.get()
    assert row.user_id == alice and row.project_id == cloud.demo_project.id and json.loads(row.blob)["access"] == "AK1"
    # the admin sees and manages everyone's
    assert cloud.admin.get(f"credentials/{cred_id}").status_code == 200
    assert [c["id"] for c in cloud.admin.get(f"credentials?user_id={alice}").json()["credentials"]] == [cred_id]
    assert cloud.admin.delete(f"credentials/{cred_id}").status_code == 204


def test_os_ec2_create_list_show_delete(cloud):
    me = cloud.member_actor.user.id
    base = f"users/{me}/credentials/OS-EC2"
    r = cloud.member.post(base, {"tenant_id": cloud.demo_project.id})
    assert r.status_code == 201, r.content
    cred = r.json()["credential"]
    assert cred["tenant_id"] == cloud.demo_project.id and cred["user_id"] == me
    assert len(cred["access"]) == 32 and len(cred["secret"]) == 32 and cred["trust_id"] is None
    assert cred["links"]["self"].endswith(f"{base}/{cred['access']}")
    # the same credential in /v3/credentials
    assert cloud.member.get(f"credentials/{hashlib.sha256(cred['access'].encode()).hexdigest()}").status_code == 200
    assert cloud.member.get(base).json()["credentials"] == [cred]
    assert cloud.member.get(f"{base}/{cred['access']}").json()["credential"] == cred
    # another user: 403 on the user's collection (Keystone's), nothing shown
    assert cloud.other.get(base).status_code == 403
    assert cloud.other.get(f"{base}/{cred['access']}").status_code == 403
    assert cloud.other.delete(f"{base}/{cred['access']}").status_code == 403
    olga = cloud.other_actor.user.id
    assert cloud.other.get(f"users/{olga}/credentials/OS-EC2/{cred['access']}").status_code == 404
    assert cloud.other.delete(f"users/{olga}/credentials/OS-EC2/{cred['access']}").status_code == 404
    # not in a project without a role; no body is a 400
    assert cloud.member.post(base, {"tenant_id": cloud.other_project.id}).status_code == 400
    assert cloud.member.post(base, {}).status_code == 400
    assert cloud.member.delete(f"{base}/{cred['access']}").status_code == 204
    assert cloud.member.get(f"{base}/{cred['access']}").status_code == 404
    assert not Credential.objects.exists()


def test_lists_cost_constant_queries(cloud):
    me = cloud.member_actor.user.id
    base = f"users/{me}/credentials/OS-EC2"

    def count(path: str) -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert cloud.member.get(path).status_code == 200
        return len(ctx.captured_queries)

    cloud.member.post(base, {"tenant_id": cloud.demo_project.id})
    count("credentials")  # the token's first use may fill caches: measure from the second
    one, one_ec2 = count("credentials"), count(base)
    for _ in range(5):
        cloud.member.post(base, {"tenant_id": cloud.demo_project.id})
    count("credentials")  # a credential saved changes the identity epoch (token_cache.py): caches refill
    assert (count("credentials"), count(base)) == (one, one_ec2)


def test_ec2_authenticate(cloud):
    me = cloud.member_actor.user.id
    cred = identity.ec2_credential_create(actor=cloud.member_actor, user_id=me, project_id=cloud.demo_project.id)
    blob = json.loads(cred.blob)
    seen = []
    actor = identity.ec2_authenticate(access=blob["access"], check=lambda s: seen.append(s) or True)
    assert seen == [blob["secret"]]
    assert actor.user_id == me and actor.project_id == cloud.demo_project.id and "member" in actor.roles
    with pytest.raises(identity.SignatureMismatch):
        identity.ec2_authenticate(access=blob["access"], check=lambda s: False)
    with pytest.raises(identity.UnknownAccessKey):
        identity.ec2_authenticate(access="nope", check=lambda s: True)
    # the role gone: the key no longer works
    from apps.identity.models import Role
    identity.role_revoke(actor=cloud.admin_actor, role_id=Role.objects.get(name="member").id, user_id=me,
                         project_id=cloud.demo_project.id)
    with pytest.raises(identity.UnknownAccessKey):
        identity.ec2_authenticate(access=blob["access"], check=lambda s: True)


def test_restricted_application_credential_cannot_make_credentials(cloud):
    me = cloud.member_actor.user.id
    _, secret = identity.application_credential_create(actor=cloud.member_actor, user_id=me, name="r")
    token, _ = identity.token_issue(auth=identity.AuthRequest(methods=("application_credential",),
                                                              app_cred_name="r", app_cred_user={"id": me},
                                                              secret=secret))
    r = cloud.member.post(f"users/{me}/credentials/OS-EC2", {"tenant_id": cloud.demo_project.id}, token=token)
    assert r.status_code == 403
    with pytest.raises(BadRequest):
        identity.credential_create(actor=cloud.member_actor, user_id=me, type="ec2", blob="{}",
                                   project_id=cloud.demo_project.id)
