"""tempest's compute API tests for what Stratus's Nova serves so far (versions, flavors with access
and extra specs, key pairs, availability zones, quotas, limits, server groups), against the running
cloud with tempest's strict per-microversion response schemas. Skipped without .venv-tempest."""
from __future__ import annotations

import configparser
import json
import os
import re
import subprocess

import pytest

from tests.e2e import tempest_support as ts

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not ts.TEMPEST_READY, reason=(
        f"tempest ({ts.TEMPEST_REQUIREMENT}) is not installed in {ts.TEMPEST_VENV}: make it with `make venv-tempest`")),
]

RESULT = re.compile(r"^\{\d+\} (tempest\.\S+?)(?:\[[^\]]*\])? \[[\d.]+s\] \.\.\. (ok|FAILED)$", re.MULTILINE)

CLASSES = [
    r"tempest\.api\.compute\.test_versions\.",
    r"tempest\.api\.compute\.flavors\.",
    r"tempest\.api\.compute\.admin\.test_flavors\.",
    r"tempest\.api\.compute\.admin\.test_flavors_negative\.",
    r"tempest\.api\.compute\.admin\.test_flavors_access\.",
    r"tempest\.api\.compute\.admin\.test_flavors_access_negative\.",
    r"tempest\.api\.compute\.admin\.test_flavors_extra_specs\.",
    r"tempest\.api\.compute\.admin\.test_flavors_extra_specs_negative\.",
    r"tempest\.api\.compute\.keypairs\.",
    r"tempest\.api\.compute\.servers\.test_availability_zone\.",
    # the negative limits test boots a server over the metadata limit: servers come later
    r"tempest\.api\.compute\.limits\.test_absolute_limits\.",
    r"tempest\.api\.compute\.test_quotas\.",
    r"tempest\.api\.compute\.servers\.test_server_group\.",
    r"tempest\.api\.compute\.admin\.test_quotas\.",
]

# tests that boot servers (not served yet)
NEEDS_SERVERS = ["test_create_server_with_non_public_flavor", "test_boot_with_low_ram",
                 "test_create_server_with_scheduler_hint_group"]


def compute_workspace(workspace, *, base_url: str, admin_password: str):
    path = ts.write_workspace(workspace, auth_url=base_url.rstrip("/") + "/identity/v3",
                              admin_password=admin_password, services=("nova", "glance", "neutron"))
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(path)
    conf["compute"] = {"flavor_ref": "1", "flavor_ref_alt": "2", "region": "RegionOne",
                       "endpoint_type": "public", "min_microversion": "2.1", "max_microversion": "2.1"}
    conf["compute-feature-enabled"]["api_extensions"] = "all"
    with open(path, "w") as fh:
        conf.write(fh)
    return path


def test_tempest_compute_foundation(live_cloud, tmp_path):
    compute_workspace(tmp_path, base_url=live_cloud.url, admin_password=live_cloud.admin_password)
    regex = "^(?!.*(" + "|".join(NEEDS_SERVERS) + "))(" + "|".join(CLASSES) + ")"
    result = ts.run(tmp_path, regex=regex, concurrency=2, timeout=900)
    (tmp_path / "stdout.txt").write_text(result.stdout)
    outcomes = RESULT.findall(result.stdout)
    failed = sorted({name for name, status in outcomes if status == "FAILED"})
    passed = {name for name, status in outcomes if status == "ok"}
    print(f"tempest compute: {len(passed)} passed, {len(failed)} failed")
    assert not failed, (failed, result.stdout[-6000:])
    assert len(passed) >= 60, result.stdout[-6000:]


# tempest's ServersTestJSON run on a server booted from a volume (tempest makes the volume from the
# image, then boots it with block_device_mapping_v2 source volume → volume, delete_on_termination) and
# the two negative BDM tests (a root volume that is not bootable, an invalid destination). By default
# (about 30 s); STRATUS_TEMPEST_BFV_ALL=1 adds the volume boot scenarios (boot from a volume snapshot,
# from an image made by createImage of a volume-backed server, snapshots while stopped: 40 s more).
BOOT_FROM_VOLUME = (r"^tempest\.api\.compute\.servers\.(test_create_server\.ServersTestBootFromVolume\.|"
                    r"test_servers_negative\.ServersNegativeTestJSON\.(test_create_server_from_non_bootable_volume|"
                    r"test_create_server_invalid_bdm_in_2nd_dict))")
BOOT_FROM_VOLUME_ALL = (r"^tempest\.(api\.compute\.servers\.(test_create_server\.ServersTestBootFromVolume\.|"
                        r"test_servers_negative\.ServersNegativeTestJSON\.(test_create_server_from_non_bootable_volume|"
                        r"test_create_server_invalid_bdm_in_2nd_dict))|scenario\.test_volume_boot_pattern\.)")


def test_tempest_servers_boot_from_volume(live_cloud, compute_nodes, storage_node, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = ts.write_workspace(tmp_path, auth_url=live_cloud.url.rstrip("/") + "/identity/v3",
                              admin_password=live_cloud.admin_password,
                              services=("nova", "glance", "neutron", "cinder"))
    disk = tmp_path / "tiny.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "64M"], check=True)
    image_id = json.loads(live_cloud.openstack("image", "create", "--file", str(disk), "--disk-format", "qcow2",
                                               "--container-format", "bare", "--public", "tempest-bfv-img",
                                               "-f", "json").stdout)["id"]
    conn = live_cloud.sdk()
    net = conn.network.create_network(name="tempest-bfv-net", is_shared=True)
    conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.78.0.0/24", name="tempest-bfv-subnet")
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(path)
    conf["compute"] = {"flavor_ref": "1", "flavor_ref_alt": "2", "region": "RegionOne", "endpoint_type": "public",
                       "min_microversion": "2.1", "max_microversion": "2.1", "image_ref": image_id,
                       "image_ref_alt": image_id, "fixed_network_name": "tempest-bfv-net", "build_timeout": "120",
                       "build_interval": "1"}
    conf["compute-feature-enabled"].update({"api_extensions": "all", "config_drive": "true",
                                            "personality": "false", "change_password": "false",
                                            "attach_encrypted_volume": "false"})
    conf["volume"] = {"catalog_type": "block-storage", "endpoint_type": "public", "region": "RegionOne",
                      "volume_size": "1", "build_timeout": "120"}
    conf["network-feature-enabled"] = {"ipv6": "false"}
    with open(path, "w") as fh:
        conf.write(fh)
    whole = bool(os.environ.get("STRATUS_TEMPEST_BFV_ALL"))
    regex = os.environ.get("STRATUS_TEMPEST_BFV_REGEX") or (BOOT_FROM_VOLUME_ALL if whole else BOOT_FROM_VOLUME)
    result = ts.run(tmp_path, regex=regex, concurrency=1, timeout=600)
    (tmp_path / "stdout.txt").write_text(result.stdout)
    outcomes = RESULT.findall(result.stdout)
    failed = sorted({name for name, status in outcomes if status == "FAILED"})
    passed = {name.rsplit(".", 1)[-1] for name, status in outcomes if status == "ok"}
    print(f"tempest boot from volume: {len(passed)} passed, {len(failed)} failed")
    if os.environ.get("STRATUS_TEMPEST_BFV_REGEX"):
        print("\n".join(line for line in result.stdout.splitlines() if line.startswith("{")))
    assert not failed, (failed, result.stdout[-8000:])
    expected = {"test_list_servers", "test_list_servers_with_detail", "test_verify_server_details",
                "test_create_server_from_non_bootable_volume", "test_create_server_invalid_bdm_in_2nd_dict"}
    if whole:
        expected |= {"test_create_server_from_volume_snapshot", "test_image_defined_boot_from_volume",
                     "test_bootable_volume_snapshot_stop_start_instance",
                     "test_bootable_volume_last_snapshot_delete_while_stopped"}
    assert expected <= passed, (sorted(expected - passed), result.stdout[-6000:])
    conn.network.delete_network(net)  # leave the shared cloud as found
