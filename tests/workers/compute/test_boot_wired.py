"""A new guest runs only once its ports are wired (workers.compute.boot_wired, Nova's network-vif-plugged).

On a real hypervisor a guest asks for DHCP a few seconds after it starts; if the network agent has not yet
put its tap into the tenant's bridge, a short DHCP client gives up. So the domain starts paused, the agent is
asked to plug it, and it runs once every port is ACTIVE; after STRATUS_COMPUTE_VIF_PLUGGING_TIMEOUT seconds
the domain is destroyed and the spawn fails (vif_plugging_is_fatal). Here on libvirt's test driver, a real
libvirt hypervisor without guests, with the wiring played by the callables the node task passes."""
from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from workers.compute import SpawnError, boot_wired
from workers.drivers.hypervisor.libvirt import NOSTATE, PAUSED, RUNNING, DiskSpec, DomainSpec, LibvirtDriver, NicSpec


def _spec(tmp_path: Path) -> DomainSpec:
    instance_id = str(uuid.uuid4())
    return DomainSpec(uuid=instance_id, vcpus=1, memory_mb=256, disks=(DiskSpec(path=str(tmp_path / "disk")),),
                      nics=(NicSpec(port_id=str(uuid.uuid4()), mac="fa:16:3e:12:34:56"),))


def test_the_guest_stays_paused_until_its_ports_are_wired(driver: LibvirtDriver, tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    events: list[str] = []
    seen: list[int] = []

    def plug() -> None:
        events.append("plug")
        assert driver.power_state(spec.uuid) == PAUSED, "the guest ran before its ports were plugged"

    def wired() -> bool:
        seen.append(driver.power_state(spec.uuid))
        return len(seen) >= 3

    assert boot_wired(driver, spec, plug=plug, wired=wired, timeout=30) == RUNNING
    assert events == ["plug"]
    assert seen == [PAUSED, PAUSED, PAUSED], "the guest ran while its ports were not wired yet"
    assert driver.power_state(spec.uuid) == RUNNING


def test_ports_never_wired_fail_the_boot_and_leave_no_domain(driver: LibvirtDriver, tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    started = time.monotonic()
    with pytest.raises(SpawnError, match="not plugged within 1 seconds"):
        boot_wired(driver, spec, plug=lambda: None, wired=lambda: False, timeout=1)
    assert 1 <= time.monotonic() - started < 10
    assert driver.power_state(spec.uuid) == NOSTATE
