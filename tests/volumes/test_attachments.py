"""Cinder's legacy attach bookkeeping (``os-attach``/``os-detach`` volume actions, what tempest's
volume tests call) through the API in-process: the volume goes in-use with its attachment in the
body (tempest's strict schema) and back to available; bad bodies, other projects, wrong states and an
attachment Nova holds are refused and change nothing."""
from __future__ import annotations

import uuid

import pytest

from apps.compute.models import BlockDeviceMapping, Instance
from apps.volumes.models import Volume, VolumeAttachment
from tests.volumes.helpers import Cloud, check, cinder_error

pytestmark = pytest.mark.django_db


def available(cloud: Cloud) -> str:
    vid = cloud.volume()["id"]
    Volume.objects.filter(pk=vid).update(status="available")
    return vid


def test_os_attach_and_os_detach(cloud: Cloud) -> None:
    vid = available(cloud)
    server = str(uuid.uuid4())
    response = cloud.member.post(f"volumes/{vid}/action",
                                 {"os-attach": {"instance_uuid": server, "mountpoint": "/dev/vdb"}})
    assert response.status_code == 202, response.content
    body = check(cloud.member.get(f"volumes/{vid}"), "volumes", "show_volume")["volume"]
    assert body["status"] == "in-use"
    [attachment] = body["attachments"]
    row = VolumeAttachment.objects.get(volume_id=vid)
    assert attachment == {"server_id": server, "attachment_id": row.id, "host_name": None, "volume_id": vid,
                          "device": "/dev/vdb", "id": vid, "attached_at": row.attached_at.strftime(
                              "%Y-%m-%dT%H:%M:%S.%f")}
    listed = check(cloud.member.get("volumes/detail"), "volumes", "list_volumes_with_detail")["volumes"]
    assert [v["attachments"] for v in listed if v["id"] == vid] == [[attachment]]
    # in-use: no second attach, no delete
    cinder_error(cloud.member.post(f"volumes/{vid}/action",
                                   {"os-attach": {"instance_uuid": server, "mountpoint": "/dev/vdc"}}),
                 400, "badRequest")
    assert cloud.member.delete(f"volumes/{vid}").status_code in (400, 409)
    cinder_error(cloud.member.post(f"volumes/{vid}/action", {"os-detach": {"attachment_id": "nope"}}),
                 404, "itemNotFound")
    assert cloud.member.post(f"volumes/{vid}/action", {"os-detach": {}}).status_code == 202
    body = check(cloud.member.get(f"volumes/{vid}"), "volumes", "show_volume")["volume"]
    assert body["status"] == "available" and body["attachments"] == []
    assert not VolumeAttachment.objects.filter(volume_id=vid).exists()
    # after os-reserve (attaching), os-attach finishes it
    assert cloud.member.post(f"volumes/{vid}/action", {"os-reserve": {}}).status_code == 202
    assert cloud.member.post(f"volumes/{vid}/action",
                             {"os-attach": {"host_name": "h1", "mountpoint": "/mnt", "mode": "ro"}}).status_code == 202
    assert Volume.objects.get(pk=vid).status == "in-use"
    assert VolumeAttachment.objects.get(volume_id=vid).attach_mode == "ro"


def test_refusals_change_nothing(cloud: Cloud) -> None:
    vid = available(cloud)
    action = f"volumes/{vid}/action"
    server = str(uuid.uuid4())
    for body in ({"os-attach": {"mountpoint": "/dev/vdb"}},
                 {"os-attach": {"instance_uuid": server, "host_name": "h", "mountpoint": "/dev/vdb"}},
                 {"os-attach": {"instance_uuid": server}},
                 {"os-attach": {"instance_uuid": server, "mountpoint": "/dev/vdb", "mode": "xx"}},
                 {"os-detach": {}}):
        cinder_error(cloud.member.post(action, body), 400, "badRequest")
    cinder_error(cloud.other_client.post(f"/volume/v3/{cloud.other.id}/volumes/{vid}/action",
                                         {"os-attach": {"instance_uuid": server, "mountpoint": "/dev/vdb"}}),
                 404, "itemNotFound")
    cinder_error(cloud.member.post(f"volumes/{uuid.uuid4()}/action",
                                   {"os-attach": {"instance_uuid": server, "mountpoint": "/dev/vdb"}}),
                 404, "itemNotFound")
    assert cloud.reader.post(action, {"os-attach": {"instance_uuid": server, "mountpoint": "/d"}}).status_code == 403
    assert Volume.objects.get(pk=vid).status == "available" and not VolumeAttachment.objects.exists()

    # an attachment a server's block device mapping holds is Nova's to detach
    cloud.member.post(action, {"os-attach": {"instance_uuid": server, "mountpoint": "/dev/vdb"}})
    row = VolumeAttachment.objects.get(volume_id=vid)
    inst = Instance.objects.create(id=server, project=cloud.demo, user_id=cloud.member_actor.user_id, name="vm",
                                   vcpus=1, memory_mb=64, root_gb=1, vm_state="active")
    BlockDeviceMapping.objects.create(instance=inst, volume_id=vid, attachment_id=row.id, device_name="/dev/vdb",
                                      status="attached")
    cinder_error(cloud.member.post(action, {"os-detach": {}}), 400, "badRequest")
    assert Volume.objects.get(pk=vid).status == "in-use" and VolumeAttachment.objects.filter(pk=row.id).exists()
