"""Pushes asked for by commits merge: a push whose commit is already in a state sent to that host (a
larger generation, ``NetworkAgent.pushed_generation``) is not loaded and sent again; a resync, a
node's request and a push for a newer commit always are. Through the real broker: what reaches the
node's queue is counted."""
from __future__ import annotations

import secrets

import pytest

from apps.networks import selectors, services
from apps.networks.models import NetworkAgent
from tests.api_client import SeededCloud
from tests.workers.compute.conftest import queued
from workers import network_control

pytestmark = pytest.mark.django_db


def _network_with_dhcp(cloud: SeededCloud, name: str, cidr: str) -> str:
    """A network the DHCP host serves (one commit each here: the test's transaction stands for them)."""
    network = services.network_create(actor=cloud.member_actor, name=name)
    services.subnet_create(actor=cloud.member_actor, network_id=network.id, cidr=cidr)
    return network.id


def test_pushes_queued_behind_a_sent_state_that_has_their_commit_are_skipped(cloud: SeededCloud) -> None:
    host = f"merge-{secrets.token_hex(3)}"
    services.network_agent_report(host=host, vtep_ip="192.0.2.7", capable=True, hosts_dhcp_l3=True)
    queued(f"network.{host}")  # nothing of before
    # two commits, each asking for a push (the generation each read after it), queued behind each other
    m1 = _network_with_dhcp(cloud, "m1", "10.91.1.0/24")
    first = selectors.network_state_generation()
    m2 = _network_with_dhcp(cloud, "m2", "10.91.2.0/24")
    second = selectors.network_state_generation()
    # the first push loads after both commits: its state has both
    sent = network_control.push(host, requested=first)
    assert not sent.get("skipped") and sent["generation"] > second
    assert NetworkAgent.objects.get(host=host).pushed_generation == sent["generation"]
    # the second is covered by it: not loaded, not sent
    assert network_control.push(host, requested=second) == {"host": host, "skipped": True, "requested": second}
    # a newer commit's push is sent, and so are a resync and a node's request (no commit of theirs)
    m3 = _network_with_dhcp(cloud, "m3", "10.91.3.0/24")
    third = network_control.push(host, requested=selectors.network_state_generation())
    assert not third.get("skipped") and third["generation"] > sent["generation"]
    assert not network_control.push(host).get("skipped")
    applies = queued(f"network.{host}")
    assert [name for name, _ in applies] == ["workers.network.apply"] * 3
    assert [kwargs["generation"] for _, kwargs in applies][:2] == [sent["generation"], third["generation"]]
    networks = [{n["id"] for n in kwargs["state"]["networks"]} for _, kwargs in applies]
    assert {m1, m2} <= networks[0] and m3 not in networks[0]  # the first push had both commits
    assert networks[1] == networks[0] | {m3}


def test_the_largest_pushed_generation_stays(cloud: SeededCloud) -> None:
    """Concurrent pushes record what they sent in any order: the largest stays, so a push is skipped
    only for a state that was really sent after its commit."""
    services.network_agent_report(host="order1", vtep_ip="192.0.2.8", capable=True)
    services.network_agent_pushed(host="order1", generation=200)
    services.network_agent_pushed(host="order1", generation=100)
    assert NetworkAgent.objects.get(host="order1").pushed_generation == 200
    assert selectors.network_push_state(host="order1", requested=199) is None
    assert selectors.network_push_state(host="order1", requested=200) is not None  # not larger: loaded


def test_a_push_request_must_name_an_integer(cloud: SeededCloud) -> None:
    for bad in ("1", True, 1.5):
        with pytest.raises(TypeError):
            network_control.push("order1", requested=bad)
