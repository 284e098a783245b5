"""Nova's API foundation with the real `openstack` CLI and openstacksdk: flavors (private, access,
properties), key pairs (import; generate with the private key printed once), availability zones,
quota and limits. Each CLI call costs about a second of start-up, so the CLI test types the commands
and reads what they print, and the lists and shows that check their effect go through openstacksdk."""
from __future__ import annotations

import json
import secrets
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

pytestmark = pytest.mark.e2e


def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def _json(result: subprocess.CompletedProcess) -> dict | list:
    return json.loads(result.stdout)


def test_compute_foundation_with_the_cli(live_cloud, tmp_path):
    def os_(*args: str, user: str = "admin", check: bool = True) -> subprocess.CompletedProcess:
        result = live_cloud.openstack(*args, user=user, check=False)
        if check:
            assert result.returncode == 0, (args, result.stderr[-3000:])
        return result

    demo, admin = live_cloud.sdk(user="demo"), live_cloud.sdk()

    # flavors: the bootstrap's, show by name (GET /flavors/<name> is a 404, then the list)
    names = [f["Name"] for f in _json(os_("flavor", "list", "-f", "json", user="demo"))]
    assert {"m1.tiny", "m1.small", "m1.medium", "m1.large", "m1.nano"} <= set(names)
    tiny = _json(os_("flavor", "show", "m1.tiny", "-f", "json", user="demo"))
    assert tiny["ram"] == 512 and tiny["vcpus"] == 1 and tiny["disk"] == 1

    flavor = _name("f")
    result = os_("flavor", "create", "--private", "--ram", "256", "--vcpus", "2", "--disk", "3",
                 "--project", "demo", flavor, "-f", "json")
    assert "Failed" not in result.stderr, result.stderr
    created = _json(result)
    assert created["os-flavor-access:is_public"] is False and created["ram"] == 256
    assert flavor in [f.name for f in admin.compute.flavors(is_public=None)]
    assert flavor in [f.name for f in demo.compute.flavors()]
    os_("flavor", "set", "--property", "hw:cpu_policy=dedicated", flavor)
    assert admin.compute.fetch_flavor_extra_specs(created["id"]).extra_specs == {"hw:cpu_policy": "dedicated"}
    os_("flavor", "unset", "--property", "hw:cpu_policy", flavor)
    assert (admin.compute.fetch_flavor_extra_specs(created["id"]).extra_specs or {}) == {}
    denied = os_("flavor", "create", "--ram", "1", "--vcpus", "1", "--disk", "1", _name("x"), user="demo",
                 check=False)
    assert denied.returncode != 0 and "403" in denied.stderr
    os_("flavor", "delete", flavor)
    assert flavor not in [f.name for f in admin.compute.flavors(is_public=None)]

    # key pairs: import a public key, and generate one (private key printed once)
    public = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    (tmp_path / "k.pub").write_text(public + "\n")
    k1 = _json(os_("keypair", "create", "--public-key", str(tmp_path / "k.pub"), "k1", "-f", "json", user="demo"))
    assert k1["name"] == "k1" and len(k1["fingerprint"].split(":")) == 16
    # this CLI makes the key itself and uploads its public half; it prints the private key once
    k2 = os_("keypair", "create", "k2", user="demo")
    assert "PRIVATE KEY-----" in k2.stdout, k2.stdout[:200]
    private = serialization.load_ssh_private_key(k2.stdout.strip().encode(), password=None)
    k2_public = private.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                  serialization.PublicFormat.OpenSSH).decode()
    listed = {k.name: k for k in demo.compute.keypairs()}
    assert set(listed) == {"k1", "k2"} and listed["k1"].fingerprint == k1["fingerprint"]
    shown = _json(os_("keypair", "show", "k2", "-f", "json", user="demo"))
    assert "PRIVATE" not in json.dumps(shown) and shown["name"] == "k2"
    assert demo.compute.get_keypair("k2").public_key.split()[:2] == k2_public.split()[:2]
    assert list(admin.compute.keypairs()) == []  # admin's own key pairs: none
    os_("keypair", "delete", "k1", "k2", user="demo")
    assert list(demo.compute.keypairs()) == []

    # server groups
    group = _json(os_("server", "group", "create", "--policy", "anti-affinity", "sg", "-f", "json", user="demo"))
    assert group["policies"] in (["anti-affinity"], "anti-affinity"), group
    assert [g.name for g in demo.compute.server_groups()] == ["sg"]
    os_("server", "group", "delete", "sg", user="demo")
    assert list(demo.compute.server_groups()) == []

    # availability zones, quotas, limits
    zones = list(demo.compute.availability_zones())
    assert [z.name for z in zones] == ["nova"] and zones[0].state == {"available": True}
    quota = _json(os_("quota", "show", "--compute", "demo", "-f", "json"))
    quota = {q["Resource"]: q["Limit"] for q in quota} if isinstance(quota, list) else quota
    assert quota.get("instances") == 10 and quota.get("key-pairs", quota.get("key_pairs")) == 100
    admin.compute.update_quota_set(admin.identity.find_project("demo", ignore_missing=False).id, instances=7)
    # `limits show` asks every limits API in the catalog: until the volume service exists its 501
    # stops the command, so the compute half is read with the CLI's own session (the SDK) then.
    result = os_("limits", "show", "--absolute", "-f", "json", user="demo", check=False)
    if result.returncode == 0:
        limits = {row["Name"]: row["Value"] for row in _json(result)}
    else:
        assert "volume service" in result.stderr and "501" in result.stderr, result.stderr
        absolute = live_cloud.sdk(user="demo").compute.get("/limits").json()["limits"]["absolute"]
        limits = dict(absolute)
    # the CLI names the compute limits by the SDK's attributes (instances, keypairs...), the raw API by Nova's
    assert limits.get("maxTotalInstances", limits.get("instances")) == 7
    assert limits.get("maxTotalKeypairs", limits.get("keypairs")) == 100
    assert limits.get("totalInstancesUsed", limits.get("total_instances_used")) == 0


def test_compute_foundation_with_the_sdk(live_cloud):
    conn = live_cloud.sdk(user="demo")
    flavors = {f.name: f for f in conn.compute.flavors()}
    assert flavors["m1.small"].ram == 2048 and flavors["m1.small"].is_public is True
    assert conn.compute.find_flavor("m1.nano").vcpus == 1
    keypair = conn.compute.create_keypair(name="sdk-k")
    assert keypair.private_key.startswith("-----BEGIN") and keypair.fingerprint
    assert [k.name for k in conn.compute.keypairs()] == ["sdk-k"]
    assert conn.compute.get_keypair("sdk-k").private_key is None
    conn.compute.delete_keypair("sdk-k")
    group = conn.compute.create_server_group(name="g", policies=["anti-affinity"])
    assert conn.compute.get_server_group(group.id).policies == ["anti-affinity"]
    conn.compute.delete_server_group(group.id)
    assert [z.name for z in conn.compute.availability_zones()] == ["nova"]
    admin = live_cloud.sdk()
    demo_id = admin.identity.find_project("demo").id
    admin.compute.update_quota_set(demo_id, instances=9)
    assert conn.compute.get_limits().absolute.instances == 9
    private = admin.compute.create_flavor(name="sdk-private", ram=64, vcpus=1, disk=1, is_public=False)
    demo_project = admin.identity.find_project("demo")
    admin.compute.flavor_add_tenant_access(private, demo_project.id)
    assert "sdk-private" in [f.name for f in conn.compute.flavors()]
    admin.compute.delete_flavor(private)
