"""Cinder's per volume type quotas: ``volumes_<type>``, ``gigabytes_<type>``, ``snapshots_<type>``
for every type (default -1), shown and set through os-quota-sets, counted in the transaction that makes
the volume or snapshot, given back when it goes; a type-less volume counts against the default type."""
from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.identity import quotas
from apps.identity import services as identity_services
from apps.identity.models import QuotaLimit, QuotaUsage
from apps.volumes import services
from apps.volumes.models import Snapshot, Volume
from tests.api_client import SeededCloud
from tests.volumes.helpers import check, cinder_error, new_volume

pytestmark = pytest.mark.django_db


def usage(project_id: str) -> dict[str, int]:
    return dict(QuotaUsage.objects.filter(project_id=project_id).values_list("resource", "in_use"))


def admin_base(cloud: SeededCloud) -> str:
    return f"/volume/v3/{cloud.admin_project.id}"


def make_type(cloud: SeededCloud, name: str) -> dict[str, Any]:
    response = cloud.admin.post(f"{admin_base(cloud)}/types", {"volume_type": {"name": name}})
    assert response.status_code == 200, response.content[:400]
    return response.json()["volume_type"]


def available(cloud: SeededCloud, **attrs: Any) -> dict[str, Any]:
    volume = new_volume(cloud.member, **attrs)
    assert services.volume_created(volume_id=volume["id"])
    return volume


def test_a_registered_family_names_its_resources_when_asked() -> None:
    asked: list[int] = []

    def names() -> list[str]:
        asked.append(1)
        return ["small", "big"]

    quotas.register_family("widgets", names=names, default=-1, service="test", description="Widgets of {}")
    quotas.register_family("gizmos", names=names, default=3, service="test")
    try:
        known = quotas.registered()
        assert known["widgets_big"].description == "Widgets of big" and known["gizmos_small"].default == 3
        assert len(asked) == 1  # one look at the names for every family that shares them
        assert quotas.get("widgets_small") is not None and quotas.get("widgets_huge") is None
        assert quotas.get("widgets_*") is None and "widgets_*" not in known
    finally:
        quotas.unregister("widgets_*")
        quotas.unregister("gizmos_*")
    assert quotas.get("widgets_small") is None


def test_registry_resolves_type_names_only_while_the_type_exists(cloud: SeededCloud) -> None:
    assert quotas.get("volumes_gold") is None
    make_type(cloud, "gold")
    resource = quotas.get("gigabytes_gold")
    assert resource is not None and resource.default == -1 and resource.service == "volume"
    assert "gold" in resource.description
    assert quotas.get("volumes") is not None and quotas.get("volumes_") is None
    known = quotas.registered()
    assert {"volumes_gold", "gigabytes_gold", "snapshots_gold", "volumes___DEFAULT__"} <= set(known)
    cinder_error(cloud.admin.put(f"{admin_base(cloud)}/os-quota-sets/{cloud.demo_project.id}",
                                 {"quota_set": {"volumes_nope": 1}}), 400, "badRequest")


def test_type_quotas_show_set_defaults_and_reset(cloud: SeededCloud) -> None:
    make_type(cloud, "gold")
    demo = cloud.demo_project.id
    body = check(cloud.member.get(f"os-quota-sets/{demo}"), "quotas", "show_quota_set")["quota_set"]
    assert body["volumes_gold"] == body["gigabytes_gold"] == body["snapshots_gold"] == -1
    assert body["volumes___DEFAULT__"] == -1 and body["volumes"] == 10
    cinder_error(cloud.member.put(f"os-quota-sets/{demo}", {"quota_set": {"volumes_gold": 1}}), 403, "forbidden")
    updated = check(cloud.admin.put(f"{admin_base(cloud)}/os-quota-sets/{demo}",
                                    {"quota_set": {"volumes_gold": 2, "gigabytes_gold": 20}}),
                    "quotas", "update_quota_set")["quota_set"]
    assert updated["volumes_gold"] == 2 and updated["gigabytes_gold"] == 20 and updated["snapshots_gold"] == -1
    used = check(cloud.member.get(f"os-quota-sets/{demo}?usage=True"), "quotas", "show_quota_set_usage")
    assert used["quota_set"]["volumes_gold"] == {"limit": 2, "in_use": 0, "reserved": 0}
    defaults = check(cloud.member.get(f"os-quota-sets/{demo}/defaults"), "quotas", "show_quota_set")
    assert defaults["quota_set"]["volumes_gold"] == -1
    classes = check(cloud.admin.put(f"{admin_base(cloud)}/os-quota-class-sets/default",
                                    {"quota_class_set": {"snapshots_gold": 4}}),
                    "quota_classes", "update_quota_classes")["quota_class_set"]
    assert classes["snapshots_gold"] == 4
    assert cloud.member.get(f"os-quota-sets/{demo}").json()["quota_set"]["snapshots_gold"] == 4
    assert cloud.admin.delete(f"{admin_base(cloud)}/os-quota-sets/{demo}").status_code == 200
    assert cloud.member.get(f"os-quota-sets/{demo}").json()["quota_set"]["volumes_gold"] == -1


def test_type_quotas_enforced_on_create_extend_snapshot_and_released(cloud: SeededCloud) -> None:
    make_type(cloud, "gold")
    demo = cloud.demo_project.id
    identity_services.quota_set(actor=cloud.admin_actor, project_id=demo,
                                limits={"volumes_gold": 1, "gigabytes_gold": 4, "snapshots_gold": 1})
    vid = available(cloud, volume_type="gold", size=2)["id"]
    message = cinder_error(cloud.member.post("volumes", {"volume": {"size": 1, "volume_type": "gold"}}),
                           413, "overLimit")
    assert "volumes_gold" in message and Volume.objects.count() == 1
    available(cloud)  # another type is not held back by gold's limits
    message = cinder_error(cloud.member.post(f"volumes/{vid}/action", {"os-extend": {"new_size": 5}}),
                           413, "overLimit")
    assert "gigabytes_gold" in message and Volume.objects.get(pk=vid).size == 2
    check(cloud.member.post(f"volumes/{vid}/action", {"os-extend": {"new_size": 3}}), "volumes", "extend_volume")
    assert services.volume_extended(volume_id=vid, size_gb=3)
    snapshot = {"snapshot": {"volume_id": vid, "name": "s"}}
    message = cinder_error(cloud.member.post("snapshots", snapshot), 413, "overLimit")  # 3 + 3 > 4
    assert "gigabytes_gold" in message and not Snapshot.objects.exists()
    identity_services.quota_set(actor=cloud.admin_actor, project_id=demo, limits={"gigabytes_gold": 10})
    sid = cloud.member.post("snapshots", snapshot).json()["snapshot"]["id"]
    assert services.snapshot_created(snapshot_id=sid)
    message = cinder_error(cloud.member.post("snapshots", snapshot), 413, "overLimit")
    assert "snapshots_gold" in message and Snapshot.objects.count() == 1
    used = cloud.member.get(f"os-quota-sets/{demo}?usage=True").json()["quota_set"]
    assert used["volumes_gold"]["in_use"] == 1 and used["gigabytes_gold"]["in_use"] == 6
    assert used["snapshots_gold"]["in_use"] == 1 and used["volumes___DEFAULT__"]["in_use"] == 1
    assert used["volumes"]["in_use"] == 2 and used["gigabytes"]["in_use"] == 7
    assert cloud.member.delete(f"snapshots/{sid}").status_code == 202
    assert services.snapshot_deleted(snapshot_id=sid)
    assert cloud.member.delete(f"volumes/{vid}").status_code == 202
    assert services.volume_deleted(volume_id=vid)
    held = usage(demo)
    assert held["volumes_gold"] == held["gigabytes_gold"] == held["snapshots_gold"] == 0
    assert held["volumes___DEFAULT__"] == 1 and held["volumes"] == 1
    available(cloud, volume_type="gold", size=2)  # the room is back


def test_type_less_volume_counts_against_the_default_type(cloud: SeededCloud) -> None:
    identity_services.quota_set(actor=cloud.admin_actor, project_id=cloud.demo_project.id,
                                limits={"volumes___DEFAULT__": 1})
    available(cloud)
    message = cinder_error(cloud.member.post("volumes", {"volume": {"size": 1}}), 413, "overLimit")
    assert "volumes___DEFAULT__" in message and Volume.objects.count() == 1


def test_failed_extend_gives_back_the_type_gigabytes(cloud: SeededCloud) -> None:
    make_type(cloud, "gold")
    vid = available(cloud, volume_type="gold", size=1)["id"]
    cloud.member.post(f"volumes/{vid}/action", {"os-extend": {"new_size": 4}})
    assert usage(cloud.demo_project.id)["gigabytes_gold"] == 4
    assert services.volume_extend_failed(volume_id=vid, reason="disk full")
    assert usage(cloud.demo_project.id)["gigabytes_gold"] == 1


def test_renamed_type_keeps_its_quotas_and_a_deleted_one_leaves_none(cloud: SeededCloud) -> None:
    gold = make_type(cloud, "gold")
    demo = cloud.demo_project.id
    identity_services.quota_set(actor=cloud.admin_actor, project_id=demo, limits={"volumes_gold": 1})
    vid = available(cloud, volume_type="gold")["id"]
    response = cloud.admin.put(f"{admin_base(cloud)}/types/{gold['id']}", {"volume_type": {"name": "platinum"}})
    assert response.status_code == 200, response.content[:400]
    body = cloud.member.get(f"os-quota-sets/{demo}?usage=True").json()["quota_set"]
    assert "volumes_gold" not in body and body["volumes_platinum"] == {"limit": 1, "in_use": 1, "reserved": 0}
    cinder_error(cloud.member.post("volumes", {"volume": {"size": 1, "volume_type": "platinum"}}), 413, "overLimit")
    assert cloud.member.delete(f"volumes/{vid}").status_code == 202
    assert services.volume_deleted(volume_id=vid)
    assert usage(demo)["volumes_platinum"] == 0
    assert cloud.admin.delete(f"{admin_base(cloud)}/types/{gold['id']}").status_code == 202
    assert not QuotaUsage.objects.filter(resource__endswith="_platinum").exists()
    assert not QuotaLimit.objects.filter(resource__endswith="_platinum").exists()


def test_quota_set_costs_constant_queries_whatever_the_types(cloud: SeededCloud) -> None:
    make_type(cloud, "t0")

    def count() -> int:
        cloud.member.get(f"os-quota-sets/{cloud.demo_project.id}?usage=True")  # warm the token cache
        with CaptureQueriesContext(connection) as queries:
            assert cloud.member.get(f"os-quota-sets/{cloud.demo_project.id}?usage=True").status_code == 200
        return len(queries)

    few = count()
    for i in range(1, 5):
        make_type(cloud, f"t{i}")
    assert count() == few
