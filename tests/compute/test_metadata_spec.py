"""instance_config_spec / instance_metadata: the documents a guest reads about itself, from real rows."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.compute.models import Instance
from apps.compute.selectors import metadata
from apps.networks import services as net_services
from tests.compute.metadata_helpers import make_instance, make_network


@pytest.fixture
def net(cloud):
    return make_network(cloud.member_actor, "10.90.0.0/24", dns=["10.90.0.53"])


def test_spec_from_rows(cloud, net):
    network, _subnet = net
    inst = make_instance(cloud, name="web 1", user_data=b"#!/bin/sh\necho hi\n", metadata={"role": "web", "n": 3},
                         key=("k1", "ssh-ed25519 AAAA k1"))
    port = net_services.port_create(actor=cloud.member_actor, network_id=network.id,
                                    device_id=inst.id, device_owner="compute:nova")
    spec = metadata.instance_config_spec(instance_id=inst.id)
    assert spec.uuid == inst.id and spec.name == "web 1" and spec.hostname == "web-1"
    assert spec.project_id == cloud.demo_project.id
    assert spec.public_keys == {"k1": "ssh-ed25519 AAAA k1"}
    assert spec.meta == {"role": "web", "n": "3"}
    assert spec.user_data == b"#!/bin/sh\necho hi\n"
    assert spec.instance_type == "m1.tiny"
    ip = port.fixed_ips.get().ip_address
    assert spec.fixed_ips == (ip,)
    nd = spec.network_data
    assert nd["links"][0]["ethernet_mac_address"] == port.mac_address
    assert nd["links"][0]["mtu"] == network.mtu and nd["links"][0]["vif_id"] == port.id
    assert nd["networks"][0]["type"] == "ipv4_dhcp" and nd["networks"][0]["network_id"] == network.id
    assert nd["services"] == [{"type": "dns", "address": "10.90.0.53"}]


def test_spec_static_when_dhcp_off_and_no_ports(cloud):
    network, _subnet = make_network(cloud.member_actor, "10.91.0.0/24", dhcp=False)
    inst = make_instance(cloud, name="db")
    assert metadata.instance_config_spec(instance_id=inst.id).network_data == {
        "links": [], "networks": [], "services": []}
    assert metadata.instance_config_spec(instance_id=inst.id).user_data is None
    net_services.port_create(actor=cloud.member_actor, network_id=network.id,
                             device_id=inst.id, device_owner="compute:nova")
    entry = metadata.instance_config_spec(instance_id=inst.id).network_data["networks"][0]
    assert entry["type"] == "ipv4" and entry["netmask"] == "255.255.255.0"
    assert entry["routes"][0] == {"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "10.91.0.1"}


def test_constant_queries(cloud, net):
    network, _ = net
    inst = make_instance(cloud, name="many")
    counts = []
    for _ in range(3):
        net_services.port_create(actor=cloud.member_actor, network_id=network.id,
                                 device_id=inst.id, device_owner="compute:nova")
        with CaptureQueriesContext(connection) as ctx:
            md = metadata.instance_metadata(instance_id=inst.id)
        counts.append(len(ctx.captured_queries))
        with CaptureQueriesContext(connection) as ctx2:
            metadata.instance_config_spec(instance_id=inst.id)
        counts.append(len(ctx2.captured_queries))
    assert len(md.spec.network_data["links"]) == 3
    assert counts[0::2] == [counts[0]] * 3 and counts[1::2] == [counts[1]] * 3, counts
    assert max(counts) <= 6


def test_deleted_or_unknown(cloud):
    inst = make_instance(cloud, name="gone")
    Instance.objects.filter(pk=inst.id).update(deleted=True)
    with pytest.raises(metadata.InstanceNotFound):
        metadata.instance_config_spec(instance_id=inst.id)
    with pytest.raises(metadata.InstanceNotFound):
        metadata.instance_metadata(instance_id="00000000-0000-0000-0000-000000000000")


def test_signature():
    sig = metadata.instance_signature(instance_id="abc", secret="s3")
    assert len(sig) == 64
    assert metadata.instance_signature_valid(instance_id="abc", signature=sig, secret="s3")
    assert not metadata.instance_signature_valid(instance_id="abd", signature=sig, secret="s3")
    assert not metadata.instance_signature_valid(instance_id="abc", signature="", secret="s3")


def test_node_state_carries_the_instance_of_compute_ports(cloud, net):
    """The network agent's map (fixed IP → instance) comes from network_node_state's PortSpec.device_id."""
    from apps.networks import selectors as net_selectors

    network, _ = net
    inst = make_instance(cloud, name="mapped")
    port = net_services.port_create(actor=cloud.admin_actor, network_id=network.id,
                                    device_id=inst.id, device_owner="compute:nova",
                                    project_id=cloud.demo_project.id, binding_host_id="node-x")
    state = net_selectors.network_node_state(host="node-x")
    spec = next(p for p in state.ports if p.id == port.id)
    assert spec.device_id == inst.id and spec.device_owner == "compute:nova"
    assert spec.fixed_ips[0].ip == port.fixed_ips.get().ip_address
