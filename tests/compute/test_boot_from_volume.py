"""Boot from volume through the services and the API, with the real task bodies in-process: the
storage agent's (real qcow2 files through qemu-img) and the compute node's (libvirt's test driver).
server_create sends them on commit; the tests take them off the broker's queues and run them, as the
workers would. Validation goes through the Nova API (its messages and statuses, nothing changed)."""
from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from apps.compute.api import inputs
from apps.compute.models import BlockDeviceMapping, ComputeNode, Instance, InstanceFault
from apps.compute.services import nodes as node_services
from apps.compute.services import server_lifecycle, server_rebuild_resize, server_reports, server_snapshots, servers
from apps.identity import services as identity_services
from apps.images.models import Image
from apps.volumes import services as volume_services
from apps.volumes.models import Snapshot, StorageBackend, Volume, VolumeAttachment
from tests.compute.helpers import nova_error
from tests.control_reports import run_storage_task as run
from tests.workers.compute.conftest import image, needs_tools, network, node, queued  # noqa: F401
from workers import compute, storage
from workers.drivers.hypervisor.layout import InstanceLayout
from workers.drivers.hypervisor.libvirt import NOSTATE, RUNNING

pytestmark = needs_tools


@pytest.fixture
def store(cloud, settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """A storage backend whose agent's task bodies run here, keeping its files under tmp."""
    settings.STRATUS_VOLUMES_DIR = str(tmp_path / "volumes")
    host = f"store-{secrets.token_hex(3)}"
    root = tmp_path / "volumes" / host
    root.mkdir(parents=True)
    volume_services.backend_report(host=host, capacity_gb=100, free_gb=100, path=str(root))
    StorageBackend.objects.exclude(host=host).update(last_heartbeat=None)
    yield host, root


@pytest.fixture
def up(node, db) -> Any:  # noqa: F811
    info = node.driver.node_info()
    node_services.compute_node_register(host=node.host, hypervisor_hostname=node.host, hypervisor_type="test",
                                        hypervisor_version=info.hypervisor_version, libvirt_uri=node.driver.uri,
                                        host_ip="127.0.0.1", vcpus=info.vcpus, memory_mb=info.memory_mb,
                                        local_gb=info.disk_gb)
    return node


@pytest.fixture
def flavor(db) -> Any:
    from apps.compute.models import Flavor

    return Flavor.objects.create(flavorid="b1.tiny", name="b1.tiny", vcpus=1, memory_mb=256, root_gb=1)


def sent(callbacks: list[Callable[[], Any]], *queues: str) -> dict[str, list[tuple[str, dict]]]:
    for callback in callbacks:
        callback()
    return {q: queued(q) for q in queues}


def run_storage(calls: list[tuple[str, dict]]) -> list[str]:
    """The storage node's tasks, each followed by its reports applied on the control side."""
    return [run(getattr(storage, name.rsplit(".", 1)[1]), **kwargs) for name, kwargs in calls]


def run_compute(calls: list[tuple[str, dict]]) -> list[str]:
    return [getattr(compute, name.rsplit(".", 1)[1])(**kwargs) for name, kwargs in calls]


def boot(actor: Any, network: Any, capture: Any, *, image_ref: str = "", bdms: list[dict], **kw: Any  # noqa: F811
         ) -> tuple[Instance, list[Callable[[], Any]]]:
    with capture() as callbacks:
        [inst] = servers.server_create(actor=actor, name="bfv", image_ref=image_ref, flavor_ref="b1.tiny",
                                               networks=[{"uuid": network.id}],
                                               block_devices=inputs.block_devices(bdms),
                                               request_id=f"req-{uuid.uuid4()}", **kw)
    return inst, callbacks


def disks_of(node: Any, inst: Instance) -> dict[str, str]:  # noqa: F811
    """target dev → source file of the domain's persistent definition."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(node.driver.definition(inst.id))
    return {d.find("target").get("dev"): d.find("source").get("file")
            for d in root.find("devices").findall("disk") if d.get("device") == "disk"}


def claims(node: Any) -> tuple[int, int, int]:  # noqa: F811
    row = ComputeNode.objects.get(host=node.host)
    return row.vcpus_used, row.memory_mb_used, row.local_gb_used


def delete(actor: Any, inst: Instance, capture: Any, node: Any, store_host: str) -> None:  # noqa: F811
    with capture() as callbacks:
        server_lifecycle.server_delete(actor=actor, server_id=inst.id, request_id="req-del")
    calls = sent(callbacks, compute.queue_for(node.host))
    assert run_compute(calls[compute.queue_for(node.host)]) == ["destroyed"]


def test_boot_from_image_to_volume_then_rebuild_reboot_and_delete(cloud, up, image, network, flavor, store,  # noqa: F811
                                                                  django_capture_on_commit_callbacks,
                                                                  monkeypatch) -> None:
    store_host, root = store
    actor = cloud.member_actor
    started = time.monotonic()
    inst, callbacks = boot(actor, network, django_capture_on_commit_callbacks, bdms=[
        {"source_type": "image", "destination_type": "volume", "uuid": image.id, "boot_index": 0,
         "volume_size": 1, "delete_on_termination": True}])
    bdm = BlockDeviceMapping.objects.get(instance=inst)
    assert (bdm.boot_index, bdm.device_name, bdm.source_type, bdm.image_id, bdm.delete_on_termination,
            bdm.status) == (0, "/dev/vda", "image", image.id, True, "attaching")
    volume = Volume.objects.get(pk=bdm.volume_id)
    assert (volume.status, volume.size, volume.bootable, volume.image_id) == ("creating", 1, True, image.id)
    assert inst.image_id == ""
    calls = sent(callbacks, storage.queue_for(store_host), compute.queue_for(up.host))
    # the spawn waits for the volume: the storage agent makes it while the node's task is waiting
    made: list[str] = []

    class WhileWaiting:
        monotonic = staticmethod(time.monotonic)

        @staticmethod
        def sleep(_seconds: float) -> None:
            assert Instance.objects.get(pk=inst.id).vm_state == "building"
            if not made:
                made.extend(run_storage(calls[storage.queue_for(store_host)]))

    monkeypatch.setattr(compute, "time", WhileWaiting)
    assert run_compute(calls[compute.queue_for(up.host)]) == ["spawned"]
    assert made == ["available"]
    elapsed = time.monotonic() - started
    inst.refresh_from_db()
    assert (inst.vm_state, inst.power_state) == ("active", RUNNING)
    volume.refresh_from_db()
    attachment = VolumeAttachment.objects.get(volume=volume)
    assert volume.status == "in-use"
    assert (attachment.server_id, attachment.device, attachment.host_name, attachment.status) == (
        inst.id, "/dev/vda", up.host, "attached")
    assert BlockDeviceMapping.objects.get(instance=inst).status == "attached"
    layout = InstanceLayout(compute.instances_path(), inst.id)
    assert disks_of(up, inst) == {"vda": str(root / f"volume-{volume.id}.qcow2")}
    assert not Path(layout.disk).exists()  # no local overlay
    print(f"boot from volume POST→ACTIVE in-process: {elapsed:.2f} s")

    # hard reboot and rebuild (same image) keep the volume as the root disk; another image is a 400
    for action, service, args in (("reboot", server_lifecycle.server_reboot, {"type": "HARD"}),
                                  ("rebuild", server_rebuild_resize.server_rebuild, {"image_ref": image.id})):
        with django_capture_on_commit_callbacks() as callbacks:
            service(actor=actor, server_id=inst.id, request_id=f"req-{action}", **args)
        assert run_compute(sent(callbacks, compute.queue_for(up.host))[compute.queue_for(up.host)]) == ["done"]
        assert disks_of(up, inst) == {"vda": str(root / f"volume-{volume.id}.qcow2")}, action

    delete(actor, inst, django_capture_on_commit_callbacks, up, store_host)
    inst.refresh_from_db()
    assert inst.deleted and up.driver.power_state(inst.id) == NOSTATE
    volume.refresh_from_db()
    assert volume.status == "deleting" and not VolumeAttachment.objects.filter(volume=volume).exists()
    assert (root / f"volume-{volume.id}.qcow2").exists()  # the node never removes a volume's file
    assert not BlockDeviceMapping.objects.filter(instance=inst).exists()
    assert claims(up) == (0, 0, 0)


def test_existing_volume_and_a_blank_one_keep_or_go_by_delete_on_termination(
        cloud, up, image, network, flavor, store, django_capture_on_commit_callbacks) -> None:  # noqa: F811
    store_host, root = store
    actor = cloud.member_actor
    with django_capture_on_commit_callbacks() as callbacks:
        given = volume_services.volume_create(actor=actor, size=1, image_id=image.id, name="bv")
    run_storage(sent(callbacks, storage.queue_for(store_host))[storage.queue_for(store_host)])
    inst, callbacks = boot(actor, network, django_capture_on_commit_callbacks, bdms=[
        {"source_type": "volume", "destination_type": "volume", "uuid": given.id, "boot_index": "0"},
        {"source_type": "blank", "destination_type": "volume", "volume_size": 1, "delete_on_termination": True}])
    given.refresh_from_db()
    assert given.status == "reserved"  # reserved for the server at once
    rows = {b.source_type: b for b in BlockDeviceMapping.objects.filter(instance=inst)}
    assert rows["volume"].device_name == "/dev/vda" and rows["blank"].device_name == "/dev/vdb"
    calls = sent(callbacks, storage.queue_for(store_host), compute.queue_for(up.host))
    assert run_storage(calls[storage.queue_for(store_host)]) == ["available"]
    assert run_compute(calls[compute.queue_for(up.host)]) == ["spawned"]
    blank = Volume.objects.get(pk=rows["blank"].volume_id)
    assert disks_of(up, inst) == {"vda": str(root / f"volume-{given.id}.qcow2"),
                                  "vdb": str(root / f"volume-{blank.id}.qcow2")}
    assert set(Volume.objects.filter(pk__in=[given.id, blank.id]).values_list("status", flat=True)) == {"in-use"}

    # a resize to a flavor with no root disk is fine for a volume-backed server; the volumes stay
    from apps.compute.models import Flavor

    Flavor.objects.create(flavorid="b0.big", name="b0.big", vcpus=2, memory_mb=512, root_gb=0)
    for action, service, args in (("resize", server_rebuild_resize.server_resize, {"flavor_ref": "b0.big"}),
                                  ("confirmResize", server_rebuild_resize.server_resize_confirm, {})):
        with django_capture_on_commit_callbacks() as callbacks:
            service(actor=actor, server_id=inst.id, request_id=f"req-{action}", **args)
        assert run_compute(sent(callbacks, compute.queue_for(up.host))[compute.queue_for(up.host)]) == ["done"]
    inst.refresh_from_db()
    assert (inst.vcpus, inst.vm_state) == (2, "active")
    assert disks_of(up, inst) == {"vda": str(root / f"volume-{given.id}.qcow2"),
                                  "vdb": str(root / f"volume-{blank.id}.qcow2")}

    delete(actor, inst, django_capture_on_commit_callbacks, up, store_host)
    given.refresh_from_db()
    blank.refresh_from_db()
    assert given.status == "available" and blank.status == "deleting"
    assert not VolumeAttachment.objects.filter(volume_id__in=[given.id, blank.id]).exists()
    assert claims(up) == (0, 0, 0)


def test_a_volume_in_error_fails_the_build_and_releases_claims(cloud, up, image, network, flavor, store,  # noqa: F811
                                                               django_capture_on_commit_callbacks) -> None:
    store_host, _root = store
    inst, callbacks = boot(cloud.member_actor, network, django_capture_on_commit_callbacks, bdms=[
        {"source_type": "image", "destination_type": "volume", "uuid": image.id, "boot_index": 0,
         "volume_size": 1}])
    calls = sent(callbacks, storage.queue_for(store_host), compute.queue_for(up.host))
    volume_id = BlockDeviceMapping.objects.get(instance=inst).volume_id
    volume_services.volume_create_failed(volume_id=volume_id, reason="qemu-img: disk full")
    assert run_compute(calls[compute.queue_for(up.host)]) == ["failed"]
    inst.refresh_from_db()
    assert inst.vm_state == "error" and inst.node is None and claims(up) == (0, 0, 0)
    fault = InstanceFault.objects.get(instance=inst)
    assert volume_id in fault.message and "error" in fault.message
    assert up.driver.power_state(inst.id) == NOSTATE


def test_the_wait_for_volumes_times_out_into_error(cloud, up, image, network, flavor, store, settings,  # noqa: F811
                                                   django_capture_on_commit_callbacks) -> None:
    settings.STRATUS_BOOT_VOLUME_TIMEOUT_SECONDS = 0.3
    store_host, _root = store
    inst, callbacks = boot(cloud.member_actor, network, django_capture_on_commit_callbacks, bdms=[
        {"source_type": "blank", "destination_type": "volume", "boot_index": 0, "volume_size": 1}])
    calls = sent(callbacks, storage.queue_for(store_host), compute.queue_for(up.host))
    assert run_compute(calls[compute.queue_for(up.host)]) == ["failed"]
    inst.refresh_from_db()
    assert inst.vm_state == "error" and claims(up) == (0, 0, 0)
    assert "did not finish being created" in InstanceFault.objects.get(instance=inst).message


def test_create_image_of_a_volume_backed_server_and_boot_from_it(cloud, up, image, network, flavor, store,  # noqa: F811
                                                                 django_capture_on_commit_callbacks) -> None:
    store_host, root = store
    actor = cloud.member_actor
    inst, callbacks = boot(actor, network, django_capture_on_commit_callbacks, bdms=[
        {"source_type": "image", "destination_type": "volume", "uuid": image.id, "boot_index": 0,
         "volume_size": 1}])
    calls = sent(callbacks, storage.queue_for(store_host), compute.queue_for(up.host))
    run_storage(calls[storage.queue_for(store_host)])
    assert run_compute(calls[compute.queue_for(up.host)]) == ["spawned"]
    volume_id = BlockDeviceMapping.objects.get(instance=inst).volume_id

    with django_capture_on_commit_callbacks() as callbacks:
        image_id = server_snapshots.server_image_create(actor=actor, server_id=inst.id, name="snap",
                                                        request_id="req-snap")
    snapshot = Snapshot.objects.get(volume_id=volume_id)
    made = Image.objects.get(pk=image_id)
    assert made.status == "queued"
    props = made.properties
    assert (props["bdm_v2"], props["root_device_name"]) == ("True", "/dev/vda")
    [mapping] = json.loads(props["block_device_mapping"])
    assert {k: mapping[k] for k in ("source_type", "destination_type", "snapshot_id", "boot_index", "volume_size",
                                    "delete_on_termination")} == {
        "source_type": "snapshot", "destination_type": "volume", "snapshot_id": snapshot.id, "boot_index": 0,
        "volume_size": 1, "delete_on_termination": False}
    calls = sent(callbacks, storage.queue_for(store_host), compute.queue_for(up.host))
    assert run_storage(calls[storage.queue_for(store_host)]) == ["available"]
    assert run_compute(calls[compute.queue_for(up.host)]) == ["done"]
    made.refresh_from_db()
    inst.refresh_from_db()
    assert (made.status, made.size, inst.task_state, inst.vm_state) == ("active", 0, None, "active")

    # the client's image → local root mapping is replaced by the image's own root volume
    second, callbacks = boot(actor, network, django_capture_on_commit_callbacks, image_ref=made.id, bdms=[
        {"source_type": "image", "destination_type": "local", "uuid": made.id, "boot_index": 0,
         "delete_on_termination": True}])
    bdm = BlockDeviceMapping.objects.get(instance=second)
    assert (bdm.source_type, bdm.snapshot_id, bdm.boot_index) == ("snapshot", snapshot.id, 0)
    assert Volume.objects.get(pk=bdm.volume_id).snapshot_id == snapshot.id
    assert second.image_id == made.id
    calls = sent(callbacks, storage.queue_for(store_host), compute.queue_for(up.host))
    assert run_storage(calls[storage.queue_for(store_host)]) == ["available"]
    assert run_compute(calls[compute.queue_for(up.host)]) == ["spawned"]
    assert disks_of(up, second) == {"vda": str(root / f"volume-{bdm.volume_id}.qcow2")}


# ---- the API: Nova's messages, nothing changed ------------------------------------------------------------

def _api_boot(cloud: Any, network: Any, bdms: Any, **extra: Any) -> Any:  # noqa: F811
    client = cloud.member
    body = {"server": {"name": "x", "imageRef": "", "flavorRef": "b1.tiny", "networks": [{"uuid": network.id}],
                       "block_device_mapping_v2": bdms, **extra}}
    return client.post("servers", body)


def test_api_validation_errors(cloud, up, image, network, flavor, store) -> None:  # noqa: F811
    actor = cloud.member_actor
    in_use = volume_services.volume_create(actor=actor, size=1)
    Volume.objects.filter(pk=in_use.id).update(status="in-use")
    cases = [
        ([], "Missing imageRef attribute"),
        ([{"source_type": "image", "destination_type": "volume", "uuid": image.id, "boot_index": 0}],
         "Images with destination_type 'volume' need to have a non-zero size specified"),
        ([{"source_type": "blank", "destination_type": "volume", "boot_index": 0}],
         "Blank volumes (source: 'blank', dest: 'volume') need to have non-zero size"),
        ([{"source_type": "volume", "destination_type": "volume", "uuid": str(uuid.uuid4()), "boot_index": 0}],
         "Block Device Mapping is Invalid: failed to get volume"),
        ([{"source_type": "snapshot", "destination_type": "volume", "uuid": str(uuid.uuid4()), "boot_index": 0}],
         "Block Device Mapping is Invalid: failed to get snapshot"),
        ([{"source_type": "volume", "destination_type": "volume", "uuid": in_use.id, "boot_index": 0}],
         "status must be 'available'"),
        ([{"source_type": "floppy", "destination_type": "volume", "uuid": in_use.id, "boot_index": 0}],
         "'floppy' is not one of"),
        ([{"source_type": "volume", "destination_type": "volume", "boot_index": 0}], "Missing device UUID."),
        ([{"source_type": "blank", "destination_type": "volume", "volume_size": 1, "boot_index": 1}],
         "Boot sequence for the instance and image/block device mapping combination is not valid."),
        ([{"source_type": "blank", "destination_type": "volume", "volume_size": 1, "boot_index": 0, "bogus": 1}],
         "Additional properties are not allowed"),
    ]
    not_bootable = volume_services.volume_create(actor=actor, size=1)
    Volume.objects.filter(pk=not_bootable.id).update(status="available")
    cases.append(([{"source_type": "volume", "destination_type": "volume", "uuid": not_bootable.id,
                    "boot_index": 0}], f"Block Device {not_bootable.id} is not bootable."))
    volumes_before = Volume.objects.count()
    for bdms, message in cases:
        error = nova_error(_api_boot(cloud, network, bdms), 400, "badRequest")
        assert message in error["message"], (bdms, error)
    # one existing volume cannot boot several servers
    other = volume_services.volume_create(actor=actor, size=1, bootable=True)
    Volume.objects.filter(pk=other.id).update(status="available")
    error = nova_error(_api_boot(cloud, network, [{"source_type": "volume", "destination_type": "volume",
                                                   "uuid": other.id, "boot_index": 0}], min_count=2), 400)
    assert "Cannot attach one or more volumes to multiple instances" in error["message"]
    # over the volumes quota: Nova's 403, nothing made
    identity_services.quota_set(actor=cloud.admin_actor, project_id=cloud.demo_project.id, limits={"volumes": 3})
    error = nova_error(_api_boot(cloud, network, [{"source_type": "blank", "destination_type": "volume",
                                                   "volume_size": 1, "boot_index": 0}]), 403, "forbidden")
    assert "Quota exceeded for volumes" in error["message"]
    assert Volume.objects.count() == volumes_before + 1 and not Instance.objects.exists()
    assert Volume.objects.count() == 3
    assert not BlockDeviceMapping.objects.exists()


def test_api_boot_from_volume_shows_an_empty_image(cloud, up, image, network, flavor, store) -> None:  # noqa: F811
    response = _api_boot(cloud, network, [{"source_type": "image", "destination_type": "volume", "uuid": image.id,
                                           "boot_index": 0, "volume_size": 1}])
    assert response.status_code == 202, response.content[:500]
    server_id = response.json()["server"]["id"]
    shown = cloud.member.get(f"servers/{server_id}").json()["server"]
    assert shown["image"] == "" and shown["status"] == "BUILD"


def test_api_legacy_block_device_mapping(cloud, up, image, network, flavor, store) -> None:  # noqa: F811
    volume = volume_services.volume_create(actor=cloud.member_actor, size=1, image_id=image.id)
    Volume.objects.filter(pk=volume.id).update(status="available")
    legacy = [{"device_name": "vda", "volume_id": volume.id, "delete_on_termination": False}]
    error = nova_error(_api_boot(cloud, network, [{"source_type": "volume", "uuid": volume.id, "boot_index": 0}],
                                 block_device_mapping=legacy), 400)
    assert "different block_device_mapping syntaxes" in error["message"]
    client = cloud.member
    response = client.post("servers", {"server": {"name": "legacy", "flavorRef": "b1.tiny",
                                                  "networks": [{"uuid": network.id}],
                                                  "block_device_mapping": legacy}})
    assert response.status_code == 202, response.content[:500]
    bdm = BlockDeviceMapping.objects.get(volume_id=volume.id)
    assert (bdm.boot_index, bdm.device_name, bdm.source_type, bdm.delete_on_termination) == (
        0, "/dev/vda", "volume", False)
    assert Volume.objects.get(pk=volume.id).status == "reserved"


def test_a_failed_volume_snapshot_fails_create_image_and_drops_what_it_made(
        cloud, up, image, network, flavor, store, django_capture_on_commit_callbacks) -> None:  # noqa: F811
    store_host, _root = store
    actor = cloud.member_actor
    inst, callbacks = boot(actor, network, django_capture_on_commit_callbacks, bdms=[
        {"source_type": "image", "destination_type": "volume", "uuid": image.id, "boot_index": 0,
         "volume_size": 1}, {"source_type": "blank", "destination_type": "volume", "volume_size": 1}])
    calls = sent(callbacks, storage.queue_for(store_host), compute.queue_for(up.host))
    run_storage(calls[storage.queue_for(store_host)])
    assert run_compute(calls[compute.queue_for(up.host)]) == ["spawned"]
    with django_capture_on_commit_callbacks() as callbacks:
        image_id = server_snapshots.server_image_create(actor=actor, server_id=inst.id, name="snap",
                                                        request_id="req-snap")
    assert len(json.loads(Image.objects.get(pk=image_id).properties["block_device_mapping"])) == 2
    calls = sent(callbacks, storage.queue_for(store_host), compute.queue_for(up.host))
    first, second = calls[storage.queue_for(store_host)]
    assert run_storage([first]) == ["available"]
    volume_services.snapshot_create_failed(snapshot_id=second[1]["snapshot_id"], reason="no space left")
    assert run_compute(calls[compute.queue_for(up.host)]) == ["failed"]
    inst.refresh_from_db()
    assert (inst.vm_state, inst.task_state, inst.power_state) == ("active", None, RUNNING)
    assert not Image.objects.filter(pk=image_id).exists()
    assert list(Snapshot.objects.values_list("status", flat=True)) == ["deleting", "deleting"]  # both dropped
    assert "is error" in InstanceFault.objects.get(instance=inst).message


def test_a_server_deleted_while_its_volume_is_made_lets_the_sweep_delete_it(
        cloud, up, image, network, flavor, store, django_capture_on_commit_callbacks) -> None:  # noqa: F811
    store_host, root = store
    actor = cloud.member_actor
    inst, callbacks = boot(actor, network, django_capture_on_commit_callbacks, bdms=[
        {"source_type": "image", "destination_type": "volume", "uuid": image.id, "boot_index": 0,
         "volume_size": 1, "delete_on_termination": True}])
    calls = sent(callbacks, storage.queue_for(store_host), compute.queue_for(up.host))
    volume_id = BlockDeviceMapping.objects.get(instance=inst).volume_id
    delete(actor, inst, django_capture_on_commit_callbacks, up, store_host)
    assert run_compute(calls[compute.queue_for(up.host)]) == ["skipped"]  # the late spawn builds nothing
    assert Instance.objects.get(pk=inst.id).deleted and claims(up) == (0, 0, 0)
    assert Volume.objects.get(pk=volume_id).status == "creating"
    assert server_reports.server_build_timeouts() == 0  # still being made: kept for the next sweep
    assert BlockDeviceMapping.objects.filter(instance=inst).exists()
    assert run_storage(calls[storage.queue_for(store_host)]) == ["available"]
    with django_capture_on_commit_callbacks() as callbacks:
        server_reports.server_build_timeouts()
    assert Volume.objects.get(pk=volume_id).status == "deleting"
    assert not BlockDeviceMapping.objects.filter(instance=inst).exists()
    assert run_storage(sent(callbacks, storage.queue_for(store_host))[storage.queue_for(store_host)]) == ["deleted"]
    assert not Volume.objects.filter(pk=volume_id).exists() and not (root / f"volume-{volume_id}.qcow2").exists()
