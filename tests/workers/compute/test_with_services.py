"""The node tasks behind the server services, as the API drives them: server_create schedules onto a
registered test-driver node and binds the ports there; the spawn it sends on commit is taken off the
node's queue on the broker and run here in-process, and boots the instance; actions and delete go the
same way. The action log records the node's events."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from apps.compute.models import Flavor, Instance, InstanceAction
from apps.compute.services import nodes as node_services
from apps.compute.services import server_lifecycle, servers
from apps.networks.models import Port
from tests.workers.compute.conftest import needs_tools, queued
from workers import compute
from workers.drivers.hypervisor.layout import InstanceLayout
from workers.drivers.hypervisor.libvirt import NOSTATE, RUNNING, SHUTDOWN

pytestmark = needs_tools


@pytest.fixture
def flavor(db) -> Flavor:
    return Flavor.objects.create(flavorid="w1.tiny", name="w1.tiny", vcpus=1, memory_mb=256, root_gb=1)


def sent(callbacks: list[Callable[[], Any]], host: str) -> list[tuple[str, dict]]:
    """Run the on-commit callbacks (they send the tasks to the node's queue on the broker) and take
    the messages off that queue: (task name, kwargs)."""
    for callback in callbacks:
        callback()
    return queued(compute.queue_for(host))


def run(calls: list[tuple[str, dict]]) -> list[str]:
    """Run the tasks in this process, as the node's worker would."""
    return [getattr(compute, name.rsplit(".", 1)[1])(**kwargs) for name, kwargs in calls]


def test_create_act_delete(cloud, node, image, network, flavor,
                           django_capture_on_commit_callbacks) -> None:
    info = node.driver.node_info()
    node_services.compute_node_register(host=node.host, hypervisor_hostname=node.host, hypervisor_type="test",
                                        hypervisor_version=info.hypervisor_version, libvirt_uri=node.driver.uri,
                                        host_ip="127.0.0.1", vcpus=info.vcpus, memory_mb=info.memory_mb,
                                        local_gb=info.disk_gb)
    actor = cloud.member_actor
    with django_capture_on_commit_callbacks() as callbacks:
        [inst] = servers.server_create(actor=actor, name="web", image_ref=image.id, flavor_ref="w1.tiny",
                                               networks=[{"uuid": network.id}], config_drive=True,
                                               request_id="req-create")
    calls = sent(callbacks, node.host)
    [(name, kwargs)] = calls
    assert (name, kwargs["instance_id"], kwargs["request_id"]) == ("workers.compute.spawn", inst.id, "req-create")
    # the spec of plain values the node works from (it reads no database), made in the service's transaction
    spec = kwargs["spec"]
    assert (spec["id"], spec["host"], spec["vcpus"], spec["memory_mb"], spec["config_drive"]) == (
        inst.id, node.host, 1, 256, True)
    # the image as a URL of the image API signed for this image, to be read from this node (no store location)
    assert spec["image"]["id"] == image.id and "location" not in spec["image"]
    assert spec["image"]["url"]["path"].startswith(
        f"/image/v2/node/images/{image.id}/file?purpose=read&node={node.host}&")
    assert spec["image"]["url"]["signature"] and "signature" not in spec["image"]["url"]["path"]
    assert spec["image"]["checksum"] == image.checksum and spec["image"]["os_hash_value"] == image.os_hash_value
    port = Port.objects.get(device_id=inst.id)
    assert spec["nics"] == [{"port_id": port.id, "mac": port.mac_address, "mtu": network.mtu or None}]
    assert spec["config_drive_document"]["uuid"] == inst.id
    assert port.binding_host_id == node.host
    assert run(calls) == ["spawned"]
    inst.refresh_from_db()
    assert (inst.vm_state, inst.task_state, inst.power_state, inst.host) == ("active", None, RUNNING, node.host)
    create = InstanceAction.objects.get(instance=inst, action="create")
    event = create.events.get()
    assert (event.event, event.result, event.host) == ("compute__do_build_and_run_instance", "Success", node.host)

    for action, service, args, power in (
            ("os-stop", server_lifecycle.server_power, {"action": "stop"}, SHUTDOWN),
            ("os-start", server_lifecycle.server_power, {"action": "start"}, RUNNING),
            ("reboot", server_lifecycle.server_reboot, {"type": "HARD"}, RUNNING)):
        with django_capture_on_commit_callbacks() as callbacks:
            service(actor=actor, server_id=inst.id, request_id=f"req-{action}", **args)
        assert run(sent(callbacks, node.host)) == ["done"]
        inst.refresh_from_db()
        assert (inst.task_state, inst.power_state) == (None, power), action
        assert node.driver.power_state(inst.id) == power
    assert InstanceAction.objects.get(instance=inst, request_id="req-os-stop").events.get().result == "Success"

    with django_capture_on_commit_callbacks() as callbacks:
        server_lifecycle.server_delete(actor=actor, server_id=inst.id, request_id="req-delete")
    assert run(sent(callbacks, node.host)) == ["destroyed"]
    inst.refresh_from_db()
    assert inst.deleted and node.driver.power_state(inst.id) == NOSTATE
    assert not InstanceLayout(compute.instances_path(), inst.id).dir.exists()
    assert not Port.objects.filter(device_id=inst.id).exists()
    node.row.refresh_from_db()
    assert (node.row.vcpus_used, node.row.memory_mb_used, node.row.local_gb_used) == (0, 0, 0)
    assert not Instance.objects.filter(pk=inst.id, deleted=False).exists()
