"""The seed's compute flow with openstacksdk in-process, as the demo user, on the two real node workers:
boot, floating IP, actions, console output, snapshot, server groups spread over both nodes, the quota,
another project's server answering 404, and the admin's views; nothing left behind."""
from __future__ import annotations

import secrets
import subprocess

import pytest
from openstack import exceptions

pytestmark = pytest.mark.e2e


@pytest.fixture
def seed(live_cloud, compute_nodes, tmp_path):
    conn = live_cloud.sdk(user="demo")
    tag = secrets.token_hex(3)
    disk = tmp_path / "tiny.qcow2"
    subprocess.run(["qemu-img", "create", "-f", "qcow2", str(disk), "64M"], check=True, capture_output=True)
    image = conn.image.create_image(name=f"img-{tag}", filename=str(disk), disk_format="qcow2",
                                    container_format="bare")
    network = conn.network.create_network(name=f"net-{tag}")
    subnet = conn.network.create_subnet(network_id=network.id, cidr="10.40.0.0/24", ip_version=4)
    router = conn.network.create_router(name=f"r-{tag}",
                                        external_gateway_info={"network_id": conn.network.find_network("public").id})
    conn.network.add_interface_to_router(router, subnet_id=subnet.id)
    yield conn, image, network
    for server in conn.compute.servers():
        if server.name.endswith(tag) or server.name.startswith(f"vm-{tag}"):
            conn.compute.delete_server(server)
            conn.compute.wait_for_delete(server, wait=60)
    conn.network.remove_interface_from_router(router, subnet_id=subnet.id)
    conn.network.delete_router(router)
    conn.network.delete_network(network)
    conn.image.delete_image(image)


def test_boot_act_snapshot_delete_with_the_sdk(seed, live_cloud):
    conn, image, network = seed
    key = conn.compute.create_keypair(name=f"k-{secrets.token_hex(3)}")
    assert key.private_key and "PRIVATE KEY" in key.private_key
    server = conn.compute.create_server(name=f"vm-{image.name[4:]}", image_id=image.id, flavor_id="1",
                                        networks=[{"uuid": network.id}], key_name=key.name,
                                        security_groups=[{"name": "default"}], metadata={"role": "web"})
    server = conn.compute.wait_for_server(server, wait=60)
    assert server.status == "ACTIVE" and server.metadata == {"role": "web"} and server.key_name == key.name
    (port,) = conn.network.ports(device_id=server.id)
    assert port.device_owner == "compute:nova" and port.binding_host_id is None  # binding:* is admin-only
    admin = live_cloud.sdk(user="admin")
    assert admin.network.get_port(port.id).binding_host_id in ("compute1", "compute2")

    fip = conn.network.create_ip(floating_network_id=conn.network.find_network("public").id, port_id=port.id)
    addresses = conn.compute.get_server(server).addresses[network.name]
    assert {a["OS-EXT-IPS:type"] for a in addresses} == {"fixed", "floating"}
    assert fip.floating_ip_address in [a["addr"] for a in addresses]

    conn.compute.reboot_server(server, "HARD")
    # the SDK's wait returns at once when the object it holds already says ACTIVE: read it again first
    # (the API sets HARD_REBOOT before it answers)
    server = conn.compute.get_server(server)
    conn.compute.wait_for_server(server, status="ACTIVE", wait=60)
    conn.compute.stop_server(server)
    conn.compute.wait_for_server(server, status="SHUTOFF", wait=60)
    with pytest.raises(exceptions.ConflictException):
        conn.compute.pause_server(server)  # a stopped server cannot be paused
    conn.compute.start_server(server)
    conn.compute.wait_for_server(server, status="ACTIVE", wait=60)
    conn.compute.pause_server(server)
    conn.compute.wait_for_server(server, status="PAUSED", wait=60)
    conn.compute.unpause_server(server)
    conn.compute.wait_for_server(server, status="ACTIVE", wait=60)
    assert isinstance(conn.compute.get_server_console_output(server)["output"], str)

    snapshot = conn.compute.create_server_image(server, name=f"snap-{image.name}", wait=True, timeout=120)
    assert snapshot.status == "active" and snapshot.properties.get("image_type") == "snapshot"
    actions = [a.action for a in conn.compute.server_actions(server)]
    assert {"create", "reboot", "stop", "start", "pause", "unpause", "createImage"} <= set(actions), actions

    # a member of another project sees nothing of it
    other, password = f"other-{secrets.token_hex(3)}", secrets.token_hex(8)
    project = admin.identity.create_project(name=other, domain_id="default")
    user = admin.identity.create_user(name=other, password=password, domain_id="default")
    admin.identity.assign_project_role_to_user(project, user, admin.identity.find_role("member"))
    stranger = live_cloud.sdk(user=other, project=other, password=password)
    with pytest.raises(exceptions.NotFoundException):
        stranger.compute.get_server(server.id)
    with pytest.raises(exceptions.NotFoundException):
        stranger.compute.delete_server(server.id, ignore_missing=False)
    assert [s.id for s in stranger.compute.servers()] == []
    admin.identity.delete_user(user)
    admin.identity.delete_project(project)

    conn.network.delete_ip(fip)
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=60)
    assert list(conn.network.ports(device_id=server.id)) == []
    conn.image.delete_image(snapshot)
    conn.compute.delete_keypair(key)


def test_server_groups_spread_and_quota_with_the_sdk(seed, live_cloud):
    conn, image, network = seed
    tag = image.name[4:]
    group = conn.compute.create_server_group(name=f"g-{tag}", policies=["anti-affinity"])
    servers = [conn.compute.create_server(name=f"vm-{tag}-{i}", image_id=image.id, flavor_id="1",
                                          networks=[{"uuid": network.id}], scheduler_hints={"group": group.id})
               for i in range(2)]
    servers = [conn.compute.wait_for_server(s, wait=60) for s in servers]
    admin = live_cloud.sdk(user="admin")
    hosts = {admin.compute.get_server(s.id).compute_host for s in servers}
    assert hosts == {"compute1", "compute2"}  # anti-affinity: one per node
    third = conn.compute.create_server(name=f"vm-{tag}-2", image_id=image.id, flavor_id="1",
                                       networks=[{"uuid": network.id}], scheduler_hints={"group": group.id})
    third = conn.compute.wait_for_server(third, status="ERROR", failures=["ACTIVE"], wait=60)
    assert "No valid host" in third.fault["message"]

    # the quota: demo may not go past its instances limit
    project = admin.identity.find_project("demo")
    admin.compute.update_quota_set(project.id, instances=3)
    try:
        with pytest.raises(exceptions.ForbiddenException, match="Quota exceeded"):
            conn.compute.create_server(name=f"vm-{tag}-x", image_id=image.id, flavor_id="1",
                                       networks=[{"uuid": network.id}])
    finally:
        admin.compute.revert_quota_set(project.id)
    conn.compute.delete_server(third)
    conn.compute.wait_for_delete(third, wait=60)
    for server in servers:
        conn.compute.delete_server(server)
        conn.compute.wait_for_delete(server, wait=60)
    conn.compute.delete_server_group(group)
    # every claim released
    assert all(h.vcpus_used == 0 for h in admin.compute.hypervisors(details=True))
