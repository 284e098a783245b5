"""Fixtures for the hypervisor driver tests: real libvirt test-driver hypervisors, one node XML file
per node (file URIs never share state), and real qemu-img. No database: none of these tests ask for
``db``, so pytest-django never opens a connection."""
from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from workers.drivers.hypervisor.libvirt import LibvirtDriver
from workers.drivers.hypervisor.node import TestNode, test_node_xml

needs_qemu_img = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img (qemu-utils) not installed")
needs_genisoimage = pytest.mark.skipif(shutil.which("genisoimage") is None or shutil.which("isoinfo") is None,
                                       reason="genisoimage/isoinfo not installed (system-deps.sh)")


@pytest.fixture
def make_node(tmp_path: Path) -> Iterator[Callable[..., tuple[TestNode, LibvirtDriver]]]:
    drivers: list[LibvirtDriver] = []

    def make(hostname: str = "node-1", vcpus: int = 8, memory_mb: int = 16384,
             disk_gb: int = 200) -> tuple[TestNode, LibvirtDriver]:
        node = test_node_xml(tmp_path / f"{hostname}.xml", hostname, vcpus, memory_mb, disk_gb=disk_gb)
        driver = LibvirtDriver(node.uri, hostname=node.hostname, disk_gb=node.disk_gb)
        drivers.append(driver)
        return node, driver

    yield make
    for d in drivers:
        d.close()


@pytest.fixture
def driver(make_node: Callable[..., tuple[TestNode, LibvirtDriver]]) -> LibvirtDriver:
    return make_node()[1]


def new_id() -> str:
    return str(uuid.uuid4())
