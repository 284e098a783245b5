"""The contract with the network agent: the node's desired state (NodeState) from the database in a
constant number of queries, agent reports and heartbeats, port statuses, GET /agents, and one sync
request per transaction sent to every live agent on commit."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.networks import selectors, services
from apps.networks.models import NetworkAgent, Port
from lib import netmodel as m
from tests.api_client import SeededCloud
from tests.networks.helpers import neutron_error

pytestmark = pytest.mark.django_db


def _topology(cloud, n: int, tag: str, host: str) -> None:
    for i in range(n):
        net = cloud.member.network(name=f"{tag}{i}")
        subnet = cloud.member.subnet(net["id"], f"10.{150 + i}.{len(tag)}.0/24",
                                     dns_nameservers=["9.9.9.9"],
                                     host_routes=[{"destination": "192.168.0.0/16", "nexthop": f"10.{150 + i}."
                                                   f"{len(tag)}.254"}])
        port = cloud.member.port(net["id"], allowed_address_pairs=[{"ip_address": "10.255.0.1"}])
        cloud.admin.put(f"ports/{port['id']}", {"port": {"binding:host_id": host}})
        router = cloud.member.create("routers", "router", name=f"{tag}{i}", external_gateway_info={
            "network_id": cloud.public_id})
        cloud.member.put(f"routers/{router['id']}/add_router_interface", {"subnet_id": subnet["id"]})
        fip = cloud.member.create("floatingips", "floatingip", floating_network_id=cloud.public_id)
        cloud.member.put(f"floatingips/{fip['id']}", {"floatingip": {"port_id": port["id"]}})
        group = cloud.member.create("security-groups", "security_group", name=f"{tag}{i}")
        cloud.member.create("security-group-rules", "security_group_rule", security_group_id=group["id"],
                            direction="ingress", protocol="tcp", port_range_min=22, port_range_max=22,
                            remote_group_id=group["id"])
        cloud.member.put(f"ports/{port['id']}", {"port": {"security_groups": [group["id"]]}})


def test_node_state_shape(cloud):
    services.network_agent_report(host="net1", vtep_ip="192.0.2.1", capable=True, hosts_dhcp_l3=True)
    services.network_agent_report(host="cmp1", vtep_ip="192.0.2.2", capable=True, hosts_dhcp_l3=False)
    _topology(cloud, 1, "a", "cmp1")
    state = selectors.network_node_state(host="net1")
    assert isinstance(state, m.NodeState) and state.dhcp_l3 and state.local_vtep == "192.0.2.1"
    assert state.peers == ("192.0.2.2",)
    nets = {n.id: n for n in state.networks}
    public = next(n for n in state.networks if n.external)
    tenant = next(n for n in state.networks if not n.external)
    assert public.id == cloud.public_id and len(nets) == 2
    assert tenant.vni >= 1 and tenant.mtu == 1450 and tenant.network_type == "vxlan"
    subnet = tenant.subnets[0]
    assert subnet.dhcp_port is not None and subnet.dhcp_port.ip.endswith(".2")
    assert subnet.dns_nameservers == ("9.9.9.9",) and subnet.host_routes[0].destination == "192.168.0.0/16"
    router = state.routers[0]
    assert router.interfaces[0].ip == subnet.gateway_ip and router.interfaces[0].prefixlen == 24
    assert router.gateway is not None and router.gateway.network_id == public.id
    assert router.gateway.external_gateway_ip == "172.24.4.1" and router.gateway.enable_snat
    guest = next(p for p in state.ports if p.binding_host == "cmp1")
    assert router.floating_ips[0].port_id == guest.id and router.floating_ips[0].fixed_ip == guest.fixed_ips[0].ip
    assert guest.allowed_address_pairs[0].ip_address == "10.255.0.1"
    group = next(g for g in state.security_groups if g.id == guest.security_group_ids[0])
    assert group.rules[-1].remote_group_id == group.id and guest.fixed_ips[0].ip in group.member_ips
    assert {p.device_owner for p in state.ports} >= {"network:dhcp", "network:router_interface", ""}

    compute = selectors.network_node_state(host="cmp1")
    assert not compute.dhcp_l3 and compute.routers == () and compute.peers == ("192.0.2.1",)
    assert [n.id for n in compute.networks] == [tenant.id]
    assert selectors.network_node_state(host="elsewhere").networks == ()


def test_node_state_costs_constant_queries(cloud):
    services.network_agent_report(host="net1", vtep_ip="192.0.2.1", capable=True, hosts_dhcp_l3=True)
    _topology(cloud, 1, "a", "net1")
    with CaptureQueriesContext(connection) as few:
        small = selectors.network_node_state(host="net1")
    _topology(cloud, 5, "bb", "net1")
    with CaptureQueriesContext(connection) as many:
        big = selectors.network_node_state(host="net1")
    assert len(big.routers) == 6 and len(big.networks) == 7 and len(small.routers) == 1
    assert len(many) == len(few), [q["sql"][:120] for q in many.captured_queries]


def test_a_compute_nodes_l2_agent_never_serves_dhcp_and_routers(cloud):
    """A compute node's agent registering before the network node's (``l2_only``: `up --role compute`'s)
    is not made the DHCP and routers' host, whenever it reports; the network node's agent is. A report
    can only decline that duty: an agent made the host keeps it when it reports without ``l2_only``."""
    from workers import network_control

    assert not services.network_agent_report(host="cmp1", vtep_ip="192.0.2.2", capable=True,
                                             l2_only=True).hosts_dhcp_l3
    network_control.agent_report(host="cmp2", vtep_ip="192.0.2.3", capable=True, l2_only=True)
    assert services.network_agent_report(host="net1", vtep_ip="192.0.2.1", capable=True).hosts_dhcp_l3
    network_control.synced(host="cmp1", generation=1, statuses={}, capable=True, applied=True, l2_only=True)
    assert list(NetworkAgent.objects.filter(hosts_dhcp_l3=True).values_list("host", flat=True)) == ["net1"]
    net = cloud.member.network()
    cloud.member.subnet(net["id"], "10.71.0.0/24")
    assert {n.id for n in selectors.network_node_state(host="net1").networks} == {net["id"]}  # its DHCP
    assert not selectors.network_node_state(host="cmp1").networks  # no port of cmp1's on it
    # an agent made the host by an admin and then reporting as L2 only stops serving
    NetworkAgent.objects.filter(host="cmp2").update(hosts_dhcp_l3=True)
    network_control.agent_report(host="cmp2", vtep_ip="192.0.2.3", capable=True, l2_only=True)
    assert not NetworkAgent.objects.get(host="cmp2").hosts_dhcp_l3


def test_agent_report_and_port_statuses(cloud):
    agent = services.network_agent_report(host="n1", vtep_ip="192.0.2.9", capable=True)
    assert agent.hosts_dhcp_l3  # the first agent serves DHCP and routers
    assert not services.network_agent_report(host="n2", vtep_ip="192.0.2.10", capable=True).hosts_dhcp_l3
    net = cloud.member.network()
    cloud.member.subnet(net["id"], "10.70.0.0/24")
    port = cloud.member.port(net["id"])
    cloud.admin.put(f"ports/{port['id']}", {"port": {"binding:host_id": "n2"}})
    assert services.port_status_report(host="n2", statuses={port["id"]: "ACTIVE"}) == 1
    assert cloud.member.get(f"ports/{port['id']}").json()["port"]["status"] == "ACTIVE"
    # another host cannot speak for that port
    assert services.port_status_report(host="n1", statuses={port["id"]: "DOWN"}) == 0
    # the DHCP port is served by n1
    dhcp = Port.objects.get(network_id=net["id"], device_owner="network:dhcp")
    assert dhcp.binding_host_id == "n1"
    assert services.port_status_report(host="n1", statuses={dhcp.id: "ACTIVE"}) == 1
    # a node that turns out unable to apply: its ports go DOWN and stay DOWN
    services.network_agent_report(host="n2", vtep_ip="192.0.2.10", capable=False, reason="no netns")
    assert cloud.member.get(f"ports/{port['id']}").json()["port"]["status"] == "DOWN"
    assert services.port_status_report(host="n2", statuses={port["id"]: "ACTIVE"}) == 0
    assert NetworkAgent.objects.get(host="n2").message == "no netns"


def test_agents_api(cloud):
    services.network_agent_report(host="n1", vtep_ip="192.0.2.9", capable=True)
    services.network_agent_report(host="n2", vtep_ip="192.0.2.10", capable=False, reason="not root")
    NetworkAgent.objects.filter(host="n2").update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    agents = cloud.admin.get("agents").json()["agents"]
    kinds = sorted((a["host"], a["agent_type"], a["alive"]) for a in agents)
    assert kinds == [("n1", "DHCP agent", True), ("n1", "L3 agent", True), ("n1", "Linux bridge agent", True),
                     ("n2", "Linux bridge agent", False)]
    one = agents[0]
    assert cloud.admin.get(f"agents/{one['id']}").json()["agent"]["id"] == one["id"]
    assert [a["host"] for a in cloud.admin.get("agents?agent_type=L3 agent").json()["agents"]] == ["n1"]
    assert cloud.member.get("agents").json()["agents"] == []  # filtered by policy, as Neutron does
    neutron_error(cloud.member.get(f"agents/{agents[0]['id']}"), 404, "AgentNotFound")
    neutron_error(cloud.admin.get("agents/nope"), 404, "AgentNotFound")
    l3 = next(a for a in agents if a["agent_type"] == "L3 agent")
    off = cloud.admin.put(f"agents/{l3['id']}", {"agent": {"admin_state_up": False, "description": "maint"}})
    assert off.json()["agent"]["admin_state_up"] is False and off.json()["agent"]["description"] == "maint"
    assert not selectors.agents_reachable(seconds=3600).filter(host="n1").exists()  # no more work for it
    neutron_error(cloud.member.put(f"agents/{l3['id']}", {"agent": {"admin_state_up": True}}), 404)
    assert cloud.admin.delete(f"agents/{l3['id']}").status_code == 204
    assert not NetworkAgent.objects.filter(host="n1").exists()


@pytest.mark.django_db(transaction=True)
def test_one_sync_per_transaction_to_every_reachable_agent(monkeypatch):
    from celery import current_app

    cloud = SeededCloud(api="network")
    sent: list[tuple] = []
    monkeypatch.setattr(current_app, "send_task",
                        lambda name, kwargs, queue, expires, **_: sent.append((name, kwargs, queue)))
    services.network_agent_report(host="live", vtep_ip="192.0.2.1", capable=True)
    services.network_agent_report(host="dead", vtep_ip="192.0.2.2", capable=True)
    services.network_agent_report(host="late", vtep_ip="192.0.2.3", capable=True)
    NetworkAgent.objects.filter(host="dead").update(heartbeat_at=timezone.now() - timedelta(hours=2))
    NetworkAgent.objects.filter(host="late").update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    sent.clear()
    net_generation = selectors.network_state_generation()
    with transaction.atomic():
        net = services.network_create(actor=cloud.member_actor, name="x")
        services.subnet_create(actor=cloud.member_actor, network_id=net.id, cidr="10.80.0.0/24")
        services.port_create(actor=cloud.member_actor, network_id=net.id)
        assert sent == []  # nothing before commit
    # a push per agent to the control queue, which loads each node's state after this commit
    control = settings.CELERY_TASK_DEFAULT_QUEUE
    assert sorted((name, kwargs["host"], queue) for name, kwargs, queue in sent) == [
        ("workers.network_control.push", "late", control), ("workers.network_control.push", "live", control)]
    # both with the generation read after the commit (a state sent with a larger one covers it)
    assert {kwargs["requested"] for _, kwargs, _ in sent} == {sent[0][1]["requested"]}
    assert sent[0][1]["requested"] > net_generation
    sent.clear()

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        services.network_create(actor=cloud.member_actor, name="y")
        raise Boom
    assert sent == []  # a rolled-back change tells no one


@pytest.mark.django_db(transaction=True)
def test_changes_are_published_to_the_projects_group_on_commit(monkeypatch):
    from apps.core import events

    cloud = SeededCloud(api="network")
    seen: list[tuple[str, dict]] = []
    monkeypatch.setattr(events, "send_all", seen.extend)
    net = services.network_create(actor=cloud.member_actor, name="lively")
    services.subnet_create(actor=cloud.member_actor, network_id=net.id, cidr="10.81.0.0/24")
    port = services.port_create(actor=cloud.member_actor, network_id=net.id)
    group = f"project.{cloud.demo_project.id}"
    kinds = [(e["resource"], e["kind"]) for g, e in seen if g == group]
    assert ("network", "created") in kinds and ("subnet", "created") in kinds and ("port", "created") in kinds
    assert any(e["id"] == port.id and e["data"]["status"] == "DOWN" for _, e in seen)


def test_node_state_travels_as_plain_values(cloud):
    """What the push sends is JSON, and the node rebuilds the very same NodeState from it."""
    import json

    services.network_agent_report(host="net1", vtep_ip="192.0.2.1", capable=True, hosts_dhcp_l3=True)
    _topology(cloud, 2, "pl", "net1")
    state = selectors.network_node_state(host="net1")
    assert state.routers and state.ports and state.security_groups
    plain = json.loads(json.dumps(state.to_dict()))
    assert m.NodeState.from_dict(plain) == state
    with pytest.raises(TypeError, match="unknown fields"):
        m.NodeState.from_dict({**plain, "extra": 1})


def test_generation_grows(cloud):
    first = selectors.network_state_generation()
    assert selectors.network_state_generation() > first


def test_synced_report_touches_only_its_hosts_ports_and_drops_an_older_one(cloud):
    """``network_agent_synced`` (the control task ``workers.network_control.synced``): a node's report
    changes only the ports bound to that host, and one older than the last applied changes nothing."""
    services.network_agent_report(host="a1", vtep_ip="192.0.2.1", capable=True, hosts_dhcp_l3=False)
    services.network_agent_report(host="b1", vtep_ip="192.0.2.2", capable=True, hosts_dhcp_l3=False)
    net = services.network_create(actor=cloud.member_actor, name="sync")
    services.subnet_create(actor=cloud.member_actor, network_id=net.id, cidr="10.82.0.0/24")
    mine = services.port_create(actor=cloud.member_actor, network_id=net.id)
    theirs = services.port_create(actor=cloud.member_actor, network_id=net.id)
    Port.objects.filter(pk=mine.pk).update(binding_host_id="a1")
    Port.objects.filter(pk=theirs.pk).update(binding_host_id="b1")
    changed = services.network_agent_synced(host="a1", generation=10, capable=True, applied=True,
                                            statuses={mine.id: "ACTIVE", theirs.id: "ACTIVE"})
    assert changed == 1
    assert Port.objects.get(pk=mine.pk).status == "ACTIVE" and Port.objects.get(pk=theirs.pk).status == "DOWN"
    assert NetworkAgent.objects.get(host="a1").configuration["last_sync"]["generation"] == 10
    assert services.network_agent_synced(host="a1", generation=9, capable=True, applied=True,
                                         statuses={mine.id: "DOWN"}) is None
    assert Port.objects.get(pk=mine.pk).status == "ACTIVE"
    assert services.network_agent_synced(host="a1", generation=11, capable=True, applied=True,
                                         statuses={mine.id: "DOWN"}) == 1
    assert Port.objects.get(pk=mine.pk).status == "DOWN"
