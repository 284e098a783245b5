"""Issue 16: a node whose signed image grant expired (a task record beat sent again later than
STRATUS_IMAGE_URL_TTL_SECONDS after its spec was made) asks the control tier for a fresh one
(``workers.compute_control.image_url_renew`` / ``workers.storage_control.image_url_renew``). A grant is
re-issued only to the node still entitled to it: the instance on that host, building or rebuilding with
that image (its boot image, or the kernel/ramdisk it names that the project may read), or taking a
snapshot into that image; the volume on that storage host being made from that image. Any other host,
image, instance or state is refused, and a node cannot ask in another host's name (``sender_refusal``)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from apps.compute.models import Instance
from apps.images import services as image_services
from apps.images.models import Image
from apps.images.selectors import image_node_url
from tests.api_client import SeededCloud
from tests.security.test_node_image_urls import get, glance_refusal, image_store, put, qcow2, queued, stored
from workers import compute_control, storage_control

pytestmark = pytest.mark.django_db
__all__ = ["image_store"]  # the autouse file image store of test_node_image_urls


def expired(image_id: str, purpose: str, node: str, settings: Any) -> dict[str, str]:
    return image_node_url(image_id=image_id, purpose=purpose, node=node,
                          now=time.time() - settings.STRATUS_IMAGE_URL_TTL_SECONDS - 5)


def instance_of(cloud: SeededCloud, image_id: str, **values: Any) -> Instance:
    fields = {"vm_state": "building", "host": "node-a", **values}
    return Instance.objects.create(project_id=cloud.member_actor.project_id, user_id=cloud.member_actor.user.id,
                                   name="vm", image_id=image_id, vcpus=1, memory_mb=64, root_gb=1, **fields)


def renew_compute(**ask: str) -> dict[str, Any]:
    return compute_control.image_url_renew.apply(kwargs=ask).get()


def test_an_expired_boot_image_grant_is_renewed_for_its_node_only(cloud: SeededCloud, tmp_path: Path,
                                                                   settings: Any) -> None:
    data = qcow2(tmp_path)
    boot = stored(cloud.member_actor, data, name="boot")
    other = stored(cloud.member_actor, qcow2(tmp_path, "o.qcow2"), name="other")
    instance = instance_of(cloud, boot.id)
    assert "expired" in glance_refusal(get(expired(boot.id, "read", "node-a", settings)), 401)
    answer = renew_compute(host="node-a", instance_id=instance.id, image_id=boot.id, purpose="read")
    response = get(answer["url"])
    assert response.status_code == 200 and b"".join(response.streaming_content) == data
    # another host, another image, the other purpose: refused, and nothing signed
    for ask in ({"host": "node-b", "image_id": boot.id, "purpose": "read"},
                {"host": "node-a", "image_id": other.id, "purpose": "read"},
                {"host": "node-a", "image_id": boot.id, "purpose": "write"},
                {"host": "", "image_id": boot.id, "purpose": "read"},
                {"host": "node-a", "image_id": boot.id, "purpose": "delete"}):
        answer = renew_compute(instance_id=instance.id, **ask)
        assert set(answer) == {"refused"} and "not entitled" in answer["refused"], ask
    # an instance that is built (or gone) needs no image any more
    Instance.objects.filter(pk=instance.id).update(vm_state="active")
    assert set(renew_compute(host="node-a", instance_id=instance.id, image_id=boot.id, purpose="read")) == {"refused"}
    Instance.objects.filter(pk=instance.id).update(task_state="rebuilding")
    assert "url" in renew_compute(host="node-a", instance_id=instance.id, image_id=boot.id, purpose="read")
    assert set(renew_compute(host="node-a", instance_id="0" * 32, image_id=boot.id, purpose="read")) == {"refused"}


def test_a_kernel_is_renewed_only_when_the_project_may_read_it(cloud: SeededCloud, tmp_path: Path) -> None:
    kernel = stored(cloud.member_actor, qcow2(tmp_path, "k.qcow2"), name="kernel")
    foreign = stored(cloud.other_actor, qcow2(tmp_path, "f.qcow2"), name="foreign")
    mine = image_services.image_create(actor=cloud.member_actor, name="boot", disk_format="qcow2",
                                       container_format="bare", properties={"kernel_id": kernel.id})
    theirs = image_services.image_create(actor=cloud.member_actor, name="boot2", disk_format="qcow2",
                                         container_format="bare", properties={"kernel_id": foreign.id})
    good, bad = instance_of(cloud, mine.id), instance_of(cloud, theirs.id)
    assert "url" in renew_compute(host="node-a", instance_id=good.id, image_id=kernel.id, purpose="read")
    assert set(renew_compute(host="node-a", instance_id=bad.id, image_id=foreign.id, purpose="read")) == {"refused"}


def test_an_expired_snapshot_grant_is_renewed_for_its_instance_only(cloud: SeededCloud, tmp_path: Path,
                                                                     settings: Any) -> None:
    boot = stored(cloud.member_actor, qcow2(tmp_path), name="boot")
    instance = instance_of(cloud, boot.id, vm_state="active", task_state="image_uploading")
    snap = queued(cloud.member_actor, "snap")
    Image.objects.filter(pk=snap.id).update(properties={"instance_uuid": instance.id})  # as createImage makes it
    unrelated = queued(cloud.member_actor, "unrelated")
    data = qcow2(tmp_path, "s.qcow2")
    assert "expired" in glance_refusal(put(expired(snap.id, "write", "node-a", settings), data), 401)
    for ask in ({"host": "node-b", "image_id": snap.id}, {"host": "node-a", "image_id": unrelated.id},
                {"host": "node-a", "image_id": boot.id}):
        assert set(renew_compute(instance_id=instance.id, purpose="write", **ask)) == {"refused"}, ask
    answer = renew_compute(host="node-a", instance_id=instance.id, image_id=snap.id, purpose="write")
    assert put(answer["url"], data).status_code == 204
    # the snapshot is stored: its image takes no more data, and no further grant is issued
    assert set(renew_compute(host="node-a", instance_id=instance.id, image_id=snap.id, purpose="write")) == {"refused"}


def test_an_expired_volume_image_grant_is_renewed_for_its_storage_node_only(cloud: SeededCloud, tmp_path: Path,
                                                                            settings: Any) -> None:
    from apps.volumes import services as volume_services
    from apps.volumes.models import StorageBackend, Volume

    image = stored(cloud.member_actor, qcow2(tmp_path), name="img")
    other = stored(cloud.member_actor, qcow2(tmp_path, "o.qcow2"), name="other")
    volume_services.backend_report(host="store-a", capacity_gb=100, free_gb=100)
    StorageBackend.objects.exclude(host="store-a").update(last_heartbeat=None)
    volume = volume_services.volume_create(actor=cloud.member_actor, size=1, image_id=image.id)
    assert volume.backend.host == "store-a" and volume.status == "creating"

    def renew(**ask: str) -> dict[str, Any]:
        return storage_control.image_url_renew.apply(kwargs={"volume_id": volume.id, **ask}).get()

    assert get(renew(host="store-a", image_id=image.id, purpose="read")["url"]).status_code == 200
    for ask in ({"host": "store-b", "image_id": image.id, "purpose": "read"},
                {"host": "store-a", "image_id": other.id, "purpose": "read"},
                {"host": "store-a", "image_id": image.id, "purpose": "write"}):
        assert set(renew(**ask)) == {"refused"}, ask
    Volume.objects.filter(pk=volume.id).update(status="available")
    assert set(renew(host="store-a", image_id=image.id, purpose="read")) == {"refused"}


def test_a_node_asks_for_a_grant_in_its_own_name_only() -> None:
    from portal.celery import sender_refusal

    for role, task in (("compute", "workers.compute_control.image_url_renew"),
                       ("storage", "workers.storage_control.image_url_renew")):
        asked = {"image_id": "i", "purpose": "read", "instance_id": "x"}
        assert sender_refusal(task, f"stratus-{role}-node-a", (), {**asked, "host": "node-a"}) == ""
        assert "not the sender" in sender_refusal(task, f"stratus-{role}-node-a", (), {**asked, "host": "node-b"})
        assert "names its host" in sender_refusal(task, f"stratus-{role}-node-a", (), asked)
