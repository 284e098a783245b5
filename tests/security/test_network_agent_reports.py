"""A network node holds no database credentials and reports by message (issue 16): what a compromised
node can do with those messages. The control tasks (workers/network_control.py) are called as a
control worker runs them; a node names a host, and only that host's ports change."""
from __future__ import annotations

import pytest

from apps.networks import services
from apps.networks.models import NetworkAgent, Port
from tests.api_client import SeededCloud
from workers import network_control

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_nodes() -> tuple[Port, Port]:
    cloud = SeededCloud(api="network")
    services.network_agent_report(host="evil", vtep_ip="192.0.2.66", capable=True, hosts_dhcp_l3=False)
    services.network_agent_report(host="good", vtep_ip="192.0.2.67", capable=True, hosts_dhcp_l3=True)
    net = services.network_create(actor=cloud.member_actor, name="victim")
    services.subnet_create(actor=cloud.member_actor, network_id=net.id, cidr="10.83.0.0/24")
    mine = services.port_create(actor=cloud.member_actor, network_id=net.id)
    theirs = services.port_create(actor=cloud.member_actor, network_id=net.id)
    Port.objects.filter(pk=mine.pk).update(binding_host_id="evil")
    Port.objects.filter(pk=theirs.pk).update(binding_host_id="good")
    return mine, theirs


def test_a_node_cannot_set_another_nodes_ports_or_the_dhcp_ports_it_does_not_serve(two_nodes) -> None:
    mine, theirs = two_nodes
    dhcp = Port.objects.get(network_id=mine.network_id, device_owner="network:dhcp")
    changed = network_control.synced(host="evil", generation=1, capable=True, applied=True,
                                     statuses={mine.id: "ACTIVE", theirs.id: "ACTIVE", dhcp.id: "ACTIVE"})
    assert changed == 1
    assert Port.objects.get(pk=mine.pk).status == "ACTIVE"
    assert Port.objects.get(pk=theirs.pk).status == "DOWN" and Port.objects.get(pk=dhcp.pk).status == "DOWN"
    # nor can it make itself the DHCP/router node by a report
    network_control.agent_report(host="evil", vtep_ip="192.0.2.66", capable=True,
                                 configuration={"hosts_dhcp_l3": True})
    assert NetworkAgent.objects.get(host="evil").hosts_dhcp_l3 is False


@pytest.mark.parametrize("bad", [
    {"host": "", "generation": 1, "statuses": {}},
    {"host": ["evil"], "generation": 1, "statuses": {}},
    {"host": "evil", "generation": "1", "statuses": {}},
    {"host": "evil", "generation": True, "statuses": {}},
    {"host": "evil", "generation": 1, "statuses": ["x"]},
    {"host": "evil", "generation": 1, "statuses": {"x": "BUILD"}},
    {"host": "evil", "generation": 1, "statuses": {}, "errors": "not a list"},
    {"host": "evil", "generation": 1, "statuses": {}, "configuration": ["x"]},
    {"host": "x" * 300, "generation": 1, "statuses": {}},
])
def test_malformed_reports_are_refused_and_change_nothing(two_nodes, bad) -> None:
    before = NetworkAgent.objects.get(host="evil").configuration
    with pytest.raises(TypeError):
        network_control.synced(**bad)
    assert NetworkAgent.objects.get(host="evil").configuration == before
    assert not NetworkAgent.objects.filter(host__in=["", "x" * 300]).exists()


def test_a_replayed_older_report_cannot_undo_a_newer_one(two_nodes) -> None:
    mine, _ = two_nodes
    network_control.synced(host="evil", generation=5, capable=True, applied=True, statuses={mine.id: "ACTIVE"})
    assert network_control.synced(host="evil", generation=4, capable=True, applied=True,
                                  statuses={mine.id: "DOWN"}) is None
    assert Port.objects.get(pk=mine.pk).status == "ACTIVE"
