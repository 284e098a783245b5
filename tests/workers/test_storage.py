"""The storage agent's task bodies run in-process (load -> real qcow2 driver -> report through the
services): every outcome reaches the volume's status, failures keep a reason and leave no file."""
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
from workers import storage

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
    yield host, tmp_path / "volumes" / host
    image_storage.reset()


def qcow2_files(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.suffix == ".qcow2") if root.exists() else []


def test_create_extend_snapshot_clone_delete(cloud: SeededCloud, node: tuple[str, Path]) -> None:
    host, root = node
    volume = services.volume_create(actor=cloud.member_actor, size=1, name="t")
    assert volume.backend.host == host
    assert storage.create_volume(volume_id=volume.id, size_gb=1, host=host) == "available"
    assert Volume.objects.get(pk=volume.id).status == states.AVAILABLE
    assert qcow2_files(root) == [f"volume-{volume.id}.qcow2"]
    services.volume_extend(actor=cloud.member_actor, volume_id=volume.id, new_size=2)
    assert storage.extend_volume(volume_id=volume.id, size_gb=2, host=host) == "available"
    assert Volume.objects.get(pk=volume.id).size == 2
    assert storage.driver(host).virtual_size(root / f"volume-{volume.id}.qcow2") == 2 << 30
    snap = services.snapshot_create(actor=cloud.member_actor, volume_id=volume.id)
    assert storage.create_snapshot(snapshot_id=snap.id, volume_id=volume.id, host=host) == "available"
    clone = services.volume_create(actor=cloud.member_actor, snapshot_id=snap.id)
    assert storage.create_volume(volume_id=clone.id, size_gb=2, host=host, snapshot_id=snap.id) == "available"
    # a task delivered twice finds its work done
    assert storage.create_volume(volume_id=clone.id, size_gb=2, host=host, snapshot_id=snap.id) == "available"
    services.volume_delete(actor=cloud.member_actor, volume_id=volume.id, cascade=True)
    assert storage.delete_volume(volume_id=volume.id, host=host, snapshot_ids=[snap.id]) == "deleted"
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
    assert storage.create_volume(volume_id=volume.id, size_gb=1, host=host, image_id=image.id) == "available"
    info = storage.driver(host).info(root / f"volume-{volume.id}.qcow2")
    assert info["format"] == "qcow2" and info["virtual-size"] == 1 << 30
    assert (root / ".image-cache" / image.id).is_file()


def test_failures_reach_the_status_and_leave_no_file(cloud: SeededCloud, node: tuple[str, Path]) -> None:
    host, root = node
    volume = services.volume_create(actor=cloud.member_actor, size=1)
    # an image that is not there
    assert storage.create_volume(volume_id=volume.id, size_gb=1, host=host, image_id="nope") == "error"
    row = Volume.objects.get(pk=volume.id)
    assert row.status == states.ERROR and "not available" in row.status_reason
    assert qcow2_files(root) == []
    # extending a volume whose file is gone
    other = services.volume_create(actor=cloud.member_actor, size=1)
    storage.create_volume(volume_id=other.id, size_gb=1, host=host)
    (root / f"volume-{other.id}.qcow2").unlink()
    services.volume_extend(actor=cloud.member_actor, volume_id=other.id, new_size=3)
    assert storage.extend_volume(volume_id=other.id, size_gb=3, host=host) == "error_extending"
    assert Volume.objects.get(pk=other.id).status == states.ERROR_EXTENDING


def test_a_volume_deleted_while_it_was_made_leaves_no_file(cloud: SeededCloud, node: tuple[str, Path]) -> None:
    host, root = node
    volume = services.volume_create(actor=cloud.member_actor, size=1)
    Volume.objects.filter(pk=volume.id).delete()  # gone before the agent reports
    storage.create_volume(volume_id=volume.id, size_gb=1, host=host)
    assert qcow2_files(root) == []


def test_heartbeat_report(node: tuple[str, Path]) -> None:
    host, root = node
    storage.report(host)
    from apps.volumes.models import StorageBackend

    backend = StorageBackend.objects.get(host=host)
    assert backend.capacity_gb > 0 and backend.path == str(root)
