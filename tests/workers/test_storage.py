"""The storage agent's task bodies run in-process (plain values in -> real qcow2 driver -> a report on
the control queue, applied by its control task through the services, ``tests.control_reports``): every
outcome reaches the volume's status, failures keep a reason and leave no file, and a report from a node
that does not hold the volume changes nothing."""
from __future__ import annotations

import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest

from apps.images import services as image_services
from apps.images import storage as image_storage
from apps.volumes import services, states
from apps.volumes.models import Snapshot, Volume
from tests.api_client import SeededCloud
from tests.control_reports import apply_control_reports
from tests.control_reports import run_storage_task as run
from tests.image_api import image_api_in_process
from workers import storage, storage_control

pytestmark = pytest.mark.django_db


@pytest.fixture
def node(settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cloud: SeededCloud) -> tuple[str, Path]:
    settings.STRATUS_IMAGE_STORE = "file"
    settings.STRATUS_IMAGE_DIR = str(tmp_path / "images")
    image_storage.reset()
    settings.STRATUS_VOLUMES_DIR = str(tmp_path / "volumes")
    host = f"store-{secrets.token_hex(3)}"
    services.backend_report(host=host, capacity_gb=100, free_gb=100)
    from apps.volumes.models import StorageBackend

    StorageBackend.objects.exclude(host=host).update(last_heartbeat=None)
    image_api_in_process(monkeypatch)  # the node's signed image URLs reach the image API in this process
    apply_control_reports(only=storage.CONTROL)  # nothing of an earlier test is left on the control queue
    yield host, tmp_path / "volumes" / host
    image_storage.reset()


def sent(volume_id: str, task_name: str) -> dict[str, Any]:
    """The kwargs the control tier put in the message of ``workers.storage.<task_name>`` for the resource."""
    from apps.core.models import TaskRecord

    record = TaskRecord.objects.filter(name=f"workers.storage.{task_name}", resource_id=volume_id) \
        .order_by("-created_at").first()
    assert record is not None
    return dict(record.kwargs)


def qcow2_files(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.suffix == ".qcow2") if root.exists() else []


def test_create_extend_snapshot_clone_delete(cloud: SeededCloud, node: tuple[str, Path]) -> None:
    host, root = node
    volume = services.volume_create(actor=cloud.member_actor, size=1, name="t")
    assert volume.backend.host == host
    assert run(storage.create_volume, volume_id=volume.id, size_gb=1, host=host) == "available"
    assert Volume.objects.get(pk=volume.id).status == states.AVAILABLE
    assert qcow2_files(root) == [f"volume-{volume.id}.qcow2"]
    services.volume_extend(actor=cloud.member_actor, volume_id=volume.id, new_size=2)
    assert run(storage.extend_volume, volume_id=volume.id, size_gb=2, host=host) == "available"
    assert Volume.objects.get(pk=volume.id).size == 2
    assert storage.driver(host).virtual_size(root / f"volume-{volume.id}.qcow2") == 2 << 30
    snap = services.snapshot_create(actor=cloud.member_actor, volume_id=volume.id)
    assert run(storage.create_snapshot, snapshot_id=snap.id, volume_id=volume.id, host=host) == "available"
    clone = services.volume_create(actor=cloud.member_actor, snapshot_id=snap.id)
    assert run(storage.create_volume, volume_id=clone.id, size_gb=2, host=host, snapshot_id=snap.id) == "available"
    # a task delivered twice finds its work done
    assert run(storage.create_volume, volume_id=clone.id, size_gb=2, host=host, snapshot_id=snap.id) == "available"
    services.volume_delete(actor=cloud.member_actor, volume_id=volume.id, cascade=True)
    assert run(storage.delete_volume, volume_id=volume.id, host=host, snapshot_ids=[snap.id]) == "deleted"
    assert not Volume.objects.filter(pk=volume.id).exists() and not Snapshot.objects.exists()
    assert qcow2_files(root) == [f"volume-{clone.id}.qcow2"]


def test_from_image_streams_and_converts(cloud: SeededCloud, node: tuple[str, Path], tmp_path: Path) -> None:
    host, root = node
    disk = tmp_path / "img.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "16M"], check=True)
    image = image_services.image_create(actor=cloud.member_actor, name="img", disk_format="qcow2",
                                        container_format="bare")
    image_services.image_upload(actor=cloud.member_actor, image_id=image.id, chunks=[disk.read_bytes()])
    volume = services.volume_create(actor=cloud.member_actor, size=1, image_id=image.id)
    assert volume.bootable
    message = sent(volume.id, "create_volume")
    # the message carries what the node needs to read the image without the database or the image store:
    # a URL of the image API signed for reading this image from this node
    image.refresh_from_db()
    url = message["image"].pop("url")
    assert url["path"].startswith(f"/image/v2/node/images/{image.id}/file?purpose=read&node={host}&expires=")
    assert url["signature"] and "signature" not in url["path"]
    assert message["image"] == {"disk_format": "qcow2", "checksum": image.checksum,
                                "os_hash_algo": "sha512", "os_hash_value": image.os_hash_value}
    message["image"]["url"] = url
    assert run(storage.create_volume, **message) == "available"
    assert Volume.objects.get(pk=volume.id).status == states.AVAILABLE
    info = storage.driver(host).info(root / f"volume-{volume.id}.qcow2")
    assert info["format"] == "qcow2" and info["virtual-size"] == 1 << 30
    assert (root / ".image-cache" / image.id).is_file()


def test_failures_reach_the_status_and_leave_no_file(cloud: SeededCloud, node: tuple[str, Path]) -> None:
    host, root = node
    volume = services.volume_create(actor=cloud.member_actor, size=1)
    # an image that is not there
    assert run(storage.create_volume, volume_id=volume.id, size_gb=1, host=host, image_id="nope") == "error"
    row = Volume.objects.get(pk=volume.id)
    assert row.status == states.ERROR and "not available" in row.status_reason
    assert qcow2_files(root) == []
    # extending a volume whose file is gone
    other = services.volume_create(actor=cloud.member_actor, size=1)
    run(storage.create_volume, volume_id=other.id, size_gb=1, host=host)
    (root / f"volume-{other.id}.qcow2").unlink()
    services.volume_extend(actor=cloud.member_actor, volume_id=other.id, new_size=3)
    assert run(storage.extend_volume, volume_id=other.id, size_gb=3, host=host) == "error_extending"
    assert Volume.objects.get(pk=other.id).status == states.ERROR_EXTENDING


def test_a_volume_deleted_while_it_was_made_leaves_no_file(cloud: SeededCloud, node: tuple[str, Path]) -> None:
    host, root = node
    volume = services.volume_create(actor=cloud.member_actor, size=1)
    Volume.objects.filter(pk=volume.id).delete()  # gone before the agent reports
    run(storage.create_volume, volume_id=volume.id, size_gb=1, host=host)
    assert qcow2_files(root) == [f"volume-{volume.id}.qcow2"]
    # the control tier found the row gone and told the node to discard the file
    assert [name for name, _, _ in apply_control_reports(queue=storage.queue_for(host))] == ["workers.storage.discard"]
    assert qcow2_files(root) == []


def test_a_snapshot_deleted_while_it_was_made_leaves_no_file(cloud: SeededCloud, node: tuple[str, Path]) -> None:
    host, root = node
    volume = services.volume_create(actor=cloud.member_actor, size=1)
    assert run(storage.create_volume, volume_id=volume.id, size_gb=1, host=host) == "available"
    snap = services.snapshot_create(actor=cloud.member_actor, volume_id=volume.id)
    Snapshot.objects.filter(pk=snap.id).delete()  # gone before the agent reports
    storage.create_snapshot(snapshot_id=snap.id, volume_id=volume.id, host=host)
    assert f"snapshot-{snap.id}.qcow2" in qcow2_files(root)
    # the service found the row gone: the control task tells the node to discard the file
    assert [(name, result) for name, _, result in apply_control_reports(only=storage.CONTROL)] == \
        [("workers.storage_control.snapshot_created", "discard")]
    assert [name for name, _, _ in apply_control_reports(queue=storage.queue_for(host))] == ["workers.storage.discard"]
    assert qcow2_files(root) == [f"volume-{volume.id}.qcow2"]


def test_a_creation_report_says_when_the_file_must_be_discarded(cloud: SeededCloud, node: tuple[str, Path]) -> None:
    """The decision is the service's (``Created``): only a row that is gone asks for a discard; a row
    that is there but not creating, or on another node, is ignored and keeps its file."""
    host, _root = node
    volume = services.volume_create(actor=cloud.member_actor, size=1)
    assert services.volume_created(volume_id=volume.id, host="liar") is services.Created.IGNORED
    assert services.volume_created(volume_id=volume.id, host=host) is services.Created.APPLIED
    assert services.volume_created(volume_id=volume.id, host=host) is services.Created.IGNORED
    snap = services.snapshot_create(actor=cloud.member_actor, volume_id=volume.id)
    assert services.snapshot_created(snapshot_id=snap.id, host="liar") is services.Created.IGNORED
    assert services.snapshot_create_failed(snapshot_id=snap.id, host=host, reason="x")  # no longer creating
    assert services.snapshot_created(snapshot_id=snap.id, host=host) is services.Created.IGNORED
    Snapshot.objects.filter(pk=snap.id).delete()
    assert services.snapshot_created(snapshot_id=snap.id, host=host) is services.Created.DISCARD
    Volume.objects.filter(pk=volume.id).delete()
    assert services.volume_created(volume_id=volume.id, host=host) is services.Created.DISCARD
    assert not services.Created.DISCARD and not services.Created.IGNORED and services.Created.APPLIED


def test_a_node_reports_only_on_its_own_volumes(cloud: SeededCloud, node: tuple[str, Path]) -> None:
    host, _root = node
    volume = services.volume_create(actor=cloud.member_actor, size=1)
    services.backend_report(host="liar", capacity_gb=100, free_gb=100)
    # another node's word on this volume is ignored, whatever it says
    assert storage_control.volume_created(host="liar", volume_id=volume.id) == "ignored"
    assert storage_control.volume_create_failed(host="liar", volume_id=volume.id, reason="x") == "ignored"
    assert Volume.objects.get(pk=volume.id).status == states.CREATING
    assert run(storage.create_volume, volume_id=volume.id, size_gb=1, host=host) == "available"
    # applied twice: the second changes nothing
    assert storage_control.volume_created(host=host, volume_id=volume.id) == "ignored"
    services.volume_extend(actor=cloud.member_actor, volume_id=volume.id, new_size=2)
    assert storage_control.volume_extended(host="liar", volume_id=volume.id, size_gb=2) == "ignored"
    # its own node cannot claim a size it was not asked for
    assert storage_control.volume_extended(host=host, volume_id=volume.id, size_gb=50) == "ignored"
    assert Volume.objects.get(pk=volume.id).status == states.EXTENDING
    assert run(storage.extend_volume, volume_id=volume.id, size_gb=2, host=host) == "available"
    assert Volume.objects.get(pk=volume.id).size == 2
    snap = services.snapshot_create(actor=cloud.member_actor, volume_id=volume.id)
    assert storage_control.snapshot_created(host="liar", snapshot_id=snap.id) == "ignored"
    assert Snapshot.objects.get(pk=snap.id).status == states.CREATING
    assert run(storage.create_snapshot, snapshot_id=snap.id, volume_id=volume.id, host=host) == "available"
    assert Snapshot.objects.get(pk=snap.id).status == states.AVAILABLE
    services.volume_delete(actor=cloud.member_actor, volume_id=volume.id, cascade=True)
    assert storage_control.volume_deleted(host="liar", volume_id=volume.id) == "ignored"
    assert Volume.objects.filter(pk=volume.id).exists()


def test_heartbeat_report(node: tuple[str, Path]) -> None:
    host, root = node
    storage.report(host)
    assert [name for name, _, _ in apply_control_reports(only=storage.CONTROL)] == \
        ["workers.storage_control.backend_report"]
    from apps.volumes.models import StorageBackend

    backend = StorageBackend.objects.get(host=host)
    assert backend.capacity_gb > 0 and backend.path == str(root)


def test_the_storage_agent_imports_no_model_selector_or_service() -> None:
    """workers/storage.py runs on a node without a database or image store credentials: it imports
    nothing of apps/ (not even the image store: image data goes through the image API)."""
    import ast

    tree = ast.parse(Path(storage.__file__).read_text())
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    modules |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert {m for m in modules if m == "apps" or m.startswith("apps.")} == set()
