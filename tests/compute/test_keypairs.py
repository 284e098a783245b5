"""Key pairs: import (ssh-rsa, ssh-ed25519, ecdsa) with Nova's MD5 fingerprint, server-side
generation (private key once, never stored), per-user scoping, key_pairs quota under concurrency."""
import base64
import hashlib
import subprocess
import threading

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from django.db import connection

from apps.compute.models import KeyPair
from apps.identity import services as identity_services
from tests.compute.helpers import nova_error

pytestmark = pytest.mark.django_db


def _openssh(private) -> str:
    return private.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                             serialization.PublicFormat.OpenSSH).decode()


def _md5(public_key: str) -> str:
    digest = hashlib.md5(base64.b64decode(public_key.split()[1])).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, 32, 2))


@pytest.mark.parametrize("make", [
    lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    lambda: ed25519.Ed25519PrivateKey.generate(),
    lambda: ec.generate_private_key(ec.SECP256R1()),
], ids=["rsa", "ed25519", "ecdsa"])
def test_import_computes_nova_fingerprint(cloud, make):
    public = _openssh(make()) + " me@host"
    response = cloud.member.post("os-keypairs", {"keypair": {"name": "k1", "public_key": public}})
    assert response.status_code == 200, response.content
    body = response.json()["keypair"]
    assert set(body) == {"name", "public_key", "fingerprint", "user_id"}
    assert body["fingerprint"] == _md5(public) and body["user_id"] == cloud.member_actor.user_id
    assert body["public_key"] == public


def test_fingerprint_matches_ssh_keygen(cloud, tmp_path):
    key = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    public = (tmp_path / "id.pub").read_text().strip()
    expected = subprocess.run(["ssh-keygen", "-l", "-E", "md5", "-f", str(tmp_path / "id.pub")],
                              capture_output=True, text=True, check=True).stdout.split()[1].removeprefix("MD5:")
    body = cloud.member.post("os-keypairs", {"keypair": {"name": "k", "public_key": public}}).json()["keypair"]
    assert body["fingerprint"] == expected


def test_generate_returns_private_key_once_and_never_stores_it(cloud):
    response = cloud.member.post("os-keypairs", {"keypair": {"name": "gen"}})
    assert response.status_code == 200
    body = response.json()["keypair"]
    assert body["private_key"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    private = serialization.load_pem_private_key(body["private_key"].encode(), password=None)
    assert _openssh(private) == " ".join(body["public_key"].split()[:2])
    assert body["fingerprint"] == _md5(body["public_key"])
    shown = cloud.member.get("os-keypairs/gen").json()["keypair"]
    assert "private_key" not in shown
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM compute_keypair")
        rows = cursor.fetchall()
    assert not any("PRIVATE KEY" in str(value) for row in rows for value in row)


def test_show_list_delete_and_bodies(cloud):
    public = _openssh(ed25519.Ed25519PrivateKey.generate())
    cloud.member.post("os-keypairs", {"keypair": {"name": "b", "public_key": public}})
    cloud.member.post("os-keypairs", {"keypair": {"name": "a", "public_key": public}})
    listed = cloud.member.get("os-keypairs").json()["keypairs"]
    assert [k["keypair"]["name"] for k in listed] == ["a", "b"]
    assert all(set(k["keypair"]) == {"name", "public_key", "fingerprint"} for k in listed)
    shown = cloud.member.get("os-keypairs/a").json()["keypair"]
    assert set(shown) == {"name", "public_key", "fingerprint", "user_id", "id", "created_at", "updated_at",
                          "deleted", "deleted_at"}
    assert isinstance(shown["id"], int) and shown["deleted"] is False
    assert cloud.member.delete("os-keypairs/a").status_code == 202
    nova_error(cloud.member.get("os-keypairs/a"), 404, "itemNotFound")
    nova_error(cloud.member.delete("os-keypairs/a"), 404)


def test_key_pairs_are_per_user(cloud):
    public = _openssh(ed25519.Ed25519PrivateKey.generate())
    cloud.member.post("os-keypairs", {"keypair": {"name": "mine", "public_key": public}})
    # another user of the same project and another project's user see nothing
    assert cloud.member2.get("os-keypairs").json()["keypairs"] == []
    nova_error(cloud.member2.get("os-keypairs/mine"), 404)
    nova_error(cloud.other.delete("os-keypairs/mine"), 404)
    # the same name is free for another user
    assert cloud.member2.post("os-keypairs", {"keypair": {"name": "mine", "public_key": public}}).status_code == 200
    # ?user_id= counts from microversion 2.10 (below it is ignored: the caller's own key pairs)
    v210 = {"OpenStack-API-Version": "compute 2.10"}
    nova_error(cloud.member.get(f"os-keypairs?user_id={cloud.member2_actor.user_id}", headers=v210), 403)
    assert cloud.admin.get(f"os-keypairs/mine?user_id={cloud.member_actor.user_id}", headers=v210).status_code == 200
    assert cloud.member.get(f"os-keypairs?user_id={cloud.member2_actor.user_id}").json()["keypairs"][0][
        "keypair"]["name"] == "mine"
    nova_error(cloud.admin.get(f"os-keypairs/mine?user_id={cloud.member_actor.user_id}"), 404)
    assert KeyPair.objects.count() == 2


def test_reader_cannot_create_or_delete(cloud):
    nova_error(cloud.reader.post("os-keypairs", {"keypair": {"name": "r"}}), 403)
    assert cloud.reader.get("os-keypairs").status_code == 200


@pytest.mark.parametrize("body", [
    {"name": "bad/name!", "public_key": None}, {"name": "", "public_key": None}, {"name": "x" * 256},
    {"name": "k", "public_key": "ssh-rsa notbase64"}, {"name": "k", "public_key": "hello"},
    {"name": "k", "public_key": 5},
])
def test_invalid_input_is_400_nothing_stored(cloud, body):
    body = {k: v for k, v in body.items() if v is not None}
    nova_error(cloud.member.post("os-keypairs", {"keypair": body}), 400, "badRequest")
    assert KeyPair.objects.count() == 0


def test_duplicate_name_is_409(cloud):
    cloud.member.post("os-keypairs", {"keypair": {"name": "dup"}})
    nova_error(cloud.member.post("os-keypairs", {"keypair": {"name": "dup"}}), 409, "conflictingRequest")


def test_quota_key_pairs(cloud):
    identity_services.quota_set(actor=cloud.admin_actor, project_id=cloud.demo_project.id, limits={"key_pairs": 2})
    public = _openssh(ed25519.Ed25519PrivateKey.generate())
    for name in ("q1", "q2"):
        assert cloud.member.post("os-keypairs", {"keypair": {"name": name, "public_key": public}}).status_code == 200
    nova_error(cloud.member.post("os-keypairs", {"keypair": {"name": "q3", "public_key": public}}), 403, "forbidden")
    # per user: another member of the project still has room
    assert cloud.member2.post("os-keypairs", {"keypair": {"name": "q1", "public_key": public}}).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_quota_key_pairs_under_concurrency(cloud):
    identity_services.quota_set(actor=cloud.admin_actor, project_id=cloud.demo_project.id, limits={"key_pairs": 3})
    public = _openssh(ed25519.Ed25519PrivateKey.generate())
    from apps.compute import services

    results: list[str] = []

    def create(i: int) -> None:
        try:
            services.keypair_create(actor=cloud.member_actor, name=f"c{i}", public_key=public)
            results.append("ok")
        except Exception as exc:  # noqa: BLE001 - the test counts the outcomes
            results.append(type(exc).__name__)
        finally:
            connection.close()

    threads = [threading.Thread(target=create, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 3, results
    assert set(results) == {"ok", "NovaQuotaExceeded"}
    assert KeyPair.objects.filter(user_id=cloud.member_actor.user_id).count() == 3


def test_keypair_list_costs_constant_queries(cloud):
    from django.test.utils import CaptureQueriesContext

    public = _openssh(ed25519.Ed25519PrivateKey.generate())

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert cloud.member.get("os-keypairs").status_code == 200
        return len(ctx)

    cloud.member.post("os-keypairs", {"keypair": {"name": "first", "public_key": public}})
    few = count()
    for i in range(12):
        cloud.member.post("os-keypairs", {"keypair": {"name": f"k{i}", "public_key": public}})
    assert count() == few
