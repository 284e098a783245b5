"""The node side of a spawn with real rows and real tools, before any report (the node works from
the spec the services send, ``node_specs.server_node_spec``): the image cached once
from the images store (checksums verified), the qcow2 overlay on it, ephemeral/swap disks, the config
drive, NICs from the ports, direct kernel boot; a failure leaves nothing on the node."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from apps.images.models import Image
from tests.workers.compute.conftest import (
    add_port,
    make_instance,
    make_qcow2,
    needs_tools,
    server_spec,
    upload_image,
)
from workers import compute
from workers.drivers.hypervisor import disk
from workers.drivers.hypervisor.imagecache import ChecksumMismatch
from workers.drivers.hypervisor.layout import InstanceLayout
from workers.drivers.hypervisor.libvirt import RUNNING, tap_name

pytestmark = needs_tools


def build(inst, image_id):
    """build_domain of ``inst`` booting ``image_id``, with the spec the services would send."""
    return compute.build_domain(server_spec(inst.id, "rebuild", image_id),
                                InstanceLayout(compute.instances_path(), inst.id), [])


def iso_file(iso: str, path: str) -> bytes:
    return subprocess.run(["isoinfo", "-R", "-i", iso, "-x", path], capture_output=True, check=True).stdout


def test_domain_from_rows(cloud, node, image, network) -> None:
    inst = make_instance(cloud, node, image, root_gb=2, ephemeral_gb=1, swap=256, config_drive=True)
    port = add_port(cloud, network, inst)
    layout = InstanceLayout(compute.instances_path(), inst.id)
    spec = compute.build_domain(server_spec(inst.id, "rebuild", image.id),
                                layout, [])
    cached = node.cache / image.id
    assert cached.is_file() and cached.read_bytes() == Path(compute.image_cache().path_for(image.id)).read_bytes()
    root = disk.info(layout.disk, fmt="qcow2")
    assert root.format == "qcow2" and root.virtual_size == 2 * disk.GiB
    assert root.chain == (layout.disk, str(cached))  # an overlay on the cached base
    assert disk.info(layout.ephemeral, fmt="qcow2").virtual_size == disk.GiB
    assert disk.info(layout.swap, fmt="qcow2").virtual_size == 256 * 1024 * 1024
    assert [(d.path, d.target) for d in spec.disks] == [(layout.disk, "vda"), (layout.ephemeral, "vdb"),
                                                        (layout.swap, "vdc")]
    assert spec.config_drive == layout.config_drive and Path(layout.config_drive).is_file()
    md = json.loads(iso_file(layout.config_drive, "/openstack/latest/meta_data.json"))
    assert md["uuid"] == inst.id and md["public_keys"] == {"k1": "ssh-ed25519 AAAAC3 k1"}
    nd = json.loads(iso_file(layout.config_drive, "/openstack/latest/network_data.json"))
    assert nd["links"][0]["ethernet_mac_address"] == port.mac_address
    assert [(n.port_id, n.mac, n.mtu, n.tap) for n in spec.nics] == [
        (port.id, port.mac_address, network.mtu, tap_name(port.id))]
    assert (spec.vcpus, spec.memory_mb, spec.kernel) == (1, 512, None)
    assert node.driver.spawn(spec) == RUNNING


def test_no_config_drive_unless_asked_or_forced(cloud, node, image, settings) -> None:
    inst = make_instance(cloud, node, image)
    layout = InstanceLayout(compute.instances_path(), inst.id)
    assert compute.build_domain(server_spec(inst.id, "rebuild", image.id),
                                layout, []).config_drive is None
    assert not Path(layout.config_drive).exists()
    settings.STRATUS_FORCE_CONFIG_DRIVE = True
    assert compute.build_domain(server_spec(inst.id, "rebuild", image.id),
                                layout, []).config_drive == layout.config_drive


def test_image_is_fetched_once_per_node(cloud, node, image, monkeypatch) -> None:
    from apps.images import storage

    reads = []
    real = storage.get_store()

    class Counting:
        def reader(self, location, **kw):
            reads.append(location)
            return real.reader(location, **kw)

    monkeypatch.setattr(storage, "get_store", lambda: Counting())
    for name in ("a", "b", "c"):
        inst = make_instance(cloud, node, image, name=name)
        build(inst, image.id)
    assert reads == [image.location]


def test_corrupt_image_in_the_store_is_refused(cloud, node, image) -> None:
    from django.conf import settings

    stored = Path(settings.STRATUS_IMAGE_DIR) / image.location
    stored.write_bytes(stored.read_bytes()[:-1] + b"\x01")
    inst = make_instance(cloud, node, image)
    with pytest.raises(ChecksumMismatch):
        build(inst, image.id)
    assert not (node.cache / image.id).exists()


def test_kernel_and_ramdisk_images_boot_directly(cloud, node, tmp_path) -> None:
    actor = cloud.member_actor
    kernel = upload_image(actor, b"\x7fELF fake kernel" * 64, disk_format="aki", name="vmlinuz")
    ramdisk = upload_image(actor, b"initramfs" * 64, disk_format="ari", name="initrd")
    rootfs = upload_image(actor, make_qcow2(tmp_path / "root.qcow2"), name="root", kernel_id=kernel.id,
                          ramdisk_id=ramdisk.id, os_command_line="console=ttyS0 root=/dev/vda rw")
    inst = make_instance(cloud, node, rootfs)
    spec = build(inst, rootfs.id)
    assert spec.kernel == str(node.cache / kernel.id) and spec.initrd == str(node.cache / ramdisk.id)
    assert spec.cmdline == "console=ttyS0 root=/dev/vda rw"
    assert Path(spec.kernel).read_bytes() == b"\x7fELF fake kernel" * 64
    assert node.driver.spawn(spec) == RUNNING
    assert "<kernel>" in node.driver.definition(inst.id)


def make_iso(tmp_path: Path) -> bytes:
    """A real ISO 9660 image (the images API refuses bytes that are not the format they claim)."""
    (tmp_path / "iso-root").mkdir()
    (tmp_path / "iso-root" / "readme.txt").write_text("hello\n")
    subprocess.run(["genisoimage", "-quiet", "-V", "cd", "-o", str(tmp_path / "cd.iso"), str(tmp_path / "iso-root")],
                   check=True)
    return (tmp_path / "cd.iso").read_bytes()


def test_unbootable_images(cloud, node, tmp_path) -> None:
    queued = Image.objects.create(name="empty", disk_format="qcow2", container_format="bare",
                                  owner=cloud.demo_project.id)
    iso = upload_image(cloud.member_actor, make_iso(tmp_path), disk_format="iso", name="cd")
    for img, words in ((queued, "not active"), (iso, "cannot boot")):
        inst = make_instance(cloud, node, img)
        with pytest.raises(compute.SpawnError, match=words):
            build(inst, img.id)
    inst = make_instance(cloud, node, iso)
    with pytest.raises(compute.SpawnError, match="could not be found"):
        build(inst, "00000000-0000-0000-0000-000000000000")
