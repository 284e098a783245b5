"""Cinder's attachments through the API in-process: the legacy attach bookkeeping (``os-attach``/
``os-detach`` volume actions, what tempest's volume tests call) and the attachments API (3.27:
create/show/list/update with a connector/delete; os-complete at 3.44): the volume goes reserved →
attaching → in-use with its attachment in the body (tempest's strict 3.0 schema) and back to
available; bad bodies, other projects, wrong states and an attachment Nova holds are refused and
change nothing. Bodies follow the requested microversion (3.0 to 3.44)."""
from __future__ import annotations

import uuid
from typing import Any

import pytest

from apps.compute.models import BlockDeviceMapping, Instance
from apps.volumes.models import Volume, VolumeAttachment
from tests.api_client import SeededCloud
from tests.volumes.helpers import check, cinder_error, new_volume

pytestmark = pytest.mark.django_db


def available(cloud: SeededCloud) -> str:
    vid = new_volume(cloud.member)["id"]
    Volume.objects.filter(pk=vid).update(status="available")
    return vid


def test_os_attach_and_os_detach(cloud: SeededCloud) -> None:
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


def test_refusals_change_nothing(cloud: SeededCloud) -> None:
    vid = available(cloud)
    action = f"volumes/{vid}/action"
    server = str(uuid.uuid4())
    for body in ({"os-attach": {"mountpoint": "/dev/vdb"}},
                 {"os-attach": {"instance_uuid": server, "host_name": "h", "mountpoint": "/dev/vdb"}},
                 {"os-attach": {"instance_uuid": server}},
                 {"os-attach": {"instance_uuid": server, "mountpoint": "/dev/vdb", "mode": "xx"}},
                 {"os-detach": {}}):
        cinder_error(cloud.member.post(action, body), 400, "badRequest")
    cinder_error(cloud.other.post(f"/volume/v3/{cloud.other_project.id}/volumes/{vid}/action",
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
    inst = Instance.objects.create(id=server, project=cloud.demo_project, user_id=cloud.member_actor.user_id, name="vm",
                                   vcpus=1, memory_mb=64, root_gb=1, vm_state="active")
    BlockDeviceMapping.objects.create(instance=inst, volume_id=vid, attachment_id=row.id, device_name="/dev/vdb",
                                      status="attached")
    cinder_error(cloud.member.post(action, {"os-detach": {}}), 400, "badRequest")
    assert Volume.objects.get(pk=vid).status == "in-use" and VolumeAttachment.objects.filter(pk=row.id).exists()


def call(client: Any, method: str, path: str, body: Any = None, version: str = "3.44") -> Any:
    return client.call(method, path, body, headers={"OpenStack-API-Version": f"volume {version}"})


def test_attachments_api(cloud: SeededCloud) -> None:
    vid = available(cloud)
    server = str(uuid.uuid4())
    # below 3.27 there is no such API
    cinder_error(call(cloud.member, "GET", "attachments", version="3.26"), 404, "itemNotFound")
    cinder_error(call(cloud.member, "POST", "attachments", {"attachment": {"volume_uuid": vid,
                                                                           "instance_uuid": server}}, "3.0"),
                 404, "itemNotFound")
    response = call(cloud.member, "POST", "attachments", {"attachment": {"volume_uuid": vid, "instance_uuid": server}},
                    "3.27")
    assert response.status_code == 200, response.content
    body = response.json()["attachment"]
    aid = body["id"]
    assert body == {"id": aid, "status": "reserved", "instance": server, "volume_id": vid, "attached_at": "",
                    "detached_at": "", "attach_mode": "rw", "connection_info": None}
    assert Volume.objects.get(pk=vid).status == "reserved"
    # a connector: attaching, with where the file is
    response = call(cloud.member, "PUT", f"attachments/{aid}",
                    {"attachment": {"connector": {"host": "compute9", "initiator": "x"}}}, "3.27")
    assert response.status_code == 200, response.content
    body = response.json()["attachment"]
    assert body["status"] == "attaching" and body["connection_info"]["driver_volume_type"] == "file"
    assert body["connection_info"]["data"]["path"] == f"/tmp/x/volume-{vid}.qcow2"
    assert Volume.objects.get(pk=vid).status == "attaching"
    # complete needs 3.44
    cinder_error(call(cloud.member, "POST", f"attachments/{aid}/action", {"os-complete": {}}, "3.27"), 400,
                 "badRequest")
    assert call(cloud.member, "POST", f"attachments/{aid}/action", {"os-complete": {}}).status_code == 204
    volume = check(call(cloud.member, "GET", f"volumes/{vid}", version="3.0"), "volumes", "show_volume")["volume"]
    assert volume["status"] == "in-use"
    assert [(a["attachment_id"], a["server_id"], a["host_name"]) for a in volume["attachments"]] == \
        [(aid, server, "compute9")]
    listed = call(cloud.member, "GET", "attachments").json()["attachments"]
    assert listed == [{"id": aid, "status": "attached", "instance": server, "volume_id": vid}]
    [detail] = call(cloud.member, "GET", f"attachments/detail?volume_id={vid}").json()["attachments"]
    assert detail["status"] == "attached" and detail["attached_at"]
    assert call(cloud.member, "GET", f"attachments?instance_id={uuid.uuid4()}").json() == {"attachments": []}
    # another project sees nothing of it; a reader may not change it
    cinder_error(call(cloud.other, "GET", f"/volume/v3/{cloud.other_project.id}/attachments/{aid}"), 404,
                 "itemNotFound")
    assert call(cloud.other, "GET", f"/volume/v3/{cloud.other_project.id}/attachments").json() == {"attachments": []}
    assert call(cloud.reader, "DELETE", f"attachments/{aid}").status_code == 403
    # a second attachment of an in-use volume is refused (no multiattach)
    cinder_error(call(cloud.member, "POST", "attachments", {"attachment": {"volume_uuid": vid,
                                                                           "instance_uuid": server}}), 400,
                 "badRequest")
    response = call(cloud.member, "DELETE", f"attachments/{aid}")
    assert response.status_code == 200 and response.json() == {"attachments": []}
    assert Volume.objects.get(pk=vid).status == "available" and not VolumeAttachment.objects.exists()
    cinder_error(call(cloud.member, "GET", f"attachments/{aid}"), 404, "itemNotFound")
    # created with a connector: attaching at once; deleting it before completion makes it available
    response = call(cloud.member, "POST", "attachments", {"attachment": {
        "volume_uuid": vid, "instance_uuid": server, "connector": {"host": "h2"}}})
    assert response.json()["attachment"]["status"] == "attaching"
    assert call(cloud.member, "DELETE", f"attachments/{response.json()['attachment']['id']}").status_code == 200
    assert Volume.objects.get(pk=vid).status == "available"
    # bad bodies change nothing
    for body in ({"attachment": {"instance_uuid": server}}, {"attachment": {"volume_uuid": vid}},
                 {"attachment": {"volume_uuid": vid, "instance_uuid": server, "connector": "x"}}, {}):
        cinder_error(call(cloud.member, "POST", "attachments", body), 400, "badRequest")
    assert Volume.objects.get(pk=vid).status == "available" and not VolumeAttachment.objects.exists()


def test_bodies_follow_the_microversion(cloud: SeededCloud) -> None:
    vid = available(cloud)
    Volume.objects.filter(pk=vid).update(status="available")
    at_30 = check(call(cloud.member, "GET", f"volumes/{vid}", version="3.0"), "volumes", "show_volume")["volume"]
    assert "group_id" not in at_30 and "provider_id" not in at_30
    assert cloud.member.get(f"volumes/{vid}")["OpenStack-API-Version"] == "volume 3.0"  # no header: 3.0
    assert call(cloud.member, "GET", f"volumes/{vid}", version="3.13").json()["volume"]["group_id"] is None
    assert "provider_id" not in call(cloud.member, "GET", f"volumes/{vid}", version="3.21").json()["volume"]
    admin = call(cloud.admin, "GET", f"/volume/v3/{cloud.admin_project.id}/volumes/{vid}", version="3.21")
    assert admin.json()["volume"]["provider_id"] is None
    created = call(cloud.member, "POST", "volumes", {"volume": {"size": 1, "name": "x"}}, "3.13").json()["volume"]
    assert created["group_id"] is None
    response = call(cloud.member, "GET", "volumes/summary", version="3.36").json()["volume-summary"]
    assert response["total_count"] == 2 and response["metadata"] == {}
    assert "metadata" not in call(cloud.member, "GET", "volumes/summary", version="3.12").json()["volume-summary"]
    snap = call(cloud.member, "POST", "snapshots", {"snapshot": {"volume_id": vid}}, "3.41").json()["snapshot"]
    assert snap["user_id"] == cloud.member_actor.user_id and snap["group_snapshot_id"] is None
    at_30 = check(call(cloud.member, "GET", f"snapshots/{snap['id']}", version="3.0"), "snapshots",
                  "show_snapshot")["snapshot"]
    assert "user_id" not in at_30 and "group_snapshot_id" not in at_30
    shown = call(cloud.member, "GET", f"snapshots/{snap['id']}", version="3.14").json()["snapshot"]
    assert shown["group_snapshot_id"] is None and "user_id" not in shown
    listed = call(cloud.member, "GET", "snapshots", version="3.44").json()["snapshots"]
    assert "user_id" not in listed[0]  # the list without details is the same at every version
    assert call(cloud.member, "GET", "snapshots/detail", version="3.44").json()["snapshots"][0]["user_id"]
    assert cloud.member.get("volumes", headers={"OpenStack-API-Version": "volume latest"})["OpenStack-API-Version"] == \
        "volume 3.44"
    cinder_error(cloud.member.get("volumes", headers={"OpenStack-API-Version": "volume 3.45"}), 406, "computeFault")
