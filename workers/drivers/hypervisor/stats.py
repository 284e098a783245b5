"""The pollster's driver (no Django): libvirt's counters of every running domain, as plain values.

For each domain: the cumulative CPU time (ns), vCPUs, memory (MiB: the balloon's size and what the
guest uses, when the balloon reports), and per disk (target dev) and per interface (target dev, MAC)
the cumulative byte/request/packet/drop counters. A counter libvirt cannot read on this hypervisor is
left out (not reported as zero)."""
from __future__ import annotations

import logging
import time
import xml.etree.ElementTree as ET
from typing import Any

import libvirt

logger = logging.getLogger(__name__)


def _devices(xml: str) -> tuple[list[str], list[tuple[str, str]]]:
    root = ET.fromstring(xml)
    disks = [t.get("dev", "") for t in root.findall("./devices/disk/target") if t.get("dev")]
    nics = []
    for iface in root.findall("./devices/interface"):
        target = iface.find("target")
        mac = iface.find("mac")
        if target is not None and target.get("dev"):
            nics.append((target.get("dev", ""), mac.get("address", "") if mac is not None else ""))
    return disks, nics


def _try(what: str, uuid: str, call: Any, *args: Any) -> Any:
    try:
        return call(*args)
    except libvirt.libvirtError as exc:
        logger.debug("domain %s: cannot read %s: %s", uuid, what, exc)
        return None


def domain_stats(conn: libvirt.virConnect, *, now: float | None = None) -> list[dict[str, Any]]:
    """One entry per running domain: {"uuid", "timestamp" (epoch), "cpu_time_ns", "vcpus", "memory_mb",
    "memory_usage_mb"?, "disks": [{"device", "read_bytes", "read_requests", "write_bytes",
    "write_requests"}], "nics": [{"device", "mac", "rx_bytes", "rx_packets", "rx_drop", "tx_bytes",
    "tx_packets", "tx_drop"}]}."""
    stamp = time.time() if now is None else now
    out = []
    for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
        uuid = dom.UUIDString()
        info = _try("info", uuid, dom.info)
        if info is None:
            continue
        _state, _max_kib, mem_kib, vcpus, cpu_ns = info
        entry: dict[str, Any] = {"uuid": uuid, "timestamp": stamp, "cpu_time_ns": int(cpu_ns), "vcpus": int(vcpus),
                                 "memory_mb": mem_kib / 1024.0, "disks": [], "nics": []}
        memory = _try("memory", uuid, dom.memoryStats) or {}
        if "available" in memory and "unused" in memory:
            entry["memory_usage_mb"] = (memory["available"] - memory["unused"]) / 1024.0
        elif "rss" in memory:
            entry["memory_usage_mb"] = memory["rss"] / 1024.0
        xml = _try("xml", uuid, dom.XMLDesc)
        disks, nics = _devices(xml) if xml else ([], [])
        for dev in disks:
            stats = _try(f"disk {dev}", uuid, dom.blockStats, dev)
            if stats is not None:
                rd_req, rd_bytes, wr_req, wr_bytes, _errs = stats
                entry["disks"].append({"device": dev, "read_bytes": int(rd_bytes), "read_requests": int(rd_req),
                                       "write_bytes": int(wr_bytes), "write_requests": int(wr_req)})
        for dev, mac in nics:
            stats = _try(f"interface {dev}", uuid, dom.interfaceStats, dev)
            if stats is not None:
                rx_bytes, rx_packets, _rx_errs, rx_drop, tx_bytes, tx_packets, _tx_errs, tx_drop = stats
                entry["nics"].append({"device": dev, "mac": mac, "rx_bytes": int(rx_bytes),
                                      "rx_packets": int(rx_packets), "rx_drop": int(rx_drop),
                                      "tx_bytes": int(tx_bytes), "tx_packets": int(tx_packets),
                                      "tx_drop": int(tx_drop)})
        out.append(entry)
    return out
