"""The Cinder v3 API over HTTP (in-process client, real tokens): bodies against tempest's strict 3.0
schemas, errors in Cinder's format, project scoping, filters and pagination in constant queries,
the status machine, quotas. The storage agent's reports are the real services it calls."""
from __future__ import annotations

from functools import partial
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.core.errors import BadRequest, Forbidden, NotFound
from apps.identity import services as identity_services
from apps.identity.models import QuotaUsage
from apps.images.models import Image
from apps.volumes import services, states
from apps.volumes.models import Snapshot, StorageBackend, Volume
from tests.api_client import SeededCloud, assert_refused
from tests.volumes.helpers import check, cinder_error, new_volume

pytestmark = pytest.mark.django_db


def usage(project_id: str) -> dict[str, int]:
    return dict(QuotaUsage.objects.filter(project_id=project_id).values_list("resource", "in_use"))


def available(cloud: SeededCloud, **attrs: Any) -> dict:
    volume = new_volume(cloud.member, **attrs)
    assert services.volume_created(volume_id=volume["id"])
    return volume


def test_version_discovery(cloud: SeededCloud) -> None:
    response = cloud.anonymous.get("/volume/")
    body = check(response, "versions", "list_versions")
    assert body["versions"][0]["id"] == "v3.0" and body["versions"][0]["min_version"] == "3.0"
    response = cloud.anonymous.get("/volume/v3/")
    body = check(response, "versions", "volume_api_version_details")
    assert body["versions"][0]["version"] == "3.44"
    response = cloud.member.get("volumes", headers={"OpenStack-API-Version": "volume 3.0"})
    assert response.status_code == 200 and response["OpenStack-API-Version"] == "volume 3.0"
    response = cloud.member.get("volumes", headers={"OpenStack-API-Version": "volume 3.60"})
    cinder_error(response, 406, "computeFault")


def test_create_show_list_update(cloud: SeededCloud) -> None:
    response = cloud.member.post("volumes", {"volume": {"size": 1, "name": "v1", "description": "d",
                                                        "metadata": {"k": "v"}}})
    body = check(response, "volumes", "create_volume")["volume"]
    assert body["status"] == "creating" and body["volume_type"] == "__DEFAULT__" and body["bootable"] == "false"
    vid = body["id"]
    assert Volume.objects.get(pk=vid).backend.host == "store1"
    assert StorageBackend.objects.get(host="store1").provisioned_gb == 1
    assert services.volume_created(volume_id=vid)
    show = check(cloud.member.get(f"volumes/{vid}"), "volumes", "show_volume")["volume"]
    assert show["status"] == "available" and show["metadata"] == {"k": "v"}
    assert show["os-vol-tenant-attr:tenant_id"] == cloud.demo_project.id and "os-vol-host-attr:host" not in show
    admin_show = check(cloud.admin.get(f"/volume/v3/{cloud.admin_project.id}/volumes/{vid}"), "volumes",
                       "show_volume")["volume"]
    assert admin_show["os-vol-host-attr:host"] == "store1@file#file"
    listed = check(cloud.member.get("volumes"), "volumes", "list_volumes_no_detail")["volumes"]
    assert [v["id"] for v in listed] == [vid]
    detail = check(cloud.member.get("volumes/detail"), "volumes", "list_volumes_with_detail")["volumes"]
    assert detail[0]["name"] == "v1"
    updated = check(cloud.member.put(f"volumes/{vid}", {"volume": {"name": "v1b", "description": "new"}}),
                    "volumes", "update_volume")["volume"]
    assert updated["name"] == "v1b" and updated["description"] == "new"
    assert usage(cloud.demo_project.id)["volumes"] == 1 and usage(cloud.demo_project.id)["gigabytes"] == 1


def test_scoping_and_roles(cloud: SeededCloud) -> None:
    vid = new_volume(cloud.member)["id"]
    assert_refused(cloud.other, [("GET", f"volumes/{vid}", None), ("DELETE", f"volumes/{vid}", None),
                                 ("PUT", f"volumes/{vid}", {"volume": {"name": "x"}})],
                   partial(cinder_error, status=404, key="itemNotFound"))
    assert cloud.other.get("volumes/detail").json()["volumes"] == []
    # the project in the path must be the token's
    cinder_error(cloud.other.get(f"/volume/v3/{cloud.demo_project.id}/volumes/{vid}"), 400, "badRequest")
    cinder_error(cloud.reader.post("volumes", {"volume": {"size": 1}}), 403, "forbidden")
    assert cloud.reader.get(f"volumes/{vid}").status_code == 200
    assert cloud.anonymous.get("volumes").status_code == 401
    cinder_error(cloud.member.get("volumes/not-a-volume"), 404, "itemNotFound")
    # admins list everyone's with all_tenants
    everyone = cloud.admin.get(f"/volume/v3/{cloud.admin_project.id}/volumes/detail?all_tenants=1").json()
    assert [v["id"] for v in everyone["volumes"]] == [vid]


def test_bad_input_changes_nothing(cloud: SeededCloud) -> None:
    for body in ({"volume": {"size": 0}}, {"volume": {"size": "x"}}, {"volume": {}}, {"nope": {}},
                 {"volume": {"size": 1, "metadata": "x"}}, {"volume": {"size": 1, "volume_type": "nope"}}):
        response = cloud.member.post("volumes", body)
        assert response.status_code in (400, 404), (body, response.content)
    assert not Volume.objects.exists()
    assert usage(cloud.demo_project.id).get("volumes", 0) == 0


def test_filters_pagination_constant_queries(cloud: SeededCloud) -> None:
    ids = [available(cloud, name=f"v{i}", metadata={"tier": "gold" if i % 2 else "bronze"})["id"] for i in range(6)]
    services.volume_set_bootable(actor=cloud.member_actor, volume_id=ids[0], bootable=True)
    by_name = cloud.member.get("volumes/detail?name=v3").json()["volumes"]
    assert [v["id"] for v in by_name] == [ids[3]]
    gold = cloud.member.get('volumes/detail?metadata={"tier": "gold"}').json()["volumes"]
    assert sorted(v["id"] for v in gold) == sorted(ids[1::2])
    boot = cloud.member.get("volumes/detail?bootable=true").json()["volumes"]
    assert [v["id"] for v in boot] == [ids[0]]
    assert cloud.member.get("volumes?status=creating").json()["volumes"] == []
    page = check(cloud.member.get("volumes/detail?limit=4&sort=name:asc"), "volumes", "list_volumes_with_detail")
    assert [v["name"] for v in page["volumes"]] == ["v0", "v1", "v2", "v3"]
    nxt = page["volumes_links"][0]["href"]
    rest = cloud.member.get(nxt[nxt.index("/volume/"):]).json()
    assert [v["name"] for v in rest["volumes"]] == ["v4", "v5"] and "volumes_links" not in rest
    cinder_error(cloud.member.get("volumes?sort=bogus:asc"), 400, "badRequest")
    with CaptureQueriesContext(connection) as few:
        cloud.member.get("volumes/detail?limit=2")
    with CaptureQueriesContext(connection) as many:
        cloud.member.get("volumes/detail")
    assert len(few) == len(many)


def test_metadata_endpoints(cloud: SeededCloud) -> None:
    vid = available(cloud, metadata={"a": "1"})["id"]
    body = check(cloud.member.post(f"volumes/{vid}/metadata", {"metadata": {"b": "2"}}), "volumes",
                 "create_volume_metadata")
    assert body["metadata"] == {"a": "1", "b": "2"}
    body = check(cloud.member.put(f"volumes/{vid}/metadata", {"metadata": {"c": "3"}}), "volumes",
                 "update_volume_metadata")
    assert body["metadata"] == {"c": "3"}
    check(cloud.member.get(f"volumes/{vid}/metadata"), "volumes", "show_volume_metadata")
    body = check(cloud.member.put(f"volumes/{vid}/metadata/c", {"meta": {"c": "4"}}), "volumes",
                 "update_volume_metadata_item")
    assert body == {"meta": {"c": "4"}}
    assert check(cloud.member.get(f"volumes/{vid}/metadata/c"), "volumes", "show_volume_metadata_item") == \
        {"meta": {"c": "4"}}
    check(cloud.member.delete(f"volumes/{vid}/metadata/c"), "volumes", "delete_volume_metadata_item")
    cinder_error(cloud.member.get(f"volumes/{vid}/metadata/c"), 404, "itemNotFound")
    cinder_error(cloud.member.put(f"volumes/{vid}/metadata/x", {"meta": {"y": "1"}}), 400, "badRequest")


def test_extend_and_bootable(cloud: SeededCloud) -> None:
    vid = new_volume(cloud.member)["id"]
    cinder_error(cloud.member.post(f"volumes/{vid}/action", {"os-extend": {"new_size": 2}}), 400, "badRequest")
    services.volume_created(volume_id=vid)
    cinder_error(cloud.member.post(f"volumes/{vid}/action", {"os-extend": {"new_size": 1}}), 400, "badRequest")
    check(cloud.member.post(f"volumes/{vid}/action", {"os-extend": {"new_size": 3}}), "volumes", "extend_volume")
    assert Volume.objects.get(pk=vid).status == states.EXTENDING
    assert usage(cloud.demo_project.id)["gigabytes"] == 3
    cinder_error(cloud.member.delete(f"volumes/{vid}"), 400, "badRequest")  # busy
    assert services.volume_extended(volume_id=vid, size_gb=3)
    assert cloud.member.get(f"volumes/{vid}").json()["volume"]["size"] == 3
    check(cloud.member.post(f"volumes/{vid}/action", {"os-set_bootable": {"bootable": True}}), "volumes",
          "set_bootable_volume")
    assert cloud.member.get(f"volumes/{vid}").json()["volume"]["bootable"] == "true"
    cinder_error(cloud.member.post(f"volumes/{vid}/action", {"os-bogus": {}}), 400, "badRequest")
    # a failed extend gives the gigabytes back
    cloud.member.post(f"volumes/{vid}/action", {"os-extend": {"new_size": 5}})
    assert services.volume_extend_failed(volume_id=vid, reason="disk full")
    assert Volume.objects.get(pk=vid).status == states.ERROR_EXTENDING
    assert usage(cloud.demo_project.id)["gigabytes"] == 3


def test_delete_rules(cloud: SeededCloud) -> None:
    vid = available(cloud, size=2)["id"]
    snap = cloud.member.post("snapshots", {"snapshot": {"volume_id": vid, "name": "s"}}).json()["snapshot"]
    cinder_error(cloud.member.delete(f"volumes/{vid}"), 400, "badRequest")  # has a snapshot
    services.snapshot_created(snapshot_id=snap["id"])
    cloud.member.delete(f"snapshots/{snap['id']}")
    assert services.snapshot_deleted(snapshot_id=snap["id"])
    # attached (the compute side's services)
    attachment = services.volume_reserve(actor=cloud.member_actor, volume_id=vid, server_id=None)
    services.volume_attach(volume_id=vid, attachment_id=attachment.id, server_id="3c4d2e1f-0000-4000-8000-000000000001",
                           host_name="compute1", device="/dev/vdb")
    show = check(cloud.member.get(f"volumes/{vid}"), "volumes", "show_volume")["volume"]
    assert show["status"] == "in-use" and show["attachments"][0]["device"] == "/dev/vdb"
    cinder_error(cloud.member.delete(f"volumes/{vid}"), 400, "badRequest")
    services.volume_begin_detaching(volume_id=vid)
    services.volume_detach(volume_id=vid, attachment_id=attachment.id)
    assert cloud.member.delete(f"volumes/{vid}").status_code == 202
    assert Volume.objects.get(pk=vid).status == states.DELETING
    cinder_error(cloud.member.delete(f"volumes/{vid}"), 400, "badRequest")  # already deleting
    assert services.volume_deleted(volume_id=vid)
    cinder_error(cloud.member.get(f"volumes/{vid}"), 404, "itemNotFound")
    assert set(usage(cloud.demo_project.id)) >= {"volumes", "gigabytes", "snapshots", "volumes___DEFAULT__"} and \
        set(usage(cloud.demo_project.id).values()) == {0}  # every resource given back, each type's own too
    assert StorageBackend.objects.get(host="store1").provisioned_gb == 0


def test_cascade_delete(cloud: SeededCloud) -> None:
    vid = available(cloud)["id"]
    sid = cloud.member.post("snapshots", {"snapshot": {"volume_id": vid}}).json()["snapshot"]["id"]
    services.snapshot_created(snapshot_id=sid)
    assert cloud.member.delete(f"volumes/{vid}?cascade=true").status_code == 202
    assert services.volume_deleted(volume_id=vid)
    assert set(usage(cloud.demo_project.id)) >= {"volumes", "gigabytes", "snapshots", "volumes___DEFAULT__"} and \
        set(usage(cloud.demo_project.id).values()) == {0}  # every resource given back, each type's own too


def test_snapshots(cloud: SeededCloud) -> None:
    vid = available(cloud, size=2)["id"]
    body = check(cloud.member.post("snapshots", {"snapshot": {"volume_id": vid, "name": "s1", "metadata": {"a": "b"}}}),
                 "snapshots", "create_snapshot")["snapshot"]
    sid = body["id"]
    assert body["status"] == "creating" and body["size"] == 2
    assert services.snapshot_created(snapshot_id=sid)
    show = check(cloud.member.get(f"snapshots/{sid}"), "snapshots", "show_snapshot")["snapshot"]
    assert show["os-extended-snapshot-attributes:progress"] == "100%" and show["metadata"] == {"a": "b"}
    check(cloud.member.get("snapshots"), "snapshots", "list_snapshots_no_detail")
    listed = check(cloud.member.get("snapshots/detail?name=s1"), "snapshots", "list_snapshots_with_detail")
    assert [s["id"] for s in listed["snapshots"]] == [sid]
    upd = check(cloud.member.put(f"snapshots/{sid}", {"snapshot": {"name": "s2"}}), "snapshots", "update_snapshot")
    assert upd["snapshot"]["name"] == "s2"
    check(cloud.member.post(f"snapshots/{sid}/metadata", {"metadata": {"c": "d"}}), "snapshots",
          "create_snapshot_metadata")
    assert cloud.member.get(f"snapshots/{sid}/metadata").json()["metadata"] == {"a": "b", "c": "d"}
    check(cloud.member.put(f"snapshots/{sid}/metadata/c", {"meta": {"c": "e"}}), "snapshots",
          "update_snapshot_metadata_item")
    check(cloud.member.delete(f"snapshots/{sid}/metadata/c"), "snapshots", "delete_snapshot_metadata_item")
    cinder_error(cloud.other.get(f"snapshots/{sid}"), 404, "itemNotFound")
    assert usage(cloud.demo_project.id)["snapshots"] == 1 and usage(cloud.demo_project.id)["gigabytes"] == 4
    # in-use needs force
    attachment = services.volume_reserve(actor=cloud.member_actor, volume_id=vid)
    services.volume_attach(volume_id=vid, attachment_id=attachment.id, server_id=None, host_name=None, device=None)
    cinder_error(cloud.member.post("snapshots", {"snapshot": {"volume_id": vid}}), 400, "badRequest")
    forced = cloud.member.post("snapshots", {"snapshot": {"volume_id": vid, "force": True}})
    assert forced.status_code == 202
    # delete
    check(cloud.member.delete(f"snapshots/{sid}"), "snapshots", "delete_snapshot")
    cinder_error(cloud.member.delete(f"snapshots/{sid}"), 400, "badRequest")
    assert services.snapshot_deleted(snapshot_id=sid)
    cinder_error(cloud.member.get(f"snapshots/{sid}"), 404, "itemNotFound")


def test_create_from_snapshot_volume_and_image(cloud: SeededCloud) -> None:
    vid = available(cloud, size=2)["id"]
    sid = cloud.member.post("snapshots", {"snapshot": {"volume_id": vid}}).json()["snapshot"]["id"]
    cinder_error(cloud.member.post("volumes", {"volume": {"snapshot_id": sid}}), 400, "badRequest")  # creating
    services.snapshot_created(snapshot_id=sid)
    cinder_error(cloud.member.post("volumes", {"volume": {"snapshot_id": sid, "size": 1}}), 400, "badRequest")
    from_snap = cloud.member.post("volumes", {"volume": {"snapshot_id": sid}}).json()["volume"]
    assert from_snap["size"] == 2 and from_snap["snapshot_id"] == sid
    clone = cloud.member.post("volumes", {"volume": {"source_volid": vid, "size": 3}}).json()["volume"]
    assert clone["source_volid"] == vid and clone["size"] == 3
    assert Volume.objects.get(pk=clone["id"]).backend_id == Volume.objects.get(pk=vid).backend_id
    image = Image.objects.create(name="img", status=Image.ACTIVE, visibility=Image.PUBLIC, disk_format="qcow2",
                                 container_format="bare", size=1000, virtual_size=3 << 30, location="x/y",
                                 owner=cloud.admin_project.id)
    cinder_error(cloud.member.post("volumes", {"volume": {"imageRef": image.id, "size": 1}}), 400, "badRequest")
    body = check(cloud.member.post("volumes", {"volume": {"imageRef": image.id, "size": 3, "name": "bv"}}),
                 "volumes", "create_volume")["volume"]
    assert body["bootable"] == "true"
    show = check(cloud.member.get(f"volumes/{body['id']}"), "volumes", "show_volume")["volume"]
    assert show["volume_image_metadata"]["image_id"] == image.id
    cinder_error(cloud.member.post("volumes", {"volume": {"imageRef": "nope", "size": 1}}), 404, "itemNotFound")


def test_quota_over_limit_is_413(cloud: SeededCloud) -> None:
    identity_services.quota_set(actor=cloud.admin_actor, project_id=cloud.demo_project.id, limits={"gigabytes": 3})
    cinder_error(cloud.member.post("volumes", {"volume": {"size": 4}}), 413, "overLimit")
    available(cloud, size=3)
    identity_services.quota_set(actor=cloud.admin_actor, project_id=cloud.demo_project.id, limits={"volumes": 1})
    cinder_error(cloud.member.post("volumes", {"volume": {"size": 1}}), 413, "overLimit")
    assert Volume.objects.count() == 1


def test_no_backend_up_means_error(cloud: SeededCloud) -> None:
    StorageBackend.objects.update(last_heartbeat=None)
    body = new_volume(cloud.member)
    volume = Volume.objects.get(pk=body["id"])
    assert volume.status == states.ERROR and "No valid backend" in volume.status_reason
    assert cloud.member.delete(f"volumes/{volume.id}").status_code == 202  # never placed: gone at once
    assert not Volume.objects.exists() and usage(cloud.demo_project.id)["volumes"] == 0


def test_volume_types(cloud: SeededCloud) -> None:
    types = check(cloud.member.get("types"), "volume_types", "list_volume_types")["volume_types"]
    assert [t["name"] for t in types] == ["__DEFAULT__"]
    admin_base = f"/volume/v3/{cloud.admin_project.id}"
    body = check(cloud.admin.post(f"{admin_base}/types", {"volume_type": {"name": "fast", "extra_specs": {"x": "y"}}}),
                 "volume_types", "create_volume_type")["volume_type"]
    check(cloud.member.get(f"types/{body['id']}"), "volume_types", "show_volume_type")
    cinder_error(cloud.member.post("types", {"volume_type": {"name": "mine"}}), 403, "forbidden")
    vol = new_volume(cloud.member, volume_type="fast")
    assert vol["volume_type"] == "fast"
    cinder_error(cloud.admin.delete(f"{admin_base}/types/{body['id']}"), 400, "badRequest")  # in use
    private = cloud.admin.post(f"{admin_base}/types", {"volume_type": {"name": "hidden", "is_public": False}})
    cinder_error(cloud.member.get(f"types/{private.json()['volume_type']['id']}"), 404, "itemNotFound")
    check(cloud.admin.delete(f"{admin_base}/types/{private.json()['volume_type']['id']}"), "volume_types",
          "delete_volume_type")


def test_state_table() -> None:
    assert states.volume_may("creating", "available") and not states.volume_may("creating", "deleting")
    assert states.volume_may("in-use", "detaching") and not states.volume_may("in-use", "deleting")
    assert {"available", "error", "error_deleting", "error_extending"} == {
        s for s in states.VOLUME_STATUSES if states.volume_may(s, "deleting")}
    with pytest.raises(BadRequest):
        states.check_volume("in-use", "extending", volume_id="x", action="extend")


def test_quota_sets_and_limits(cloud: SeededCloud) -> None:
    available(cloud, size=2)
    demo = cloud.demo_project.id
    body = check(cloud.member.get(f"os-quota-sets/{demo}"), "quotas", "show_quota_set")["quota_set"]
    assert body["volumes"] == 10 and body["gigabytes"] == 1000 and body["backups"] == 0
    used = check(cloud.member.get(f"os-quota-sets/{demo}?usage=True"), "quotas", "show_quota_set_usage")
    assert used["quota_set"]["gigabytes"] == {"limit": 1000, "in_use": 2, "reserved": 0}
    check(cloud.member.get(f"os-quota-sets/{demo}/defaults"), "quotas", "show_quota_set")
    limits = check(cloud.member.get("limits"), "limits", "show_limits")["limits"]["absolute"]
    assert limits["totalVolumesUsed"] == 1 and limits["totalGigabytesUsed"] == 2
    admin_base = f"/volume/v3/{cloud.admin_project.id}"
    cinder_error(cloud.member.put(f"os-quota-sets/{demo}", {"quota_set": {"volumes": 50}}), 403, "forbidden")
    cinder_error(cloud.member.get(f"os-quota-sets/{cloud.other_project.id}"), 404, "itemNotFound")
    updated = check(cloud.admin.put(f"{admin_base}/os-quota-sets/{demo}",
                                    {"quota_set": {"volumes": 50, "per_volume_gigabytes": 5}}),
                    "quotas", "update_quota_set")["quota_set"]
    assert updated["volumes"] == 50 and updated["per_volume_gigabytes"] == 5
    cinder_error(cloud.admin.put(f"{admin_base}/os-quota-sets/{demo}", {"quota_set": {"backups": 5}}), 400,
                 "badRequest")
    cinder_error(cloud.member.post("volumes", {"volume": {"size": 6}}), 413, "overLimit")
    assert cloud.admin.delete(f"{admin_base}/os-quota-sets/{demo}").status_code == 200
    assert cloud.member.get(f"os-quota-sets/{demo}").json()["quota_set"]["per_volume_gigabytes"] == -1


def test_offset_sort_alias_marker_reserve_and_unknown_paths(cloud: SeededCloud) -> None:
    vid = ""
    for name in ("b", "a", "c"):
        vid = available(cloud, name=name)["id"]
        sid = cloud.member.post("snapshots", {"snapshot": {"volume_id": vid, "name": name}}).json()["snapshot"]["id"]
        services.snapshot_created(snapshot_id=sid)
    names = [s["name"] for s in cloud.member.get("snapshots?sort_key=display_name&sort_dir=asc").json()["snapshots"]]
    assert names == ["a", "b", "c"]
    assert len(cloud.member.get("snapshots?offset=2&limit=3").json()["snapshots"]) == 1
    assert len(cloud.member.get("volumes?offset=1").json()["volumes"]) == 2
    cinder_error(cloud.member.get("snapshots?marker=nope"), 404, "itemNotFound")
    cinder_error(cloud.member.get("volumes/detail?marker=nope"), 404, "itemNotFound")
    cinder_error(cloud.member.post("snapshots", {"snapshot": {"name": "x"}}), 404, "itemNotFound")
    # legacy reserve/unreserve
    assert cloud.member.post(f"volumes/{vid}/action", {"os-reserve": None}).status_code == 202
    assert Volume.objects.get(pk=vid).status == states.ATTACHING
    cinder_error(cloud.member.post(f"volumes/{vid}/action", {"os-reserve": None}), 400, "badRequest")
    assert cloud.member.post(f"volumes/{vid}/action", {"os-unreserve": None}).status_code == 202
    assert Volume.objects.get(pk=vid).status == states.AVAILABLE
    for method in ("GET", "PUT", "DELETE"):
        cinder_error(cloud.member.call(method, "volumes/"), 404, "itemNotFound")
    cinder_error(cloud.member.get("nothing-here"), 404, "itemNotFound")
    assert cloud.member.get("extensions").json() == {"extensions": []}


def test_extra_specs_snapshot_admin_actions_zones_pools(cloud: SeededCloud) -> None:
    admin_base = f"/volume/v3/{cloud.admin_project.id}"
    tid = cloud.admin.post(f"{admin_base}/types", {"volume_type": {"name": "gold"}}).json()["volume_type"]["id"]
    check(cloud.admin.post(f"{admin_base}/types/{tid}/extra_specs", {"extra_specs": {"a": "1", "b": "2"}}),
          "volume_types", "create_volume_types_extra_specs")
    assert check(cloud.admin.get(f"{admin_base}/types/{tid}/extra_specs"), "volume_types",
                 "list_volume_types_extra_specs")["extra_specs"] == {"a": "1", "b": "2"}
    assert cloud.admin.put(f"{admin_base}/types/{tid}/extra_specs/a", {"a": "9"}).json() == {"a": "9"}
    assert cloud.admin.get(f"{admin_base}/types/{tid}/extra_specs/a").json() == {"a": "9"}
    cinder_error(cloud.admin.put(f"{admin_base}/types/{tid}/extra_specs/a", {"a": "1", "b": "1"}), 400, "badRequest")
    cinder_error(cloud.admin.put(f"{admin_base}/types/{tid}/extra_specs/c", {"a": "1"}), 400, "badRequest")
    cinder_error(cloud.admin.post(f"{admin_base}/types/{tid}/extra_specs", {"extra_specs": "x"}), 400, "badRequest")
    cinder_error(cloud.member.post(f"types/{tid}/extra_specs", {"extra_specs": {"x": "1"}}), 403, "forbidden")
    assert cloud.admin.delete(f"{admin_base}/types/{tid}/extra_specs/b").status_code == 202
    cinder_error(cloud.admin.delete(f"{admin_base}/types/{tid}/extra_specs/b"), 404, "itemNotFound")
    # snapshot admin actions
    vid = available(cloud)["id"]
    sid = cloud.member.post("snapshots", {"snapshot": {"volume_id": vid}}).json()["snapshot"]["id"]
    cinder_error(cloud.member.post(f"snapshots/{sid}/action", {"os-reset_status": {"status": "error"}}), 403,
                 "forbidden")
    assert cloud.admin.post(f"{admin_base}/snapshots/{sid}/action",
                            {"os-reset_status": {"status": "error"}}).status_code == 202
    assert Snapshot.objects.get(pk=sid).status == "error"
    cinder_error(cloud.admin.post(f"{admin_base}/snapshots/{sid}/action", {"os-reset_status": {"status": "x"}}),
                 400, "badRequest")
    assert cloud.admin.post(f"{admin_base}/snapshots/{sid}/action", {"os-force_delete": {}}).status_code == 202
    assert Snapshot.objects.get(pk=sid).status == "deleting"
    sid2 = cloud.member.post("snapshots", {"snapshot": {"volume_id": vid}}).json()["snapshot"]["id"]
    assert cloud.member.post(f"snapshots/{sid2}/action", {"os-update_snapshot_status": {
        "status": "available", "progress": "100%"}}).status_code == 202
    cinder_error(cloud.member.post(f"snapshots/{sid2}/action", {"os-update_snapshot_status": {"status": "creating"}}),
                 400, "badRequest")
    zones = cloud.member.get("os-availability-zone").json()["availabilityZoneInfo"]
    assert zones == [{"zoneName": "nova", "zoneState": {"available": True}}]
    pools = check(cloud.admin.get(f"{admin_base}/scheduler-stats/get_pools?detail=True"), "scheduler_stats",
                  "get_pools_with_detail")["pools"]
    assert pools[0]["name"] == "store1@file#file" and pools[0]["capabilities"]["total_capacity_gb"] == 100
    check(cloud.admin.get(f"{admin_base}/scheduler-stats/get_pools"), "scheduler_stats", "get_pools_no_detail")
    cinder_error(cloud.member.get("scheduler-stats/get_pools"), 403, "forbidden")


def test_volume_type_update(cloud: SeededCloud) -> None:
    admin_base = f"/volume/v3/{cloud.admin_project.id}"
    tid = cloud.admin.post(f"{admin_base}/types", {"volume_type": {"name": "silver"}}).json()["volume_type"]["id"]
    body = check(cloud.admin.put(f"{admin_base}/types/{tid}", {"volume_type": {
        "name": "silver2", "description": "d", "is_public": False}}), "volume_types", "update_volume_types")
    assert body["volume_type"]["name"] == "silver2" and body["volume_type"]["is_public"] is False
    cinder_error(cloud.member.put(f"types/{tid}", {"volume_type": {"name": "x"}}), 403, "forbidden")


def test_volume_connection_for_the_compute_side(cloud: SeededCloud) -> None:
    from apps.volumes import selectors

    vid = available(cloud)["id"]
    info = selectors.volume_connection(actor=cloud.member_actor, volume_id=vid)
    assert info == {"driver_volume_type": "file", "data": {"path": f"/tmp/x/volume-{vid}.qcow2", "format": "qcow2",
                                                           "host": "store1", "volume_id": vid}}
    with pytest.raises(NotFound):
        selectors.volume_connection(actor=cloud.other_actor, volume_id=vid)


def test_backend_capabilities(cloud: SeededCloud) -> None:
    admin_base = f"/volume/v3/{cloud.admin_project.id}"
    for name in ("store1", "store1@file", "store1@file%23file"):
        body = check(cloud.admin.get(f"{admin_base}/capabilities/{name}"), "capabilities",
                     "show_backend_capabilities")
        assert body["volume_backend_name"] == "file" and body["storage_protocol"] == "file"
    cinder_error(cloud.admin.get(f"{admin_base}/capabilities/nope"), 404, "itemNotFound")
    cinder_error(cloud.member.get("capabilities/store1"), 403, "forbidden")


def test_the_backend_list_is_for_admins_only(cloud: SeededCloud) -> None:
    """The selector checks admin itself (issue 10: no access check left to the caller)."""
    from apps.volumes import selectors

    assert [b.host for b in selectors.backend_list(actor=cloud.admin_actor)] == ["store1"]
    for actor in (cloud.member_actor, cloud.reader_actor, cloud.other_actor):
        with pytest.raises(Forbidden):
            selectors.backend_list(actor=actor)


def test_quota_class_default(cloud: SeededCloud) -> None:
    admin_base = f"/volume/v3/{cloud.admin_project.id}"
    body = check(cloud.admin.get(f"{admin_base}/os-quota-class-sets/default"), "quota_classes", "show_quota_classes")
    assert body["quota_class_set"]["volumes"] == 10
    body = check(cloud.admin.put(f"{admin_base}/os-quota-class-sets/default", {"quota_class_set": {
        "volumes": 12, "backups": 10}}), "quota_classes", "update_quota_classes")
    assert body["quota_class_set"]["volumes"] == 12
    assert cloud.member.get(f"os-quota-sets/{cloud.demo_project.id}").json()["quota_set"]["volumes"] == 12
    cinder_error(cloud.admin.put(f"{admin_base}/os-quota-class-sets/default", {"quota_class_set": {
        "volumes_gold": 1}}), 400, "badRequest")
    cinder_error(cloud.member.get("os-quota-class-sets/default"), 403, "forbidden")
