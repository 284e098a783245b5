"""``server_get`` on PostgreSQL reads a server with what its body shows in one hand-written statement
(apps/compute/selectors/servers.py ``_server_get_hot``), prepared once per database session: the same
instance, attributes and API body as the ORM's seven statements (``_server_get_orm``), the same scoping
(another project's server, a deleted one, an unknown one: 404)."""
from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.compute.api import serializers_servers as out
from apps.compute.models import BlockDeviceMapping, Instance, InstanceFault
from apps.compute.selectors import servers as selectors
from apps.networks.models import FloatingIP, IPAllocation, Network, Port
from tests.compute.test_servers_api import boot_active
from tests.compute.test_servers_support import Env, env_fixture, image_dir_fixture  # noqa: F401

pytestmark = [pytest.mark.django_db,
              pytest.mark.skipif("connection.vendor != 'postgresql'", reason="the two-statement path is PostgreSQL's")]


def _seen(instance: Instance) -> dict[str, Any]:
    """Everything a server body and the services read of a ``server_get`` result."""
    return {
        "fields": {f.attname: getattr(instance, f.attname) for f in Instance._meta.concrete_fields},
        "node": None if instance.node is None else {f.attname: getattr(instance.node, f.attname)
                                                     for f in instance.node._meta.concrete_fields},
        "tags": list(instance.tag_list), "tags_all": [t.tag for t in instance.tags.all()],
        "fault": None if instance.fault is None else (instance.fault.id, instance.fault.code, instance.fault.message,
                                                      instance.fault.details, instance.fault.created_at),
        "faults_all": [f.id for f in instance.faults.all()],
        "ports": [(p.id, p.mac_address, p.created_at, p.network.id, p.network.name, p.ip_list)
                  for p in instance.ports],
        "floating": instance.floating_ips,
        "volumes": [{f.attname: getattr(b, f.attname) for f in BlockDeviceMapping._meta.concrete_fields}
                    for b in instance.volume_list],
    }


def _busy_server(env: Env) -> Instance:
    """A server with two tags, two faults, two ports of its own made at the same instant (one with two
    addresses and a floating IP), another project's port naming it as device, and three volumes."""
    server = boot_active(env, tags=["zeta", "alpha"], metadata={"k": "v"})
    first = Port.objects.get(device_id=server.id)
    IPAllocation.objects.create(port=first, subnet=first.fixed_ips.get().subnet, network=first.network,
                                ip_address="10.0.0.250")
    second_net = Network.objects.create(project_id=server.project_id, name="second")
    second = Port.objects.create(project_id=server.project_id, network=second_net, mac_address="fa:16:3e:00:00:02",
                                 device_id=server.id, device_owner="compute:nova")
    stranger_net = Network.objects.create(project_id=env.cloud.other_project.id, name="theirs")
    Port.objects.create(project_id=env.cloud.other_project.id, network=stranger_net, mac_address="fa:16:3e:00:00:03",
                        device_id=server.id)
    external = Network.objects.create(project_id=server.project_id, name="ext", external=True)
    floating_port = Port.objects.create(project_id=server.project_id, network=external,
                                        mac_address="fa:16:3e:00:00:04", device_owner="network:floatingip")
    FloatingIP.objects.create(project_id=server.project_id, floating_network=external, floating_port=floating_port,
                              floating_ip_address="172.24.4.9", port=first, fixed_ip_address="10.0.0.250")
    Port.objects.filter(pk=second.pk).update(created_at=first.created_at)  # told apart by id, not by time
    old = timezone.now() - timezone.timedelta(hours=1)
    InstanceFault.objects.create(instance=server, code=500, message="old", details="trace")
    InstanceFault.objects.filter(message="old").update(created_at=old)
    InstanceFault.objects.create(instance=server, code=409, message="newest", details="why")
    BlockDeviceMapping.objects.create(instance=server, volume_id="0d3f0c1e-4ad4-4f7b-a0c7-0f6a3a9b8f10",
                                      device_name="/dev/vdc", delete_on_termination=True)
    BlockDeviceMapping.objects.create(instance=server, volume_id="8e5a6a3c-1c6e-4b59-8d52-55d2fdd9e4a1",
                                      device_name="/dev/vdb", boot_index=0)
    BlockDeviceMapping.objects.create(instance=server, volume_id="5b9a1f3e-2d7c-4e8a-9f10-3c4d5e6f7a8b",
                                      device_name="/dev/vdd")
    return server


def test_one_statement_reads_what_the_orm_reads(env: Env) -> None:
    server = _busy_server(env)
    for actor in (env.cloud.member_actor, env.cloud.reader_actor, env.cloud.admin_actor):
        selectors.server_get(actor=actor, server_id=server.id)  # prepares the statements in this session
        with CaptureQueriesContext(connection) as ctx:
            hot = selectors.server_get(actor=actor, server_id=server.id)
        assert [q["sql"].split()[0] for q in ctx.captured_queries] == ["EXECUTE"]
        orm = selectors._server_get_orm(actor=actor, server_id=server.id, with_deleted=False)
        assert _seen(hot) == _seen(orm)
        for version in ((2, 1), (2, 3), (2, 16), (2, 26)):
            assert out.server_detail(hot, "http://x/compute/v2.1", admin=actor.is_admin, version=version) == \
                out.server_detail(orm, "http://x/compute/v2.1", admin=actor.is_admin, version=version)
    seen = _seen(hot)
    assert seen["tags"] == ["alpha", "zeta"] and seen["fault"][2] == "newest" and len(seen["ports"]) == 2
    assert {p[4] for p in seen["ports"]} == {"private", "second"}
    assert list(seen["floating"].values()) == [["172.24.4.9"]]
    assert [v["device_name"] for v in seen["volumes"]] == ["/dev/vdb", "/dev/vdc", "/dev/vdd"]  # boot first


def test_a_bare_server_and_its_scoping(env: Env) -> None:
    server = boot_active(env)
    Port.objects.filter(device_id=server.id).delete()
    Instance.objects.filter(pk=server.id).update(node=None)
    hot = selectors.server_get(actor=env.cloud.member_actor, server_id=server.id)
    orm = selectors._server_get_orm(actor=env.cloud.member_actor, server_id=server.id, with_deleted=False)
    assert _seen(hot) == _seen(orm) and hot.node is None and hot.ports == [] and hot.fault is None
    with pytest.raises(selectors.InstanceNotFound):
        selectors.server_get(actor=env.cloud.other_actor, server_id=server.id)
    with pytest.raises(selectors.InstanceNotFound):
        selectors.server_get(actor=env.cloud.member_actor, server_id="no-such-server")
    Instance.objects.filter(pk=server.id).update(deleted=True)
    with pytest.raises(selectors.InstanceNotFound):
        selectors.server_get(actor=env.cloud.member_actor, server_id=server.id)
    assert selectors.server_get(actor=env.cloud.member_actor, server_id=server.id, with_deleted=True).deleted
    assert env.cloud.other.get(f"servers/{server.id}").status_code == 404


def test_a_prepared_statement_outlives_a_rolled_back_transaction(env: Env) -> None:
    from django.db import transaction

    server = boot_active(env)
    with pytest.raises(RuntimeError), transaction.atomic():
        selectors.server_get(actor=env.cloud.admin_actor, server_id=server.id)  # the first: PREPAREs
        raise RuntimeError
    with CaptureQueriesContext(connection) as ctx:
        assert selectors.server_get(actor=env.cloud.admin_actor, server_id=server.id).id == server.id
    assert [q["sql"].split()[0] for q in ctx.captured_queries] == ["EXECUTE"]
