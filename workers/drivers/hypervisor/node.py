"""Node descriptions for libvirt's test driver: one XML file per simulated compute node.

``test:///abs/path/node.xml`` gives a hypervisor that needs no daemon and shares no state with any
other connection (even in the same process), so one agent process per node with its own file is a
node with its own capacity. The test driver reads the CPU topology and memory from this file;
everything else (domains, networks, pools) starts empty.
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TestNode:
    path: str
    hostname: str
    vcpus: int
    memory_mb: int
    disk_gb: int

    @property
    def uri(self) -> str:
        return f"test://{self.path}"


def test_node_xml(path: str | os.PathLike[str], hostname: str, vcpus: int, memory_mb: int, *, disk_gb: int = 100,
                  cpu_model: str = "x86_64", mhz: int = 2400, sockets: int = 1, threads: int = 1) -> TestNode:
    """Write a test-driver node description to ``path`` (an absolute path) and describe it.

    ``vcpus`` must be divisible by ``sockets * threads``. The test driver has no notion of a hostname
    or of local disk: those two travel in the returned ``TestNode`` and are handed to
    ``LibvirtDriver(uri, hostname=..., disk_gb=...)`` by the agent."""
    p = Path(path)
    if not p.is_absolute():
        raise ValueError("the node XML path must be absolute (test:///abs/path)")
    if vcpus < 1 or memory_mb < 1 or vcpus % (sockets * threads):
        raise ValueError("vcpus must be positive and divisible by sockets * threads")
    node = ET.Element("node")
    cpu = ET.SubElement(node, "cpu")
    for tag, value in (("nodes", 1), ("sockets", sockets), ("cores", vcpus // (sockets * threads)),
                       ("threads", threads), ("active", vcpus), ("mhz", mhz), ("model", cpu_model)):
        ET.SubElement(cpu, tag).text = str(value)
    ET.SubElement(node, "memory").text = str(int(memory_mb) * 1024)  # KiB
    p.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(node).write(p, encoding="unicode")
    return TestNode(path=str(p), hostname=hostname, vcpus=vcpus, memory_mb=memory_mb, disk_gb=disk_gb)
