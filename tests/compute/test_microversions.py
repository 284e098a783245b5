"""Nova's microversions, one by one: each change is asked for with ``OpenStack-API-Version`` (or the
legacy ``X-OpenStack-Nova-API-Version``), its answer is checked against tempest's schema for that
version, and the version just below it still behaves as before. The advertised maximum
(serializers.MAX_VERSION) is the highest version whose whole history holds (test_versions.py).

Versions that change only APIs this cloud does not offer at any version (so a client sees the same
404 before and after them) need nothing here: 2.4 (os-fixed-ips), 2.12 (os-virtual-interfaces), 2.14
and 2.29 (evacuate), 2.18 (the project id in URLs, which the catalog never has), 2.20 (shelve),
2.22-2.25, 2.30 and 2.34 (live migration, servers/{id}/migrations, os-migrations), 2.31
(os-console-auth-tokens). 2.11, 2.15, 2.27 and 2.28 were already implemented (test_admin_api.py,
test_quotas_groups.py, test_versions.py)."""
from __future__ import annotations

import hashlib
import importlib
import sys
from datetime import timedelta
from typing import Any

import jsonschema
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.x509.oid import NameOID
from django.utils import timezone

from apps.compute.api.serializers import MAX_VERSION
from apps.compute.models import BlockDeviceMapping, ComputeNode, Instance, InstanceAction, KeyPair
from apps.compute.services import server_lifecycle, server_reports
from tests.compute.helpers import nova_error
from tests.compute.test_servers_api import TEMPEST_SITE, boot_active
from tests.compute.test_servers_support import Env, env_fixture, image_dir_fixture, reload  # noqa: F401

pytestmark = pytest.mark.django_db


def v(version: str, *, legacy: bool = False) -> dict[str, str]:
    return {"X-OpenStack-Nova-API-Version": version} if legacy else {"OpenStack-API-Version": f"compute {version}"}


def schema(version: str, module: str, name: str) -> dict[str, Any]:
    if not TEMPEST_SITE:
        pytest.skip("the tempest venv (.venv-tempest) is not built")
    if str(TEMPEST_SITE[0]) not in sys.path:
        sys.path.append(str(TEMPEST_SITE[0]))
    return getattr(importlib.import_module(f"tempest.lib.api_schema.response.compute.{version}.{module}"), name)


def valid(response: Any, version: str, module: str, name: str) -> dict[str, Any]:
    """The body, checked against tempest's strict schema ``version.module.name``."""
    expected = schema(version, module, name)
    assert response.status_code in expected["status_code"], (response.status_code, response.content[:800])
    body = response.json() if response.content else {}
    if "response_body" in expected:
        jsonschema.Draft4Validator(expected["response_body"],
                                   format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER).validate(body)
    return body


def test_the_advertised_maximum_is_the_last_version_implemented_here() -> None:
    assert MAX_VERSION == (2, 31)


# ---- 2.2: key pair type; create 201, delete 204 ------------------------------------------------

def _openssh() -> str:
    return ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def _certificate() -> tuple[str, str]:
    """A self-signed PEM certificate and Nova's fingerprint of it (SHA-1 of the DER, colon hex)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "someone")])
    now = timezone.now()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(7).not_valid_before(now).not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA256()))
    digest = hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), ":".join(
        digest[i:i + 2] for i in range(0, 40, 2))


@pytest.mark.parametrize("legacy", [False, True], ids=["header", "legacy-header"])
def test_2_2_keypair_type_and_status_codes(cloud, legacy):
    api, h = cloud.member, v("2.2", legacy=legacy)
    created = valid(api.post("os-keypairs", {"keypair": {"name": "k", "public_key": _openssh()}}, headers=h),
                    "v2_2", "keypairs", "create_keypair")["keypair"]
    assert created["type"] == "ssh"
    listed = valid(api.get("os-keypairs", headers=h), "v2_2", "keypairs", "list_keypairs")["keypairs"]
    assert listed[0]["keypair"]["type"] == "ssh"
    assert valid(api.get("os-keypairs/k", headers=h), "v2_2", "keypairs", "get_keypair")["keypair"]["type"] == "ssh"
    response = api.delete("os-keypairs/k", headers=h)
    assert response.status_code == 204 and not KeyPair.objects.exists()
    assert response["OpenStack-API-Version"] == "compute 2.2" and response["X-OpenStack-Nova-API-Version"] == "2.2"


def test_2_2_below_it_is_200_and_202_without_type(cloud):
    api = cloud.member
    response = api.post("os-keypairs", {"keypair": {"name": "k", "public_key": _openssh()}}, headers=v("2.1"))
    body = valid(response, "v2_1", "keypairs", "create_keypair")["keypair"]
    assert response.status_code == 200 and "type" not in body
    assert "type" not in api.get("os-keypairs").json()["keypairs"][0]["keypair"]
    assert "type" not in api.get("os-keypairs/k").json()["keypair"]
    # the type is not part of the 2.1 request: a 400, nothing stored
    nova_error(api.post("os-keypairs", {"keypair": {"name": "t", "type": "ssh"}}), 400, "badRequest")
    assert api.delete("os-keypairs/k").status_code == 202


def test_2_2_x509_keypairs_import_and_generate(cloud):
    api, h = cloud.member, v("2.2")
    pem, fingerprint = _certificate()
    imported = valid(api.post("os-keypairs", {"keypair": {"name": "cert", "type": "x509", "public_key": pem}},
                              headers=h), "v2_2", "keypairs", "create_keypair")["keypair"]
    assert imported["type"] == "x509" and imported["fingerprint"] == fingerprint
    assert KeyPair.objects.get(name="cert").type == "x509"
    generated = valid(api.post("os-keypairs", {"keypair": {"name": "gen", "type": "x509"}}, headers=h),
                      "v2_2", "keypairs", "create_keypair")["keypair"]
    cert = x509.load_pem_x509_certificate(generated["public_key"].encode())
    key = serialization.load_pem_private_key(generated["private_key"].encode(), password=None)
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == cloud.member_actor.user_id
    assert generated["fingerprint"] == ":".join(f"{b:02x}" for b in cert.fingerprint(hashes.SHA1()))
    # an SSH key is not a certificate (and the reverse), an unknown type is refused: 400, nothing stored
    nova_error(api.post("os-keypairs", {"keypair": {"name": "bad", "type": "x509", "public_key": _openssh()}},
                        headers=h), 400, "badRequest")
    nova_error(api.post("os-keypairs", {"keypair": {"name": "bad", "type": "ssh", "public_key": pem}},
                        headers=h), 400, "badRequest")
    nova_error(api.post("os-keypairs", {"keypair": {"name": "bad", "type": "pgp"}}, headers=h), 400, "badRequest")
    assert not KeyPair.objects.filter(name="bad").exists()


# ---- 2.3: more extended server attributes; delete_on_termination ----------------------------------

def test_2_3_extended_attributes_for_admins_and_delete_on_termination(env: Env) -> None:
    server = boot_active(env, user_data="IyEvYmluL3NoCmVjaG8gaGk=")
    BlockDeviceMapping.objects.create(instance=server, volume_id="8e5a6a3c-1c6e-4b59-8d52-55d2fdd9e4a1",
                                      device_name="/dev/vdb", delete_on_termination=True, status="attached")
    admin, member = env.cloud.admin, env.cloud.member
    shown = valid(admin.get(f"servers/{server.id}", headers=v("2.3")), "v2_3", "servers", "get_server")["server"]
    assert shown["OS-EXT-SRV-ATTR:reservation_id"] == server.reservation_id and server.reservation_id
    assert shown["OS-EXT-SRV-ATTR:launch_index"] == 0
    assert shown["OS-EXT-SRV-ATTR:hostname"] == "vm"
    assert shown["OS-EXT-SRV-ATTR:root_device_name"] == "/dev/vda"
    assert shown["OS-EXT-SRV-ATTR:user_data"] == "IyEvYmluL3NoCmVjaG8gaGk="
    assert shown["OS-EXT-SRV-ATTR:kernel_id"] == "" and shown["OS-EXT-SRV-ATTR:ramdisk_id"] == ""
    assert shown["os-extended-volumes:volumes_attached"] == [
        {"id": "8e5a6a3c-1c6e-4b59-8d52-55d2fdd9e4a1", "delete_on_termination": True}]
    listed = valid(admin.get("servers/detail?all_tenants=1", headers=v("2.3")), "v2_3", "servers",
                   "list_servers_detail")
    assert listed["servers"][0]["OS-EXT-SRV-ATTR:root_device_name"] == "/dev/vda"
    # a member sees delete_on_termination, never the admin's attributes
    mine = valid(member.get(f"servers/{server.id}", headers=v("2.3")), "v2_3", "servers", "get_server")["server"]
    assert "OS-EXT-SRV-ATTR:user_data" not in mine
    assert mine["os-extended-volumes:volumes_attached"][0]["delete_on_termination"] is True
    # at 2.2 none of it (tempest's 2.1 schema forbids the extra keys)
    old = valid(admin.get(f"servers/{server.id}", headers=v("2.2")), "v2_1", "servers", "get_server")["server"]
    assert "OS-EXT-SRV-ATTR:hostname" not in old
    assert old["os-extended-volumes:volumes_attached"] == [{"id": "8e5a6a3c-1c6e-4b59-8d52-55d2fdd9e4a1"}]


def test_2_3_root_device_of_a_server_booted_from_volume(env: Env) -> None:
    server = boot_active(env)
    BlockDeviceMapping.objects.create(instance=server, volume_id="0d3f0c1e-4ad4-4f7b-a0c7-0f6a3a9b8f10",
                                      device_name="/dev/sda", boot_index=0, status="attached")
    shown = env.cloud.admin.get(f"servers/{server.id}", headers=v("2.3")).json()["server"]
    assert shown["OS-EXT-SRV-ATTR:root_device_name"] == "/dev/sda"


# ---- 2.5: ip6 is a filter for non-admins ----------------------------------------------------------

def test_2_5_ip6_filter_for_non_admins(env: Env) -> None:
    server = boot_active(env)
    member, admin = env.cloud.member, env.cloud.admin
    # the server has no IPv6 address: where ip6 filters, nothing matches
    assert member.get("servers?ip6=fd00", headers=v("2.5")).json()["servers"] == []
    assert [s["id"] for s in member.get("servers?ip6=fd00", headers=v("2.4")).json()["servers"]] == [server.id]
    assert admin.get(f"servers?ip6=fd00&all_tenants=1&project_id={server.project_id}",
                     headers=v("2.1")).json()["servers"] == []


# ---- 2.6 / 2.8: remote consoles; the mks protocol ---------------------------------------------------

def test_2_6_remote_consoles_only_from_2_6_and_legacy_actions_below(env: Env) -> None:
    server = boot_active(env)
    api = env.cloud.member
    body = {"remote_console": {"protocol": "vnc", "type": "novnc"}}
    nova_error(api.post(f"servers/{server.id}/remote-consoles", body, headers=v("2.5")), 404)
    # the console actions are gone from 2.6: a 404, as Nova answers a method of no such version
    nova_error(api.post(f"servers/{server.id}/action", {"os-getVNCConsole": {"type": "novnc"}}, headers=v("2.6")),
               404, "itemNotFound")
    nova_error(api.post(f"servers/{server.id}/action", {"os-getSerialConsole": {"type": "serial"}},
                        headers=v("2.6")), 404, "itemNotFound")


def test_2_8_mks_is_known_from_2_8(env: Env) -> None:
    server = boot_active(env)
    api = env.cloud.member
    body = {"remote_console": {"protocol": "mks", "type": "webmks"}}
    below = nova_error(api.post(f"servers/{server.id}/remote-consoles", body, headers=v("2.7")), 400, "badRequest")
    assert "Invalid input for field/attribute protocol" in below["message"]
    # from 2.8 the request is valid; this cloud has no VMware MKS console (as a Nova with [mks] disabled)
    at = nova_error(api.post(f"servers/{server.id}/remote-consoles", body, headers=v("2.8")), 400, "badRequest")
    assert at["message"] == "Unavailable console type webmks."


# ---- 2.9: locked ------------------------------------------------------------------------------------

def test_2_9_locked_in_show_list_update_and_rebuild(env: Env) -> None:
    server = boot_active(env)
    api = env.cloud.member
    assert api.post(f"servers/{server.id}/action", {"lock": None}).status_code == 202
    shown = valid(api.get(f"servers/{server.id}", headers=v("2.9")), "v2_9", "servers", "get_server")["server"]
    assert shown["locked"] is True
    listed = valid(api.get("servers/detail", headers=v("2.9")), "v2_9", "servers", "list_servers_detail")
    assert listed["servers"][0]["locked"] is True
    updated = valid(api.put(f"servers/{server.id}", {"server": {"name": "renamed"}}, headers=v("2.9")),
                    "v2_9", "servers", "update_server")["server"]
    assert updated["locked"] is True and updated["name"] == "renamed"
    assert api.post(f"servers/{server.id}/action", {"unlock": None}).status_code == 202
    rebuilt = valid(api.post(f"servers/{server.id}/action", {"rebuild": {"imageRef": env.image.id}},
                             headers=v("2.9")), "v2_9", "servers", "rebuild_server_with_admin_pass")["server"]
    assert rebuilt["locked"] is False
    old = valid(api.get(f"servers/{server.id}", headers=v("2.8")), "v2_3", "servers", "get_server")["server"]
    assert "locked" not in old


# ---- 2.10: key pairs of other users (admin) ------------------------------------------------------------

def test_2_10_admin_creates_and_reads_another_users_key_pairs(cloud):
    owner = cloud.member_actor.user_id
    h = v("2.10")
    created = cloud.admin.post("os-keypairs", {"keypair": {"name": "for-you", "user_id": owner}}, headers=h)
    assert created.status_code == 201, created.content
    assert created.json()["keypair"]["user_id"] == owner and KeyPair.objects.get(name="for-you").user_id == owner
    assert [k["keypair"]["name"] for k in cloud.member.get("os-keypairs").json()["keypairs"]] == ["for-you"]
    listed = cloud.admin.get(f"os-keypairs?user_id={owner}", headers=h).json()["keypairs"]
    assert [k["keypair"]["name"] for k in listed] == ["for-you"]
    # a member may not act for another user; below 2.10 user_id is no part of the body
    nova_error(cloud.member2.post("os-keypairs", {"keypair": {"name": "x", "user_id": owner}}, headers=h), 403)
    nova_error(cloud.admin.post("os-keypairs", {"keypair": {"name": "x", "user_id": owner}}, headers=v("2.9")),
               400, "badRequest")
    assert cloud.admin.delete(f"os-keypairs/for-you?user_id={owner}", headers=h).status_code == 204
    assert not KeyPair.objects.exists()


# ---- 2.13: server groups show whose they are --------------------------------------------------------------

def test_2_13_server_group_project_and_user(cloud):
    h = v("2.13")
    body = {"server_group": {"name": "g", "policies": ["anti-affinity"]}}
    group = valid(cloud.member.post("os-server-groups", body, headers=h), "v2_13", "server_groups",
                  "create_show_server_group")["server_group"]
    assert group["project_id"] == cloud.demo_project.id and group["user_id"] == cloud.member_actor.user_id
    valid(cloud.member.get("os-server-groups", headers=h), "v2_13", "server_groups", "list_server_groups")
    old = valid(cloud.member.get(f"os-server-groups/{group['id']}", headers=v("2.12")), "v2_1", "server_groups",
                "create_show_server_group")["server_group"]
    assert "project_id" not in old


# ---- 2.16: host_status --------------------------------------------------------------------------------------

def test_2_16_host_status_for_admins(env: Env) -> None:
    server = boot_active(env)
    admin, h = env.cloud.admin, v("2.16")
    node = ComputeNode.objects.get(host=server.host)

    def status() -> str:
        body = valid(admin.get(f"servers/{server.id}", headers=h), "v2_16", "servers", "get_server")["server"]
        return body["host_status"]

    assert status() == "UP"
    ComputeNode.objects.filter(pk=node.pk).update(enabled=False)
    assert status() == "MAINTENANCE"
    ComputeNode.objects.filter(pk=node.pk).update(enabled=True, last_heartbeat=timezone.now() - timedelta(hours=2))
    assert status() == "UNKNOWN"
    ComputeNode.objects.filter(pk=node.pk).update(forced_down=True)
    assert status() == "DOWN"
    listed = valid(admin.get("servers/detail?all_tenants=1", headers=h), "v2_16", "servers",
                   "list_servers_detail")["servers"]
    assert listed[0]["host_status"] == "DOWN"
    # a member does not see it (Nova's default policy), nor does anyone below 2.16
    assert "host_status" not in env.cloud.member.get(f"servers/{server.id}", headers=h).json()["server"]
    assert "host_status" not in admin.get(f"servers/{server.id}", headers=v("2.15")).json()["server"]
    # a server on no host yet shows ""
    waiting = env.boot(name="unplaced")
    type(waiting).objects.filter(pk=waiting.pk).update(host=None, node=None)
    assert admin.get(f"servers/{waiting.id}", headers=h).json()["server"]["host_status"] == ""
    assert reload(server).host == node.host


# ---- 2.17: trigger_crash_dump ------------------------------------------------------------------------------

def test_2_17_trigger_crash_dump(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(server_lifecycle, "_send", lambda task, **kw: sent.append((task, kw)))
    server = boot_active(env)
    api, h = env.cloud.member, v("2.17")
    url = f"servers/{server.id}/action"
    response = api.post(url, {"trigger_crash_dump": None}, headers=h)
    assert response.status_code == 202, response.content
    assert sent == [("trigger_crash_dump", {"queue": server.node.queue, "instance_id": server.id,
                                            "request_id": response["x-openstack-request-id"]})]
    action = InstanceAction.objects.get(instance=server, action="trigger_crash_dump")
    assert action.events.get().event == "compute_trigger_crash_dump"
    assert reload(server).task_state is None and reload(server).vm_state == "active"
    # below 2.17 there is no such action (Nova's bare 404); its body is null, nothing else
    nova_error(api.post(url, {"trigger_crash_dump": None}, headers=v("2.16")), 404, "itemNotFound")
    nova_error(api.post(url, {"trigger_crash_dump": {}}, headers=h), 400, "badRequest")
    nova_error(env.cloud.reader.post(url, {"trigger_crash_dump": None}, headers=h), 403)
    nova_error(env.cloud.other.post(url, {"trigger_crash_dump": None}, headers=h), 404)
    # locked by an admin, or not running: 409
    assert env.cloud.admin.post(url, {"lock": None}).status_code == 202
    nova_error(api.post(url, {"trigger_crash_dump": None}, headers=h), 409, "conflictingRequest")
    assert env.cloud.admin.post(url, {"unlock": None}).status_code == 202
    type(server).objects.filter(pk=server.pk).update(vm_state="stopped")
    nova_error(api.post(url, {"trigger_crash_dump": None}, headers=h), 409, "conflictingRequest")
    assert len(sent) == 1 and InstanceAction.objects.filter(action="trigger_crash_dump").count() == 1


# ---- 2.19: server description -------------------------------------------------------------------------------

def test_2_19_description_on_create_update_rebuild_and_show(env: Env) -> None:
    api, h = env.cloud.member, v("2.19")
    created = api.post("servers", {"server": {"name": "d", "imageRef": env.image.id, "flavorRef": env.tiny.flavorid,
                                              "networks": [{"uuid": env.network.id}], "description": "first"}},
                       headers=h)
    assert created.status_code == 202, created.content
    server_id = created.json()["server"]["id"]
    server = Instance.objects.get(pk=server_id)
    server_reports.server_spawned(instance_id=server_id, host=server.host, power_state=1)
    shown = valid(api.get(f"servers/{server_id}", headers=h), "v2_19", "servers", "get_server")["server"]
    assert shown["description"] == "first"
    listed = valid(api.get("servers/detail", headers=h), "v2_19", "servers", "list_servers_detail")["servers"]
    assert listed[0]["description"] == "first"
    updated = valid(api.put(f"servers/{server_id}", {"server": {"description": "second"}}, headers=h),
                    "v2_19", "servers", "update_server")["server"]
    assert updated["description"] == "second"
    rebuilt = valid(api.post(f"servers/{server_id}/action", {"rebuild": {"imageRef": env.image.id,
                                                                         "description": None}}, headers=h),
                    "v2_19", "servers", "rebuild_server_with_admin_pass")["server"]
    assert rebuilt["description"] is None and reload(server).description is None
    # below 2.19 the description is no part of any body: 400, nothing changed; not shown
    old = v("2.18")
    nova_error(api.put(f"servers/{server_id}", {"server": {"description": "x"}}, headers=old), 400, "badRequest")
    nova_error(api.post(f"servers/{server_id}/action", {"rebuild": {"imageRef": env.image.id, "description": "x"}},
                        headers=old), 400, "badRequest")
    nova_error(api.post("servers", {"server": {"name": "d2", "imageRef": env.image.id, "flavorRef": "1",
                                               "description": "x"}}, headers=old), 400, "badRequest")
    assert reload(server).description is None
    assert "description" not in api.get(f"servers/{server_id}", headers=old).json()["server"]
    nova_error(api.put(f"servers/{server_id}", {"server": {"description": "y" * 256}}, headers=h), 400)


# ---- 2.21: a deleted server's instance actions -----------------------------------------------------------

def test_2_21_actions_of_a_deleted_server(env: Env) -> None:
    server = boot_active(env)
    api, admin = env.cloud.member, env.cloud.admin
    request_id = api.post(f"servers/{server.id}/action", {"lock": None}).get("x-openstack-request-id")
    Instance.objects.filter(pk=server.pk).update(deleted=True, vm_state="deleted", deleted_at=timezone.now())
    url = f"servers/{server.id}/os-instance-actions"
    listed = valid(api.get(url, headers=v("2.21")), "v2_1", "servers", "list_instance_actions")["instanceActions"]
    assert {a["action"] for a in listed} == {"create", "lock"}
    shown = valid(api.get(f"{url}/{request_id}", headers=v("2.21")), "v2_1", "servers", "show_instance_action")
    assert shown["instanceAction"]["action"] == "lock"
    nova_error(env.cloud.other.get(url, headers=v("2.21")), 404)  # still another project's
    # before 2.21 a deleted server is not found, not even by an admin
    for client in (api, admin):
        nova_error(client.get(url, headers=v("2.20")), 404, "itemNotFound")
        nova_error(client.get(f"{url}/{request_id}", headers=v("2.20")), 404, "itemNotFound")


# ---- 2.26: tags in the server's bodies ---------------------------------------------------------------------

def test_2_26_tags_in_show_list_update_and_rebuild(env: Env) -> None:
    server = boot_active(env)
    api, h = env.cloud.member, v("2.26")
    assert api.put(f"servers/{server.id}/tags", {"tags": ["web", "blue"]}, headers=h).status_code == 200
    shown = valid(api.get(f"servers/{server.id}", headers=h), "v2_26", "servers", "get_server")["server"]
    assert shown["tags"] == ["blue", "web"]
    listed = valid(api.get("servers/detail?tags=web", headers=h), "v2_26", "servers", "list_servers_detail")
    assert [s["tags"] for s in listed["servers"]] == [["blue", "web"]]
    updated = valid(api.put(f"servers/{server.id}", {"server": {"name": "n"}}, headers=h), "v2_26", "servers",
                    "update_server")["server"]
    assert updated["tags"] == ["blue", "web"]
    rebuilt = valid(api.post(f"servers/{server.id}/action", {"rebuild": {"imageRef": env.image.id}}, headers=h),
                    "v2_26", "servers", "rebuild_server_with_admin_pass")["server"]
    assert rebuilt["tags"] == ["blue", "web"]
    # below 2.26: no tags in the bodies, no tags resource, the filter is not one
    old = v("2.25")
    assert "tags" not in valid(api.get(f"servers/{server.id}", headers=old), "v2_19", "servers",
                               "get_server")["server"]
    nova_error(api.get(f"servers/{server.id}/tags", headers=old), 404)
    assert len(api.get("servers?tags=nothing-has-it", headers=old).json()["servers"]) == 1
    assert api.get("servers?tags=nothing-has-it", headers=h).json()["servers"] == []


# ---- not yet: 2.32 device tags, 2.37 networks "auto" / "none" ---------------------------------------------

@pytest.mark.parametrize("server", [
    {"networks": "none"}, {"networks": "auto"},
    {"networks": [{"uuid": "NET", "tag": "nic1"}]},
    {"block_device_mapping_v2": [{"boot_index": 0, "uuid": "IMAGE", "source_type": "image",
                                  "destination_type": "local", "tag": "root"}]},
])
def test_what_later_versions_add_to_a_server_create_is_refused_up_to_the_maximum(env: Env, server) -> None:
    body = {"name": "x", "imageRef": env.image.id, "flavorRef": env.tiny.flavorid,
            "networks": [{"uuid": env.network.id}], **server}
    if isinstance(body["networks"], list):
        body["networks"] = [{**n, "uuid": env.network.id} for n in body["networks"]]
    for bdm in body.get("block_device_mapping_v2", []):
        bdm["uuid"] = env.image.id
    for version in ("2.1", "2.31"):
        error = nova_error(env.cloud.member.post("servers", {"server": body}, headers=v(version)), 400, "badRequest")
        assert "networks" in error["message"] or "tag" in error["message"], error
    assert not Instance.objects.exists()
