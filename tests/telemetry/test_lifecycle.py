"""Lifecycle records from the control tier (apps.telemetry.services.lifecycle): each event of an owner
becomes a Gnocchi resource (started_at, revisions of its attributes, ended_at) and gauge samples with
Ceilometer's meter names, once the owner's transaction commits; through the owners' own services
(compute, volumes, networks, objects' beat)."""
from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import transaction

from apps.compute.services.server_lifecycle import server_delete
from apps.compute.services.server_rebuild_resize import server_resize, server_resize_confirm
from apps.compute.services.server_reports import server_spawned, server_task_done
from apps.networks import services as network_services
from apps.objects import services as object_services
from apps.telemetry import services
from apps.telemetry.models import Measure, Metric, Resource, ResourceRevision, ResourceType
from apps.volumes import services as volume_services
from tests.compute.test_servers_support import Env, env_fixture, image_dir_fixture, reload  # noqa: F401
from tests.volumes.helpers import storage_backend

pytestmark = pytest.mark.django_db(transaction=False)
UTC = dt.UTC
T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def samples(resource: Resource, meter: str) -> list[tuple[dt.datetime, float]]:
    return list(Measure.objects.filter(metric__resource=resource, metric__name=meter).order_by("timestamp", "id")
                .values_list("timestamp", "value"))


def record(event: str, at: dt.datetime, **attributes: Any) -> None:
    services.lifecycle_record(kind="volume", resource_id="3f9c1b52-6f36-4d5c-9d42-0a3e4a1d2b11", project_id="p1",
                              user_id="u1", attributes=attributes, event=event, at=at)  # type: ignore[arg-type]


def test_create_update_delete_make_resource_revisions_and_samples(
        db: None, django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        record("create", T0, display_name="v", size=1, status="available", volume_type="__DEFAULT__",
               unknown="dropped")
    resource = Resource.objects.get()
    assert (resource.type_id, resource.project_id, resource.user_id) == ("volume", "p1", "u1")
    assert resource.started_at == T0 and resource.ended_at is None and resource.revision_start == T0
    assert resource.attributes == {"display_name": "v", "volume_type": "__DEFAULT__", "size": 1,
                                   "status": "available"}
    assert samples(resource, "volume.size") == [(T0, 1.0)]
    assert Metric.objects.get(resource=resource).unit == "GB"

    with django_capture_on_commit_callbacks(execute=True):
        record("update", T0 + dt.timedelta(hours=2), size=5)
    with django_capture_on_commit_callbacks(execute=True):  # nothing changed: a sample, no revision
        record("update", T0 + dt.timedelta(hours=3), size=5)
    with django_capture_on_commit_callbacks(execute=True):
        record("delete", T0 + dt.timedelta(hours=4), status="deleted")
    resource.refresh_from_db()
    assert resource.ended_at == T0 + dt.timedelta(hours=4)
    assert resource.attributes["size"] == 5 and resource.attributes["status"] == "deleted"
    history = list(ResourceRevision.objects.filter(resource=resource).order_by("revision_start")
                   .values_list("revision_start", "revision_end", "attributes"))
    assert [(start, end, attrs["size"], attrs["status"]) for start, end, attrs in history] == [
        (T0, T0 + dt.timedelta(hours=2), 1, "available"),
        (T0 + dt.timedelta(hours=2), T0 + dt.timedelta(hours=4), 5, "available")]
    assert [v for _, v in samples(resource, "volume.size")] == [1.0, 5.0, 5.0, 5.0]


def test_nothing_is_recorded_when_the_owner_rolls_back(db: None, django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        record("create", T0, size=1)
        raise RuntimeError("the owner's change fails")
    assert not Resource.objects.exists() and not Measure.objects.exists()


def test_a_failure_is_logged_never_raised(db: None, django_capture_on_commit_callbacks: Any,
                                          caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    from apps.telemetry.services import lifecycle

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the telemetry tables are unreachable")

    monkeypatch.setattr(lifecycle, "_apply_one", broken)
    with django_capture_on_commit_callbacks(execute=True):
        services.lifecycle_record(kind="router", resource_id="r1", project_id="p1", user_id="", attributes={},
                                  event="create")
    assert "telemetry lifecycle records failed" in caplog.text and not Resource.objects.exists()
    with pytest.raises(ValueError, match="kind"):
        services.lifecycle_record(kind="nope", resource_id="x", project_id="p1", user_id="", attributes={},
                                  event="create")


def test_instance_life_through_compute(env: Env, django_capture_on_commit_callbacks: Any) -> None:
    actor = env.cloud.member_actor
    instance = env.boot()
    with django_capture_on_commit_callbacks(execute=True):
        server_spawned(instance_id=instance.id, host=instance.host, power_state=1)
    instance = reload(instance)
    resource = Resource.objects.get(original_resource_id=instance.id)
    assert resource.type_id == "instance" and resource.started_at == instance.launched_at
    assert resource.project_id == instance.project_id and resource.attributes["flavor_name"] == "m1.tiny"
    assert {m: samples(resource, m)[-1][1] for m in ("vcpus", "memory", "disk.root.size")} == {
        "vcpus": 1.0, "memory": 512.0, "disk.root.size": 1.0}
    with django_capture_on_commit_callbacks(execute=True):
        server_resize(actor=actor, server_id=instance.id, flavor_ref="2", request_id="rz")
        server_task_done(instance_id=instance.id, host=instance.host, task="resize_finish", power_state=1)
        server_resize_confirm(actor=actor, server_id=instance.id, request_id="cf")
        server_task_done(instance_id=instance.id, host=instance.host, task="resize_confirming", power_state=1)
    resource.refresh_from_db()
    assert resource.attributes["flavor_id"] == "2" and resource.attributes["memory_mb"] == 2048
    revision = ResourceRevision.objects.get(resource=resource)
    assert revision.attributes["flavor_id"] == "1" and revision.attributes["memory_mb"] == 512
    assert samples(resource, "memory")[-1][1] == 2048.0
    with django_capture_on_commit_callbacks(execute=True):
        server_delete(actor=env.cloud.admin_actor, server_id=instance.id, request_id="del")
        from apps.compute.services.server_reports import server_destroyed
        server_destroyed(instance_id=instance.id, host=instance.host, request_id="del")
    instance = reload(instance)
    resource.refresh_from_db()
    assert instance.deleted and resource.ended_at == instance.terminated_at


def test_never_launched_instance_is_not_recorded(env: Env, django_capture_on_commit_callbacks: Any) -> None:
    instance = env.boot()
    with django_capture_on_commit_callbacks(execute=True):
        server_delete(actor=env.cloud.member_actor, server_id=instance.id, request_id="del")
    assert not Resource.objects.filter(original_resource_id=instance.id).exists()


def test_volume_and_snapshot_through_volumes(cloud: Any, django_capture_on_commit_callbacks: Any) -> None:
    storage_backend()
    actor = cloud.member_actor
    with django_capture_on_commit_callbacks(execute=True):
        volume = volume_services.volume_create(actor=actor, size=2, name="data")
    assert not Resource.objects.exists()  # creating: not yet a volume that exists
    with django_capture_on_commit_callbacks(execute=True):
        volume_services.volume_created(volume_id=volume.id)
    resource = Resource.objects.get(original_resource_id=volume.id)
    assert resource.type_id == "volume" and resource.attributes["size"] == 2
    assert resource.attributes["status"] == "available" and samples(resource, "volume.size")[-1][1] == 2.0
    with django_capture_on_commit_callbacks(execute=True):
        volume_services.volume_extend(actor=actor, volume_id=volume.id, new_size=3)
        volume_services.volume_extended(volume_id=volume.id, size_gb=3)
    resource.refresh_from_db()
    assert resource.attributes["size"] == 3 and ResourceRevision.objects.filter(resource=resource).count() == 1
    with django_capture_on_commit_callbacks(execute=True):  # attached, then detached: status revisions
        volume_services.volume_attach_record(actor=actor, volume_id=volume.id, instance_uuid=None, host_name="h1",
                                             mountpoint="/dev/vdb")
    resource.refresh_from_db()
    assert resource.attributes["status"] == "in-use"
    with django_capture_on_commit_callbacks(execute=True):
        volume_services.volume_detach_record(actor=actor, volume_id=volume.id)
    resource.refresh_from_db()
    assert resource.attributes["status"] == "available"
    assert [(r["size"], r["status"]) for r in ResourceRevision.objects.filter(resource=resource)
            .order_by("revision_start").values_list("attributes", flat=True)] == [
        (2, "available"), (3, "available"), (3, "in-use")]
    with django_capture_on_commit_callbacks(execute=True):
        snap = volume_services.snapshot_create(actor=actor, volume_id=volume.id, name="s")
        volume_services.snapshot_created(snapshot_id=snap.id)
    snapshot = Resource.objects.get(original_resource_id=snap.id)
    assert snapshot.type_id == "snapshot" and snapshot.attributes["volume_id"] == volume.id
    assert samples(snapshot, "snapshot.size")[-1][1] == 3.0
    with django_capture_on_commit_callbacks(execute=True):
        volume_services.volume_delete(actor=actor, volume_id=volume.id, cascade=True)
        volume_services.volume_deleted(volume_id=volume.id)
    resource.refresh_from_db()
    snapshot.refresh_from_db()
    assert resource.ended_at is not None and snapshot.ended_at is not None


def test_floating_ip_and_router_through_networks(cloud: Any, django_capture_on_commit_callbacks: Any) -> None:
    actor = cloud.member_actor
    with django_capture_on_commit_callbacks(execute=True):
        fip = network_services.floatingip_create(actor=actor, floating_network_id=cloud.public_id)
        router = network_services.router_create(actor=actor, name="r")
    fip_id, router_id = fip.id, router.id
    ip = Resource.objects.get(original_resource_id=fip_id)
    assert ip.type_id == "floatingip" and ip.attributes["floating_ip_address"] == fip.floating_ip_address
    assert samples(ip, "ip.floating")[-1][1] == 1.0
    assert samples(Resource.objects.get(original_resource_id=router_id), "router")[-1][1] == 1.0
    with django_capture_on_commit_callbacks(execute=True):
        network_services.floatingip_delete(actor=actor, floatingip_id=fip_id)
        network_services.router_delete(actor=actor, router_id=router_id)
    assert set(Resource.objects.filter(ended_at__isnull=False).values_list("original_resource_id", flat=True)) \
        == {fip_id, router_id}


def test_object_accounts_sampled_by_the_beat(cloud: Any, django_capture_on_commit_callbacks: Any) -> None:
    from apps.objects.models import Container

    project = cloud.demo_project.id
    container = Container.objects.create(project_id=project, name="c", base_count=3, base_bytes=3000)
    assert object_services.objects_usage_record(at=T0) == 1
    account = Resource.objects.get(type_id="swift_account")
    assert account.project_id == project and account.started_at == T0
    assert {m: samples(account, m)[-1][1] for m in ("storage.objects.size", "storage.objects",
                                                     "storage.objects.containers")} == {
        "storage.objects.size": 3000.0, "storage.objects": 3.0, "storage.objects.containers": 1.0}
    object_services.objects_usage_record(at=T0 + dt.timedelta(hours=1))  # unchanged: samples, no revision
    assert not ResourceRevision.objects.exists()
    container.delete()
    object_services.objects_usage_record(at=T0 + dt.timedelta(hours=2))  # gone: zeros, one revision
    account.refresh_from_db()
    assert account.attributes["bytes"] == 0 and ResourceRevision.objects.get().attributes["bytes"] == 3000
    assert [v for _, v in samples(account, "storage.objects.size")] == [3000.0, 3000.0, 0.0]


def test_a_deleted_seeded_type_is_seeded_again(db: None, django_capture_on_commit_callbacks: Any) -> None:
    """An admin may delete a resource type (or a database be flushed): the records still land."""
    ResourceType.objects.filter(name="router").delete()
    with django_capture_on_commit_callbacks(execute=True):
        services.lifecycle_record(kind="router", resource_id="r1", project_id="p1", user_id="", attributes={},
                                  event="create")
    assert Resource.objects.get(original_resource_id="r1").type_id == "router"


@pytest.mark.django_db(transaction=True)
def test_a_launch_recorded_while_a_pollster_round_makes_the_resource_lands() -> None:
    """A pollster round (its own transaction) makes the instance's resource from its first reading while
    the launch is recorded: the launch's INSERT waits for the round's commit and clashes with its row.
    The launch is applied again on the row it finds: the instance's flavor and its launch time, so its
    usage counts from the launch (it was lost, and the project's usage short by that instance)."""
    import threading
    import time

    from django.db import connection

    from apps.telemetry.services import lifecycle
    from apps.telemetry.services.policies import archive_policy_defaults_ensure
    from apps.telemetry.services.resources import resource_uuid
    from apps.telemetry.services.samples import _resource

    archive_policy_defaults_ensure()  # (a transactional test's database may have been flushed)
    uuid = "0b7e2f4e-1c55-4a8e-9a61-5e0d2c3b4a10"
    made, release = threading.Event(), threading.Event()

    def pollster_round() -> None:
        try:
            with transaction.atomic():
                _resource("instance", uuid, "p1", "u1", {"host": "node1", "display_name": "vm"}, {},
                          T0 + dt.timedelta(minutes=5))
                made.set()
                release.wait(10)
        finally:
            connection.close()

    poller = threading.Thread(target=pollster_round)
    poller.start()
    assert made.wait(10)
    launch = lifecycle.Record(kind="instance", resource_id=uuid, project_id="p1", user_id="u1", event="create",
                              at=T0, attributes={"vcpus": 2, "memory_mb": 512, "root_gb": 1, "ephemeral_gb": 0,
                                                 "flavor_name": "m1.small", "display_name": "vm"})

    def record_launch() -> None:
        try:
            lifecycle._apply_quietly([launch])
        finally:
            connection.close()

    recorder = threading.Thread(target=record_launch)
    recorder.start()
    time.sleep(0.5)  # the launch's INSERT now waits on the round's uncommitted row
    release.set()
    poller.join(10)
    recorder.join(20)
    resource = Resource.objects.get(id=resource_uuid(uuid, project_id="p1"))
    assert resource.started_at == T0 and resource.attributes["vcpus"] == 2
    assert samples(resource, "vcpus") == [(T0, 2.0)]
