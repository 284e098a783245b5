"""The domain XML meant for real QEMU/KVM (not exercised by the test driver) validated against
libvirt's own RELAX NG schema (shipped by libvirt0) with xmllint; no daemon needed."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.workers.drivers.hypervisor.conftest import new_id
from workers.drivers.hypervisor.libvirt import DiskSpec, DomainSpec, NicSpec, disk_element, domain_xml

SCHEMA = Path("/usr/share/libvirt/schemas/domain.rng")
pytestmark = pytest.mark.skipif(shutil.which("xmllint") is None or not SCHEMA.exists(),
                                reason="xmllint (libxml2-utils) or libvirt's schemas missing")


def validate(xml: str, tmp_path: Path, schema: Path = SCHEMA) -> None:
    f = tmp_path / f"{new_id()}.xml"
    f.write_text(xml)
    proc = subprocess.run(["xmllint", "--noout", "--relaxng", str(schema), str(f)], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("domain_type", ["qemu", "kvm", "test"])
@pytest.mark.parametrize("variant", ["full", "minimal", "virtio-config-drive"])
def test_domain_xml_is_valid_for_libvirt(domain_type: str, variant: str, tmp_path: Path) -> None:
    if variant == "minimal":
        spec = DomainSpec(uuid=new_id(), vcpus=1, memory_mb=64)
    else:
        spec = DomainSpec(
            uuid=new_id(), vcpus=2, memory_mb=512,
            disks=(DiskSpec(path="/var/lib/stratus/i/disk"),
                   DiskSpec(path="/var/lib/stratus/v/vol", target="vdb", format="raw", serial="vol-1")),
            nics=(NicSpec(port_id=new_id(), mac="fa:16:3e:00:00:01", mtu=1450),
                  NicSpec(port_id=new_id(), mac="fa:16:3e:00:00:02")),
            config_drive="/var/lib/stratus/i/disk.config",
            config_drive_bus="virtio" if variant == "virtio-config-drive" else "ide",
            console_log="/var/lib/stratus/i/console.log", vnc_listen="127.0.0.1",
            kernel="/var/lib/stratus/_base/k", initrd="/var/lib/stratus/_base/r", cmdline="console=ttyS0 root=/dev/vda",
            metadata={"project_id": "p", "flavor": "m1.tiny"})
    validate(domain_xml(spec, domain_type=domain_type), tmp_path)


def test_disk_element_for_hot_plug_is_a_valid_device(tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    # the device XML is checked by wrapping it into a minimal domain
    spec = DomainSpec(uuid=new_id(), vcpus=1, memory_mb=64)
    root = ET.fromstring(domain_xml(spec, domain_type="qemu"))
    devices = root.find("devices")
    assert devices is not None
    devices.append(disk_element(DiskSpec(path="/v/vol", target="vdc", serial="abc", readonly=True)))
    validate(ET.tostring(root, encoding="unicode"), tmp_path)
