"""Fixtures shared by the workers' tests: ``lab``, the simulated network nodes of the network driver's
and the network agent's tests (tests/network_lab.py); ``make_node``/``driver``, libvirt test-driver
hypervisors (one node XML file per node: file URIs never share state) for the hypervisor driver's and
the compute node's tests."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.network_lab import lab  # noqa: F401 - a fixture, registered here for tests/workers/**
from workers.drivers.hypervisor.libvirt import LibvirtDriver
from workers.drivers.hypervisor.node import TestNode, test_node_xml


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
