"""A real node's disk is that of the filesystem that will hold its instances, even before the first
instance made the directory (a new ``make run`` with STRATUS_HYPERVISOR=qemu registers at once)."""
from __future__ import annotations

import os
from pathlib import Path

from workers.drivers.hypervisor.libvirt import LibvirtDriver


def test_node_disk_of_an_instances_path_not_made_yet(tmp_path: Path) -> None:
    missing = tmp_path / "var" / "instances"
    driver = LibvirtDriver("test:///default", instances_path=str(missing))
    try:
        info = driver.node_info()
    finally:
        driver.close()
    st = os.statvfs(tmp_path)
    assert info.disk_gb == st.f_blocks * st.f_frsize // 1024**3
    assert not missing.exists()  # reading the capacity makes nothing
