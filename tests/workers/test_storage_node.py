"""A storage node with no database (issue 16): a real Celery worker process on ``storage.<host>`` started
as ``make run`` starts it (``portal.launcher.without_database``: no DATABASE_URL, ``STRATUS_NO_DATABASE=1``),
and a real control worker on the control queue that applies its reports. Volumes are created (blank,
from a snapshot, from an image), extended, snapshotted, uploaded to an image and deleted through the
services; every outcome reaches the database only through the control worker."""
from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings

from apps.images import services as image_services
from apps.images.models import Image
from apps.volumes import services, states
from apps.volumes.models import Snapshot, StorageBackend, Volume
from tests.api_client import SeededCloud
from tests.conftest import database_url, running_worker, wait_for
from tests.storage_nodes import StorageNodeProcess, start_storage_node

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def nodb_node(settings: Any, tmp_path: Path, cloud: SeededCloud, test_db_web: str) -> Iterator[StorageNodeProcess]:
    """A storage node with no database and no image store settings (its data dir holds no image): it
    reads and writes images through the image API of ``test_db_web`` with the URLs signed for it."""
    from django.db import connection

    control_env = dict(os.environ, DATABASE_URL=database_url(connection.settings_dict["NAME"]),
                       STRATUS_DB_CONN_MAX_AGE="0")
    node_env = dict(control_env, STRATUS_DATA_DIR=str(tmp_path), STRATUS_PUBLIC_URL=test_db_web)
    for name in [n for n in node_env if n.startswith("STRATUS_IMAGE_")]:
        node_env.pop(name)
    StorageBackend.objects.update(last_heartbeat=None)
    with running_worker(control_env, settings.CELERY_TASK_DEFAULT_QUEUE, name=f"control-{secrets.token_hex(3)}",
                        log=tmp_path / "control.log", pool="threads", concurrency=2):
        node = start_storage_node(node_env, f"nodb-{secrets.token_hex(3)}", tmp_path)
        try:
            yield node
        finally:
            node.stop()


def status_of(model: type[Volume | Snapshot], row_id: str, status: str, node: StorageNodeProcess) -> Any:
    return wait_for(lambda: model.objects.filter(pk=row_id, status=status).first(),
                    f"{model.__name__} {row_id} {status}", timeout=60, interval=0.2,
                    details=lambda: node.log.read_text(errors="replace")[-3000:])


def test_volumes_on_a_node_without_a_database(cloud: SeededCloud, nodb_node: StorageNodeProcess,
                                              tmp_path: Path) -> None:
    node, actor = nodb_node, cloud.member_actor
    assert "DATABASE_URL" not in node.env and node.env["STRATUS_NO_DATABASE"] == "1"
    # blank, extended
    volume = services.volume_create(actor=actor, size=1, name="nodb")
    assert volume.backend.host == node.host
    status_of(Volume, volume.id, states.AVAILABLE, node)
    assert (node.root / f"volume-{volume.id}.qcow2").is_file()
    services.volume_extend(actor=actor, volume_id=volume.id, new_size=2)
    assert status_of(Volume, volume.id, states.AVAILABLE, node).size == 2
    # a snapshot, and a volume made of it
    snap = services.snapshot_create(actor=actor, volume_id=volume.id)
    status_of(Snapshot, snap.id, states.AVAILABLE, node)
    clone = services.volume_create(actor=actor, snapshot_id=snap.id)
    status_of(Volume, clone.id, states.AVAILABLE, node)
    # from an image: the node reads it through the image API with the URL signed for it in its message
    assert not [n for n in node.env if n.startswith("STRATUS_IMAGE_")]
    assert not Path(django_settings.STRATUS_IMAGE_DIR).is_relative_to(tmp_path)  # no store under the node's dir
    disk = tmp_path / "img.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "16M"], check=True)
    image = image_services.image_create(actor=actor, name="img", disk_format="qcow2", container_format="bare")
    image_services.image_upload(actor=actor, image_id=image.id, chunks=[disk.read_bytes()])
    from_image = services.volume_create(actor=actor, size=1, image_id=image.id)
    status_of(Volume, from_image.id, states.AVAILABLE, node)
    assert (node.root / ".image-cache" / image.id).is_file()
    # uploaded to a new image: the node streams it to the image API's signed write URL (the upload path)
    upload = services.volume_upload_to_image(actor=actor, volume_id=clone.id, image_name="back", disk_format="qcow2")
    status_of(Volume, clone.id, states.AVAILABLE, node)
    made = Image.objects.get(pk=upload.image.id)
    assert made.status == Image.ACTIVE and made.size and made.checksum and made.os_hash_value
    # a failure keeps its reason: the volume's file gone under it
    (node.root / f"volume-{from_image.id}.qcow2").unlink()
    services.volume_extend(actor=actor, volume_id=from_image.id, new_size=3)
    assert status_of(Volume, from_image.id, states.ERROR_EXTENDING, node).status_reason
    # deleted, with its snapshot
    for vid in (clone.id, from_image.id):
        services.volume_delete(actor=actor, volume_id=vid)
    services.volume_delete(actor=actor, volume_id=volume.id, cascade=True)
    wait_for(lambda: not Volume.objects.exists() and not Snapshot.objects.exists(), "every volume deleted",
             timeout=60, interval=0.2, details=lambda: node.log.read_text(errors="replace")[-3000:])
    assert not list(node.root.glob("*.qcow2"))
    # the heartbeat keeps the backend up, through the control worker
    before = StorageBackend.objects.get(host=node.host).last_heartbeat
    wait_for(lambda: StorageBackend.objects.get(host=node.host).last_heartbeat > before, "a heartbeat", timeout=20)
