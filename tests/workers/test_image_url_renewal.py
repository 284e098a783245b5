"""The node's side of an expired signed image grant (``workers.images``): on the image API's 401 it asks
the control tier for a fresh grant (``renewer``: ``workers.<area>_control.image_url_renew``, run here in
this process on the test's database, as ``tests/workers/compute/conftest.py``'s ``control_in_process``
does) and tries once more, and only once; a refusal fails the transfer with the control tier's reason.
The transfers reach the real image API view in this process (``tests.image_api``)."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from apps.images import services as image_services
from apps.images import storage as image_storage
from apps.images.selectors import image_node_url
from apps.volumes import services, states
from apps.volumes.models import StorageBackend, Volume
from tests.api_client import SeededCloud
from tests.control_reports import apply_control_reports
from tests.control_reports import run_storage_task as run
from tests.image_api import image_api_in_process
from workers import images, storage

pytestmark = pytest.mark.django_db


@pytest.fixture
def asks(settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """The questions the node asked the control tier (answered by the control task in this process)."""
    from celery import current_app

    from workers import control_bus

    settings.STRATUS_IMAGE_STORE, settings.STRATUS_IMAGE_DIR = "file", str(tmp_path / "images")
    settings.STRATUS_VOLUMES_DIR = str(tmp_path / "volumes")
    image_storage.reset()
    asked: list[tuple[str, dict[str, Any]]] = []

    def ask(task_name: str, /, *, timeout: float = 30.0, **kwargs: Any) -> Any:
        asked.append((task_name, kwargs))
        return current_app.tasks[task_name].apply(kwargs=kwargs).get()

    monkeypatch.setattr(control_bus, "ask", ask)
    image_api_in_process(monkeypatch)
    apply_control_reports(only=storage.CONTROL)
    yield asked
    image_storage.reset()


def qcow2(tmp_path: Path) -> bytes:
    path = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "16M"], check=True)
    return path.read_bytes()


def making(cloud: SeededCloud, tmp_path: Path) -> tuple[str, Any, Volume]:
    host = "store-renew"
    services.backend_report(host=host, capacity_gb=100, free_gb=100)
    StorageBackend.objects.exclude(host=host).update(last_heartbeat=None)
    image = image_services.image_create(actor=cloud.member_actor, name="img", disk_format="qcow2",
                                        container_format="bare")
    image = image_services.image_upload(actor=cloud.member_actor, image_id=image.id, chunks=[qcow2(tmp_path)])
    return host, image, services.volume_create(actor=cloud.member_actor, size=1, image_id=image.id)


def stale(image_id: str, purpose: str, host: str, settings: Any) -> dict[str, str]:
    return image_node_url(image_id=image_id, purpose=purpose, node=host,
                          now=time.time() - settings.STRATUS_IMAGE_URL_TTL_SECONDS - 5)


def test_a_download_retries_once_with_the_renewed_grant(cloud: SeededCloud, tmp_path: Path, settings: Any,
                                                         asks: list[Any]) -> None:
    host, image, volume = making(cloud, tmp_path)
    renew = images.renewer("storage_control", host=host, image_id=image.id, purpose="read", volume_id=volume.id)
    data = b"".join(images.download(stale(image.id, "read", host, settings), renew=renew))
    assert len(data) == image.size
    assert asks == [("workers.storage_control.image_url_renew",
                     {"host": host, "image_id": image.id, "purpose": "read", "volume_id": volume.id})]
    # without a way to renew, the expired grant fails as before
    with pytest.raises(images.ImageAPIError, match="401"):
        list(images.download(stale(image.id, "read", host, settings)))


def test_only_one_retry_and_a_refusal_fails_the_fetch(cloud: SeededCloud, tmp_path: Path, settings: Any,
                                                       asks: list[Any]) -> None:
    host, image, volume = making(cloud, tmp_path)
    renewed: list[int] = []

    def still_expired() -> dict[str, str]:  # a renewal that itself is too old: no loop of retries
        renewed.append(1)
        return stale(image.id, "read", host, settings)

    with pytest.raises(images.ImageAPIError, match="401"):
        list(images.download(stale(image.id, "read", host, settings), renew=still_expired))
    assert renewed == [1]
    # the control tier refuses another host: the fetch fails with its reason
    refused = images.renewer("storage_control", host="store-other", image_id=image.id, purpose="read",
                             volume_id=volume.id)
    with pytest.raises(images.ImageAPIError, match="not entitled"):
        list(images.download(stale(image.id, "read", "store-other", settings), renew=refused))


def test_a_creation_sent_again_late_renews_its_url(cloud: SeededCloud, tmp_path: Path, settings: Any,
                                                    asks: list[Any]) -> None:
    """A volume creation whose message was made longer ago than the URL lives (a task record beat sent
    again) still makes the volume: the storage node gets a fresh URL once."""
    host, image, volume = making(cloud, tmp_path)
    from apps.core.models import TaskRecord

    record = TaskRecord.objects.filter(name="workers.storage.create_volume", resource_id=volume.id).get()
    message = dict(record.kwargs)
    message["image"]["url"] = stale(image.id, "read", host, settings)
    assert run(storage.create_volume, **message) == "available"
    assert Volume.objects.get(pk=volume.id).status == states.AVAILABLE
    assert [name for name, _ in asks] == ["workers.storage_control.image_url_renew"]
