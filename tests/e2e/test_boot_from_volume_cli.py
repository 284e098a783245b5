"""Boot from volume with the real `openstack` CLI on a live cloud with two compute nodes (libvirt test
driver) and a real storage agent: `volume create --image --bootable`, `server create --volume --wait`
(ACTIVE, the volume in-use at /dev/vda), `server image create` of that volume-backed server (volume
snapshots behind an image with no data) and `server create --image <that image> --wait` (its root
volume made from the snapshot); deleting the servers leaves no claim and no attachment. The setup and
the checks go through openstacksdk (the CLI only for the issue's named flow)."""
from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import time
from typing import Any

import pytest

pytestmark = pytest.mark.e2e


def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def _claims(conn: Any) -> tuple[int, int]:
    hypervisors = list(conn.compute.hypervisors(details=True))
    return (sum(h.vcpus_used or 0 for h in hypervisors), sum(h.memory_used or 0 for h in hypervisors))


def test_boot_from_volume_with_the_cli(live_cloud, compute_nodes, storage_node, tmp_path) -> None:  # type: ignore[no-untyped-def]
    if shutil.which("qemu-img") is None:
        pytest.skip("qemu-img is missing")

    def os_(*args: str) -> Any:
        result = live_cloud.openstack(*args, check=False)
        assert result.returncode == 0, (args, result.stderr[-3000:])
        return json.loads(result.stdout) if "json" in args else result.stdout

    conn = live_cloud.sdk()
    img, bv, vm1, vm2, snap = _name("bfv-img"), _name("bv"), _name("bfv1"), _name("bfv2"), _name("bfv-snap")
    disk = tmp_path / "tiny.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "64M"], check=True)
    image = conn.image.create_image(name=img, filename=str(disk), disk_format="qcow2", container_format="bare",
                                    visibility="public")
    net = conn.network.create_network(name=_name("bfv-net"))
    conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.33.0.0/24")
    before = _claims(conn)

    os_("volume", "create", "--image", img, "--size", "1", "--bootable", bv, "-f", "json")
    volume = conn.block_storage.wait_for_status(conn.block_storage.find_volume(bv), "available", wait=120)
    assert volume.is_bootable and (storage_node.root / f"volume-{volume.id}.qcow2").is_file()

    started = time.monotonic()
    server = os_("server", "create", "--volume", bv, "--flavor", "m1.tiny", "--network", net.id, "--wait", vm1,
                 "-f", "json")
    print(f"\nserver create --volume --wait: ACTIVE in {time.monotonic() - started:.2f} s (the CLI polls every 5 s)")
    assert server["status"] == "ACTIVE", server
    assert server["image"] in ("", "N/A (booted from volume)"), server["image"]
    volume = conn.block_storage.get_volume(volume.id)
    assert volume.status == "in-use"
    [attachment] = volume.attachments
    assert attachment["server_id"] == server["id"] and attachment["device"] == "/dev/vda"

    started = time.monotonic()
    os_("server", "image", "create", "--name", snap, "--wait", vm1)
    print(f"server image create --wait: {time.monotonic() - started:.2f} s")
    made = conn.image.find_image(snap)
    assert made.status == "active" and not made.size
    props = made.properties
    [mapping] = json.loads(props["block_device_mapping"])
    assert (mapping["source_type"], mapping["destination_type"], mapping["boot_index"]) == ("snapshot", "volume", 0)
    assert str(props["bdm_v2"]) in ("True", "true") and props["root_device_name"] == "/dev/vda"
    snapshot = conn.block_storage.get_snapshot(mapping["snapshot_id"])
    assert snapshot.volume_id == volume.id and snapshot.status == "available"

    second = os_("server", "create", "--image", snap, "--flavor", "m1.tiny", "--network", net.id, "--wait", vm2,
                 "-f", "json")
    assert second["status"] == "ACTIVE", second
    [root] = [v for v in conn.block_storage.volumes(details=True)
              if any(a["server_id"] == second["id"] for a in v.attachments)]
    assert root.snapshot_id == snapshot.id and root.status == "in-use"
    assert root.attachments[0]["device"] == "/dev/vda"

    servers = [conn.compute.get_server(server_id) for server_id in (server["id"], second["id"])]
    for row in servers:
        conn.compute.delete_server(row)
    for row in servers:
        conn.compute.wait_for_delete(row, wait=60)
    for vid in (volume.id, root.id):  # delete_on_termination was false for both: kept, detached
        kept = conn.block_storage.wait_for_status(conn.block_storage.get_volume(vid), "available", wait=60)
        assert kept.attachments == []
    assert _claims(conn) == before

    # POST → ACTIVE of a boot from an existing volume, polled closely (openstacksdk), and the volume
    # deleted with the server (delete_on_termination)
    started = time.monotonic()
    tiny = conn.compute.find_flavor("m1.tiny")
    third = conn.compute.create_server(name=_name("bfv3"), image_id="", flavor_id=tiny.id,
                                       networks=[{"uuid": net.id}], block_device_mapping=[{
                                           "uuid": root.id, "source_type": "volume", "destination_type": "volume",
                                           "boot_index": 0, "delete_on_termination": True}])
    while (status := conn.compute.get_server(third.id).status) == "BUILD":
        assert time.monotonic() - started < 60, "boot from volume not ACTIVE after 60 s"
        time.sleep(0.05)
    print(f"boot from an existing volume: POST → {status} in {time.monotonic() - started:.2f} s")
    assert status == "ACTIVE"
    conn.compute.delete_server(third)
    conn.compute.wait_for_delete(third, wait=60)
    conn.block_storage.wait_for_delete(root, wait=60)
    assert _claims(conn) == before

    conn.image.delete_image(made)
    conn.block_storage.delete_snapshot(snapshot.id)
    conn.block_storage.wait_for_delete(snapshot, wait=60)
    conn.block_storage.delete_volume(volume.id)
    conn.block_storage.wait_for_delete(volume, wait=60)
    conn.image.delete_image(image)
    conn.network.delete_network(net)
