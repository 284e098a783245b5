"""Nova's os-volume_attachments end to end in-process: a server spawned on a real libvirt test-driver
node, volumes made as qcow2 files by the storage task bodies, the attach/detach the API sends on commit
taken off the node's queue on the broker and run here (workers.compute_volumes) with the real driver.
The volume's states, its Cinder attachment, the mapping row, the domain's definition, the action log
and the API bodies (Nova 2.1, Cinder 3.0) are checked; then the API's refusals."""
from __future__ import annotations

import secrets
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.compute.models import BlockDeviceMapping, ComputeNode, Instance, InstanceAction, InstanceFault
from apps.compute.services import volumes as attach_services
from apps.volumes import services as volume_services
from apps.volumes.models import StorageBackend, Volume, VolumeAttachment
from tests.compute.helpers import nova_error
from tests.control_reports import run_storage_task as run
from tests.workers.compute.conftest import (
    Node,
    make_instance,
    make_qcow2,
    needs_tools,
    queued,
    run_task,
    upload_image,
)
from tests.workers.compute.conftest import node as _node  # noqa: F401 - the node fixture, used through `up_node`
from workers import compute, compute_control, compute_volumes, storage
from workers.drivers.hypervisor.libvirt import RUNNING, DiskSpec

pytestmark = needs_tools


@pytest.fixture
def up_node(_node: Node) -> Node:  # noqa: F811
    """The test-driver node with a fresh heartbeat (the services send only to nodes that are up)."""
    ComputeNode.objects.filter(pk=_node.row.pk).update(last_heartbeat=timezone.now())
    return _node


@pytest.fixture
def store(cloud: Any, settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A storage backend whose volume files the storage task bodies make under tmp_path."""
    settings.STRATUS_VOLUMES_DIR = str(tmp_path / "volumes")
    host = f"store-{secrets.token_hex(3)}"
    volume_services.backend_report(host=host, capacity_gb=100, free_gb=100, path=str(tmp_path / "volumes" / host))
    StorageBackend.objects.exclude(host=host).update(last_heartbeat=None)
    return host


def make_volume(cloud: Any, host: str, name: str = "v", actor: Any = None) -> Volume:
    volume = volume_services.volume_create(actor=actor or cloud.member_actor, size=1, name=name)
    assert run(storage.create_volume, volume_id=volume.id, size_gb=1, host=host) == "available"
    return Volume.objects.get(pk=volume.id)


def spawned(cloud: Any, node: Node, tmp_path: Path, **kw: Any) -> Instance:
    image = upload_image(cloud.member_actor, make_qcow2(tmp_path / f"img-{secrets.token_hex(2)}.qcow2"))
    inst = make_instance(cloud, node, image, vm_state="building", task_state="spawning", **kw)
    assert run_task("spawn", inst.id, request_id="req-spawn") == "spawned"
    inst.refresh_from_db()
    assert (inst.vm_state, inst.power_state) == ("active", RUNNING)
    return inst


def run_sent(callbacks: list[Callable[[], Any]], host: str) -> list[str]:
    """Send what the services queued on commit, take it off the node's queue, run it here."""
    for callback in callbacks:
        callback()
    calls = queued(compute.queue_for(host))
    assert calls and all(name.startswith("workers.compute_volumes.") for name, _ in calls), calls
    return [getattr(compute_volumes, name.rsplit(".", 1)[1])(**kwargs) for name, kwargs in calls]


def defined_disks(node: Node, instance_id: str) -> dict[str, tuple[str | None, str | None]]:
    """target → (source file, serial) in the domain's persistent definition."""
    root = ET.fromstring(node.driver.definition(instance_id))
    found = {}
    for disk in root.iter("disk"):
        source, serial = disk.find("source"), disk.find("serial")
        found[disk.find("target").get("dev")] = (source.get("file") if source is not None else None,
                                                 serial.text if serial is not None else None)
    return found


def test_attach_then_detach_on_the_test_driver(cloud, up_node, store, tmp_path,
                                               django_capture_on_commit_callbacks) -> None:
    inst = spawned(cloud, up_node, tmp_path, ephemeral_gb=1)
    volume = make_volume(cloud, store)
    path = f"{tmp_path}/volumes/{store}/volume-{volume.id}.qcow2"
    assert Path(path).is_file()

    started = time.monotonic()
    with django_capture_on_commit_callbacks() as callbacks:
        response = cloud.member.post(f"servers/{inst.id}/os-volume_attachments",
                                     {"volumeAttachment": {"volumeId": volume.id}})
    assert response.status_code == 200, response.content
    # root vda, ephemeral vdb: the volume is the next one
    assert response.json() == {"volumeAttachment": {"id": volume.id, "serverId": inst.id, "volumeId": volume.id,
                                                    "device": "/dev/vdc"}}
    assert Volume.objects.get(pk=volume.id).status == "reserved"
    assert BlockDeviceMapping.objects.get(instance=inst, volume_id=volume.id).status == "attaching"
    # a node speaks only of its own instances: another host's reports change nothing
    assert attach_services.server_volume_connecting(instance_id=inst.id, volume_id=volume.id, host="liar") is None
    assert not attach_services.server_volume_attached(instance_id=inst.id, volume_id=volume.id, host="liar")
    assert not attach_services.server_volume_attach_failed(instance_id=inst.id, volume_id=volume.id, host="liar",
                                                           message="no")
    assert Volume.objects.get(pk=volume.id).status == "reserved"
    assert run_sent(callbacks, up_node.host) == ["attached"]
    elapsed = time.monotonic() - started
    print(f"\nattach on the test driver: volume in-use {elapsed * 1000:.0f} ms after the API call")

    volume.refresh_from_db()
    assert volume.status == "in-use"
    [attachment] = VolumeAttachment.objects.filter(volume=volume)
    assert (attachment.server_id, attachment.host_name, attachment.device, attachment.status) == \
        (inst.id, up_node.host, "/dev/vdc", "attached")
    assert attachment.attached_at is not None
    bdm = BlockDeviceMapping.objects.get(instance=inst, volume_id=volume.id)
    assert (bdm.status, bdm.attachment_id, bdm.device_name, bdm.boot_index) == \
        ("attached", attachment.id, "/dev/vdc", None)
    # the test driver has no hot-plug: the disk is in the persistent definition
    assert defined_disks(up_node, inst.id)["vdc"] == (path, volume.id)
    # a redelivered task finds the work done: the control tier's answer (one query, plain values)
    with CaptureQueriesContext(connection) as queries:
        mapping = compute_control.server_volume_mapping(instance_id=inst.id, volume_id=volume.id)
    assert mapping == {"status": "attached", "device_name": "/dev/vdc", "host": up_node.host}
    assert len(queries) == 1
    assert compute_control.server_volume_mapping(instance_id=inst.id, volume_id=str(uuid.uuid4())) is None
    assert compute_volumes.attach_volume(inst.id, volume.id) == "skipped"

    # what the APIs show
    listed = cloud.member.get(f"servers/{inst.id}/os-volume_attachments").json()
    assert listed == {"volumeAttachments": [{"id": volume.id, "serverId": inst.id, "volumeId": volume.id,
                                             "device": "/dev/vdc"}]}
    shown = cloud.member.get(f"servers/{inst.id}/os-volume_attachments/{volume.id}").json()
    assert shown["volumeAttachment"]["device"] == "/dev/vdc"
    server = cloud.member.get(f"servers/{inst.id}").json()["server"]
    assert server["os-extended-volumes:volumes_attached"] == [{"id": volume.id}]
    cinder = cloud.member.to("volume")
    body = cinder.get(f"volumes/{volume.id}").json()["volume"]
    assert body["status"] == "in-use"
    assert body["attachments"] == [{
        "server_id": inst.id, "attachment_id": attachment.id, "host_name": up_node.host, "volume_id": volume.id,
        "device": "/dev/vdc", "id": volume.id,
        "attached_at": attachment.attached_at.strftime("%Y-%m-%dT%H:%M:%S.%f")}]

    # an in-use volume is not deleted, not attached twice
    nova_error(cloud.member.post(f"servers/{inst.id}/os-volume_attachments",
                                 {"volumeAttachment": {"volumeId": volume.id}}), 400, "badRequest")

    with django_capture_on_commit_callbacks() as callbacks:
        response = cloud.member.delete(f"servers/{inst.id}/os-volume_attachments/{volume.id}")
    assert response.status_code == 202, response.content
    assert Volume.objects.get(pk=volume.id).status == "detaching"
    assert run_sent(callbacks, up_node.host) == ["detached"]
    volume.refresh_from_db()
    assert volume.status == "available" and not VolumeAttachment.objects.filter(volume=volume).exists()
    assert not BlockDeviceMapping.objects.filter(instance=inst).exists()
    assert "vdc" not in defined_disks(up_node, inst.id)
    assert compute_volumes.detach_volume(inst.id, volume.id) == "gone"
    assert cloud.member.get(f"servers/{inst.id}").json()["server"]["os-extended-volumes:volumes_attached"] == []
    assert cinder.get(f"volumes/{volume.id}").json()["volume"]["attachments"] == []

    actions = {a.action: a for a in InstanceAction.objects.filter(instance=inst)}
    for record, event in (("attach_volume", "compute_attach_volume"), ("detach_volume", "compute_detach_volume")):
        [row] = actions[record].events.all()
        assert (row.event, row.result, row.host) == (event, "Success", up_node.host)
        assert actions[record].finish_time is not None

    # the same volume attached again takes the first free name again, and a stopped server takes one too
    Instance.objects.filter(pk=inst.id).update(vm_state="stopped")
    up_node.driver.stop(inst.id)
    bdm = attach_services.server_volume_attach(actor=cloud.member_actor, server_id=inst.id, volume_id=volume.id,
                                               device="/dev/vdf", request_id="req-again")
    assert bdm.device_name == "/dev/vdf"
    assert compute_volumes.attach_volume(inst.id, volume.id, request_id="req-again") == "attached"
    assert defined_disks(up_node, inst.id)["vdf"] == (path, volume.id)


def test_a_failed_attach_and_detach_leave_things_as_they_were(cloud, up_node, store, tmp_path) -> None:
    inst = spawned(cloud, up_node, tmp_path)
    volume = make_volume(cloud, store)
    attach_services.server_volume_attach(actor=cloud.member_actor, server_id=inst.id, volume_id=volume.id,
                                         request_id="req-attach")
    up_node.driver.destroy(inst.id)  # the domain vanished under the instance
    assert compute_volumes.attach_volume(inst.id, volume.id, request_id="req-attach") == "failed"
    volume.refresh_from_db()
    assert volume.status == "available" and not VolumeAttachment.objects.filter(volume=volume).exists()
    assert not BlockDeviceMapping.objects.filter(instance=inst).exists()
    fault = InstanceFault.objects.filter(instance=inst).latest("created_at")
    assert fault.message.startswith(f"Failed to attach volume {volume.id} at /dev/vdb:")
    [event] = InstanceAction.objects.get(instance=inst, request_id="req-attach").events.all()
    assert event.result == "Error" and event.traceback
    assert compute_volumes.attach_volume(inst.id, volume.id) == "gone"  # redelivered: nothing left to do

    # a worker that died after plugging the disk in but before its report: the redelivered task
    # finds the same file at the same target and reports
    inst = spawned(cloud, up_node, tmp_path, name="vm2")
    bdm = attach_services.server_volume_attach(actor=cloud.member_actor, server_id=inst.id, volume_id=volume.id)
    path = f"{tmp_path}/volumes/{store}/volume-{volume.id}.qcow2"
    up_node.driver.attach_disk(inst.id, DiskSpec(path=path, target="vdb", serial=volume.id))
    assert compute_volumes.attach_volume(inst.id, volume.id) == "attached"
    assert Volume.objects.get(pk=volume.id).status == "in-use"
    assert defined_disks(up_node, inst.id)["vdb"] == (path, volume.id) and bdm.device_name == "/dev/vdb"

    # a detach that fails on the node: in-use again, still attached
    attach_services.server_volume_detach(actor=cloud.member_actor, server_id=inst.id, volume_id=volume.id,
                                         request_id="req-detach")
    up_node.driver.destroy(inst.id)
    assert compute_volumes.detach_volume(inst.id, volume.id, request_id="req-detach") == "failed"
    volume.refresh_from_db()
    assert volume.status == "in-use" and VolumeAttachment.objects.get(volume=volume).server_id == inst.id
    assert BlockDeviceMapping.objects.get(instance=inst, volume_id=volume.id).status == "attached"
    assert InstanceFault.objects.filter(instance=inst, message__startswith="Failed to detach").exists()


def test_the_api_refuses(cloud, up_node, store, tmp_path) -> None:
    inst = spawned(cloud, up_node, tmp_path)
    url = f"servers/{inst.id}/os-volume_attachments"
    volume = make_volume(cloud, store)
    other_volume = make_volume(cloud, store, actor=cloud.other_actor)

    def attach(body: Any, client: Any = None) -> Any:
        return (client or cloud.member).post(url, body)

    # bodies as Nova 2.1's schema has them
    nova_error(attach({"volumeAttachment": {}}), 400, "badRequest")
    nova_error(attach({"volume": {"volumeId": volume.id}}), 400, "badRequest")
    nova_error(attach({"volumeAttachment": {"volumeId": "not-a-uuid"}}), 400, "badRequest")
    nova_error(attach({"volumeAttachment": {"volumeId": volume.id, "tag": "t"}}), 400, "badRequest")
    nova_error(attach({"volumeAttachment": {"volumeId": volume.id, "device": "/bad/path"}}), 400, "badRequest")
    nova_error(attach({"volumeAttachment": {"volumeId": volume.id, "device": "/dev/vda"}}), 400, "badRequest")
    # what is not the caller's is not found
    nova_error(attach({"volumeAttachment": {"volumeId": other_volume.id}}), 404, "itemNotFound")
    nova_error(attach({"volumeAttachment": {"volumeId": str(uuid.uuid4())}}), 404, "itemNotFound")
    nova_error(attach({"volumeAttachment": {"volumeId": volume.id}}, cloud.other), 404, "itemNotFound")
    nova_error(cloud.other.get(url), 404, "itemNotFound")
    nova_error(cloud.member.get(f"{url}/{other_volume.id}"), 404, "itemNotFound")
    nova_error(cloud.member.delete(f"{url}/{volume.id}"), 404, "itemNotFound")  # not attached
    # a reader may look, not attach
    nova_error(attach({"volumeAttachment": {"volumeId": volume.id}}, cloud.reader), 403)
    # a volume that is not available
    Volume.objects.filter(pk=volume.id).update(status="creating")
    nova_error(attach({"volumeAttachment": {"volumeId": volume.id}}), 400, "badRequest")
    Volume.objects.filter(pk=volume.id).update(status="available")
    # a server in the wrong state, a locked one
    Instance.objects.filter(pk=inst.id).update(task_state="rebooting")
    nova_error(attach({"volumeAttachment": {"volumeId": volume.id}}), 409, "conflictingRequest")
    Instance.objects.filter(pk=inst.id).update(task_state=None, vm_state="error")
    nova_error(attach({"volumeAttachment": {"volumeId": volume.id}}), 409, "conflictingRequest")
    Instance.objects.filter(pk=inst.id).update(vm_state="active", locked=True, locked_by="admin")
    nova_error(attach({"volumeAttachment": {"volumeId": volume.id}}), 409, "conflictingRequest")
    Instance.objects.filter(pk=inst.id).update(locked=False, locked_by=None)
    assert Volume.objects.get(pk=volume.id).status == "available"
    assert not BlockDeviceMapping.objects.exists() and not VolumeAttachment.objects.exists()

    # the same volume twice while the first attach runs; detaching it before it is attached
    assert attach({"volumeAttachment": {"volumeId": volume.id, "device": "/dev/vdd"}}).status_code == 200
    nova_error(attach({"volumeAttachment": {"volumeId": volume.id}}), 400, "badRequest")
    nova_error(cloud.member.delete(f"{url}/{volume.id}"), 400, "badRequest")
    # another volume cannot take the same device
    second = make_volume(cloud, store, name="second")
    nova_error(attach({"volumeAttachment": {"volumeId": second.id, "device": "/dev/vdd"}}), 400, "badRequest")
    # swapping is not offered
    nova_error(cloud.member.put(f"{url}/{volume.id}", {"volumeAttachment": {"volumeId": second.id}}), 403)
    nova_error(cloud.admin.put(f"{url}/{volume.id}", {"volumeAttachment": {"volumeId": second.id}}), 400)


def test_server_lists_read_volumes_in_one_query(cloud, up_node, store, tmp_path) -> None:
    image = upload_image(cloud.member_actor, make_qcow2(tmp_path / "img.qcow2"))

    def add_servers(count: int) -> None:
        for index in range(count):
            inst = make_instance(cloud, up_node, image, name=f"s{index}", vm_state="active", task_state=None)
            for n in range(2):
                BlockDeviceMapping.objects.create(instance=inst, volume_id=str(uuid.uuid4()),
                                                  device_name=f"/dev/vd{'bc'[n]}", status="attached")

    def count_queries() -> tuple[int, list[dict]]:
        cloud.member.get("servers/detail")  # warm the token cache
        with CaptureQueriesContext(connection) as ctx:
            response = cloud.member.get("servers/detail")
        assert response.status_code == 200
        return len(ctx.captured_queries), response.json()["servers"]

    add_servers(2)
    few, servers = count_queries()
    assert all(len(s["os-extended-volumes:volumes_attached"]) == 2 for s in servers)
    add_servers(4)
    many, servers = count_queries()
    assert len(servers) == 6 and all(len(s["os-extended-volumes:volumes_attached"]) == 2 for s in servers)
    assert many == few, (few, many)


def test_deleting_the_server_leaves_its_volume_available(cloud, up_node, store, tmp_path) -> None:
    from apps.compute.services import server_lifecycle

    inst = spawned(cloud, up_node, tmp_path)
    volume = make_volume(cloud, store)
    attach_services.server_volume_attach(actor=cloud.member_actor, server_id=inst.id, volume_id=volume.id)
    assert compute_volumes.attach_volume(inst.id, volume.id) == "attached"
    server_lifecycle.server_delete(actor=cloud.member_actor, server_id=inst.id, request_id="req-delete")
    assert run_task("destroy", inst.id, request_id="req-delete") == "destroyed"
    assert Instance.objects.get(pk=inst.id).deleted
    volume.refresh_from_db()
    assert volume.status == "available" and not VolumeAttachment.objects.filter(volume=volume).exists()
    assert not BlockDeviceMapping.objects.filter(instance_id=inst.id).exists()
    # the volume's file stays (not delete_on_termination) and attaches elsewhere
    assert Path(f"{tmp_path}/volumes/{store}/volume-{volume.id}.qcow2").is_file()
