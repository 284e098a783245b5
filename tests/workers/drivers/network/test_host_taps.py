"""A hypervisor outside the node's namespace: the driver adopts its guests' taps.

A libvirtd that runs in the host's namespace (the machine's own, as `libvirtd -d` starts it) makes a
guest's tap there, while the driver of a node simulated in a namespace (``node_namespace``) builds its
bridges inside that namespace. The driver moves the tap of a port bound to its node (found by the port's
tap name) into the node's namespace, where it is plugged into the network's bridge and reported ACTIVE.
It never takes a tap that is not one of its node's guest ports, nor one still down (being set up).
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from lib.netmodel import PORT_ACTIVE, PORT_DOWN, bridge_name, tap_name
from tests.network_lab import Lab, sh
from tests.workers.drivers.network.states import Cloud, new_id


@pytest.fixture
def host_taps() -> Iterator[list[str]]:
    """Taps made in this process's (the host's) namespace, as libvirt makes them; removed at the end."""
    made: list[str] = []
    yield made
    for name in made:
        sh("ip", "link", "delete", name, check=False)


def _host_tap(made: list[str], port_id: str, *, up: bool = True) -> str:
    name = tap_name(port_id)
    sh("ip", "tuntap", "add", name, "mode", "tap")
    made.append(name)
    if up:
        sh("ip", "link", "set", name, "up")
    return name


def _in_host(name: str) -> bool:
    return sh("ip", "link", "show", name, check=False).returncode == 0


def test_a_guest_tap_in_the_hosts_namespace_is_adopted_into_the_node(lab: Lab, host_taps: list[str]) -> None:
    cloud = Cloud()
    driver = lab.node("a")
    ns = lab.nodes["a"]
    mine, foreign, elsewhere, unready = new_id(), new_id(), new_id(), new_id()
    tap = _host_tap(host_taps, mine)
    foreign_tap = _host_tap(host_taps, foreign)  # a tap whose port is not in the node's state at all
    elsewhere_tap = _host_tap(host_taps, elsewhere)  # a port bound to another node
    unready_tap = _host_tap(host_taps, unready, up=False)  # libvirt has not finished with it
    ports = (cloud.guest_port(mine, "10.10.0.5", "fa:16:3e:00:00:05", "a"),
             cloud.guest_port(elsewhere, "10.10.0.6", "fa:16:3e:00:00:06", "b"),
             cloud.guest_port(unready, "10.10.0.7", "fa:16:3e:00:00:07", "a"))
    report = driver.apply(cloud.state("a", lab.vteps["a"], ports=ports))
    assert report.applied and not report.errors, report.errors

    assert not _in_host(tap), "the guest's tap stayed in the host's namespace"
    link = sh("ip", "-n", ns, "-d", "link", "show", tap).stdout
    assert f"master {bridge_name(cloud.net)}" in link and "state" in link, link
    assert report.statuses[mine] == PORT_ACTIVE
    assert any(tap in change and "adopted" in change for change in report.changes), report.changes

    for name in (foreign_tap, elsewhere_tap, unready_tap):
        assert _in_host(name), f"{name} was taken although it is no guest port of this node (or not ready)"
        assert sh("ip", "-n", ns, "link", "show", name, check=False).returncode != 0
    assert report.statuses[unready] == PORT_DOWN

    # once libvirt has brought it up, the next apply adopts it; a second apply changes nothing more
    sh("ip", "link", "set", unready_tap, "up")
    report = driver.apply(cloud.state("a", lab.vteps["a"], ports=ports))
    assert report.statuses[unready] == PORT_ACTIVE and not _in_host(unready_tap)
    again = driver.apply(cloud.state("a", lab.vteps["a"], ports=ports))
    assert again.changes == (), again.changes

