"""The whole spawn on a node with plain values, as workers/compute.py will do it: image cache →
qcow2 overlay → config drive → domain on the node's test-driver hypervisor; then delete undoes it."""
from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from lib import configdrive
from tests.workers.drivers.hypervisor.conftest import needs_genisoimage, needs_qemu_img, new_id
from workers.drivers.hypervisor import disk
from workers.drivers.hypervisor.imagecache import ImageCache
from workers.drivers.hypervisor.layout import InstanceLayout
from workers.drivers.hypervisor.libvirt import NOSTATE, RUNNING, DiskSpec, DomainSpec, NicSpec

pytestmark = [needs_qemu_img, needs_genisoimage]


def test_spawn_and_delete_on_a_node(make_node, tmp_path: Path) -> None:
    _, driver = make_node("compute-7", vcpus=4, memory_mb=8192)
    # an "image" in a store: a small qcow2 streamed in chunks
    src = tmp_path / "store" / "image.qcow2"
    src.parent.mkdir()
    disk.blank_create(src, 1)
    data = src.read_bytes()
    image_id, port_id, instance_id = new_id(), new_id(), new_id()

    def stream():
        with open(src, "rb") as fh:
            while chunk := fh.read(65536):
                yield chunk

    cache = ImageCache(tmp_path / "node" / "_base")
    cached = cache.fetch(image_id, stream, checksum=hashlib.md5(data, usedforsecurity=False).hexdigest())
    layout = InstanceLayout(str(tmp_path / "node" / "instances"), instance_id)
    layout.create()
    root_disk = disk.overlay_create(cached.path, layout.disk, 5, base_format="qcow2")
    assert root_disk.chain == (layout.disk, cached.path)
    configdrive.build(configdrive.ConfigDriveSpec(uuid=instance_id, name="vm", hostname="vm"), layout.config_drive)
    spec = DomainSpec(uuid=instance_id, vcpus=1, memory_mb=512, disks=(DiskSpec(path=layout.disk),),
                      nics=(NicSpec(port_id=port_id, mac="fa:16:3e:12:34:56"),),
                      config_drive=layout.config_drive, console_log=layout.console_log)
    assert driver.spawn(spec) == RUNNING
    xml = ET.fromstring(driver.live_xml(instance_id))
    assert [d.find("source").get("file") for d in xml.findall("devices/disk")] == [  # type: ignore[union-attr]
        layout.disk, layout.config_drive]
    # delete: domain, then the instance's files; the cached base stays for the next instance
    assert driver.destroy(instance_id) is True
    assert layout.remove() is True
    assert driver.power_state(instance_id) == NOSTATE
    assert not Path(layout.disk).exists() and Path(cached.path).exists()
    assert layout.remove() is False


def test_layout_refuses_non_uuid(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        InstanceLayout(str(tmp_path), "../../etc")
