"""Server services: create (validation, quota, scheduling, ports, multi-create), the node reports
(spawned, spawn failed with reschedule, task done/failed, destroyed, power sync, build timeouts),
delete, the state machine's 409s."""
from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from apps.compute import states
from apps.compute.models import ComputeNode, Instance, InstanceAction, InstanceFault
from apps.compute.services import NovaQuotaExceeded
from apps.compute.services.server_lifecycle import (
    server_delete,
    server_lock,
    server_power,
    server_reboot,
    server_unlock,
)
from apps.compute.services.server_rebuild_resize import (
    server_rebuild,
    server_resize,
    server_resize_confirm,
    server_resize_revert,
)
from apps.compute.services.server_reports import (
    server_build_timeouts,
    server_destroyed,
    server_power_states_report,
    server_spawn_failed,
    server_spawned,
    server_task_done,
    server_task_failed,
)
from apps.compute.services.server_snapshots import server_image_create
from apps.core.errors import BadRequest, Conflict, Forbidden, NotFound
from apps.identity import selectors as identity_selectors
from apps.identity import services as identity_services
from apps.identity.models import Project
from apps.networks.models import Port
from tests.compute.test_servers_support import Env, env_fixture, image_dir_fixture, make_node, reload  # noqa: F401
from tests.images.disks import qcow2_bytes

pytestmark = pytest.mark.django_db(transaction=False)


def usage(project_id: str) -> dict[str, int]:
    rows = identity_selectors.quota_usage(project=Project(id=project_id))
    return {k: rows[k]["in_use"] for k in ("instances", "cores", "ram", "port")}


def used(node: ComputeNode) -> tuple[int, int, int]:
    node.refresh_from_db()
    return node.vcpus_used, node.memory_mb_used, node.local_gb_used


def spawned(instance: Instance) -> Instance:
    server_spawned(instance_id=instance.id, host=instance.host, power_state=states.RUNNING)
    return reload(instance)


# ---- create --------------------------------------------------------------------------------------

def test_create_schedules_claims_makes_port_and_sends_spawn(env: Env, django_capture_on_commit_callbacks: Any
                                                            ) -> None:
    project = env.cloud.demo_project.id
    with django_capture_on_commit_callbacks() as callbacks:
        instance = env.boot(name="web", metadata={"a": "b"})
    instance = reload(instance)
    assert (instance.vm_state, instance.task_state) == (states.BUILDING, states.SPAWNING)
    assert instance.host in ("node-a", "node-b") and instance.attempts == 1
    node = ComputeNode.objects.get(host=instance.host)
    assert used(node) == (1, 512, 1)
    ports = list(Port.objects.filter(device_id=instance.id))
    assert len(ports) == 1
    assert ports[0].binding_host_id == instance.host and ports[0].device_owner == "compute:nova"
    assert ports[0].fixed_ips.count() == 1
    assert usage(project)["instances"] == 1 and usage(project)["cores"] == 1 and usage(project)["ram"] == 512
    action = InstanceAction.objects.get(instance=instance)
    assert action.action == "create" and action.events.get().event == "compute__do_build_and_run_instance"
    assert callbacks  # spawn (and the events) are sent on commit only
    assert states.status(instance.vm_state, instance.task_state) == "BUILD"


def test_spawned_makes_it_active(env: Env) -> None:
    instance = spawned(env.boot())
    assert (instance.vm_state, instance.task_state, instance.power_state) == ("active", None, 1)
    assert instance.launched_at is not None
    event = InstanceAction.objects.get(instance=instance).events.get()
    assert event.result == "Success" and event.finish_time is not None


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"image_ref": "00000000-0000-0000-0000-000000000000"}, "could not be found"),
    ({"flavor_ref": "nope"}, "Flavor nope could not be found"),
    ({"key_name": "missing"}, "Invalid key_name"),
    ({"security_groups": ["nope"]}, "Security group nope not found"),
    ({"networks": [{"uuid": "00000000-0000-0000-0000-000000000000"}]}, "could not be found"),
    ({"min_count": 3, "max_count": 2}, "min_count"),
    ({"availability_zone": "mars"}, "availability zone"),
])
def test_bad_input_changes_nothing(env: Env, kwargs: dict, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        env.boot(**kwargs)
    assert not Instance.objects.exists()
    assert usage(env.cloud.demo_project.id)["instances"] == 0
    assert sum(used(n)[0] for n in env.nodes) == 0


def test_networks_auto_none_and_ambiguous(env: Env) -> None:
    from apps.networks import services as network_services

    auto = env.boot(networks="auto")
    assert Port.objects.filter(device_id=auto.id, network=env.network).count() == 1
    none = env.boot(networks="none")
    assert not Port.objects.filter(device_id=none.id).exists()
    network_services.network_create(actor=env.cloud.member_actor, name="second")
    with pytest.raises(Conflict, match="Multiple possible networks"):
        env.boot(networks="auto")
    with pytest.raises(BadRequest, match="automatically allocate"):
        env.boot(actor=env.cloud.other_actor, networks="auto")


def test_given_port_is_bound_and_kept_on_delete(env: Env) -> None:
    from apps.networks import services as network_services

    port = network_services.port_create(actor=env.cloud.member_actor, network_id=env.network.id)
    instance = env.boot(networks=[{"port": port.id}])
    port.refresh_from_db()
    assert port.device_id == instance.id and port.binding_host_id == instance.host
    ComputeNode.objects.update(last_heartbeat=timezone.now() - timezone.timedelta(hours=1))
    server_delete(actor=env.cloud.member_actor, server_id=instance.id, request_id="req-del")
    port.refresh_from_db()
    assert port.device_id == "" and port.binding_host_id == ""
    ComputeNode.objects.update(last_heartbeat=timezone.now())
    other = network_services.port_create(actor=env.cloud.member_actor, network_id=env.network.id)
    env.boot(networks=[{"port": other.id}])
    with pytest.raises(Conflict, match="still in use"):
        env.boot(networks=[{"port": other.id}])


def test_quota_exceeded_is_403_and_exact(env: Env) -> None:
    admin = env.cloud.admin_actor
    project = env.cloud.demo_project.id
    identity_services.quota_set(actor=admin, project_id=project, limits={"instances": 2})
    env.boot()
    env.boot()
    with pytest.raises(NovaQuotaExceeded) as err:
        env.boot()
    assert err.value.status == 403 and "Quota exceeded for instances" in err.value.message
    assert usage(project)["instances"] == 2
    assert Instance.objects.filter(project_id=project).count() == 2


def test_multi_create_names_reservation_and_quota_fit(env: Env) -> None:
    identity_services.quota_set(actor=env.cloud.admin_actor, project_id=env.cloud.demo_project.id,
                                limits={"instances": 3})
    made = env.boot_many(name="batch", min_count=2, max_count=5)
    assert [i.name for i in made] == ["batch-1", "batch-2", "batch-3"]
    assert len({i.reservation_id for i in made}) == 1 and made[0].reservation_id.startswith("r-")
    assert [i.launch_index for i in made] == [0, 1, 2]
    with pytest.raises(NovaQuotaExceeded):
        env.boot_many(name="more", min_count=1, max_count=2)


def test_no_valid_host_goes_error_with_fault_and_keeps_the_call(env: Env) -> None:
    ComputeNode.objects.update(last_heartbeat=timezone.now() - timezone.timedelta(hours=1))
    instance = reload(env.boot())
    assert instance.vm_state == "error" and instance.task_state is None and instance.node is None
    fault = InstanceFault.objects.get(instance=instance)
    assert fault.message.startswith("No valid host was found")
    assert not Port.objects.filter(device_id=instance.id).exists()
    assert usage(env.cloud.demo_project.id)["instances"] == 1  # an ERROR server still counts, as in Nova


def test_anti_affinity_group_spreads_then_fails(env: Env) -> None:
    from apps.compute import services as compute_services

    group = compute_services.server_group_create(actor=env.cloud.member_actor, name="g", policy="anti-affinity")
    one = reload(env.boot(group_id=group.id))
    two = reload(env.boot(group_id=group.id))
    three = reload(env.boot(group_id=group.id))
    assert {one.host, two.host} == {"node-a", "node-b"}
    assert three.vm_state == "error"


# ---- node reports ----------------------------------------------------------------------------------

def test_spawn_failure_reschedules_excluding_tried_hosts_then_errors(env: Env, settings: Any) -> None:
    settings.STRATUS_SCHEDULER_MAX_ATTEMPTS = 3
    make_node("node-c")
    instance = reload(env.boot())
    first = instance.host
    server_spawn_failed(instance_id=instance.id, host=first, message="disk full", details="trace")
    instance = reload(instance)
    assert instance.vm_state == "building" and instance.host != first and instance.attempts == 2
    assert used(ComputeNode.objects.get(host=first)) == (0, 0, 0)
    assert Port.objects.get(device_id=instance.id).binding_host_id == instance.host
    second = instance.host
    server_spawn_failed(instance_id=instance.id, host=second, message="boom")
    instance = reload(instance)
    third = instance.host
    assert third not in (first, second) and instance.attempts == 3
    server_spawn_failed(instance_id=instance.id, host=third, message="last")
    instance = reload(instance)
    assert instance.vm_state == "error" and instance.node is None
    assert "Exceeded maximum number of retries" in InstanceFault.objects.get(instance=instance).message
    assert all(used(n) == (0, 0, 0) for n in ComputeNode.objects.all())
    # a late duplicate report changes nothing (claims released exactly once)
    server_spawn_failed(instance_id=instance.id, host=third, message="late")
    assert InstanceFault.objects.filter(instance=instance).count() == 1
    events = InstanceAction.objects.get(instance=instance).events.all()
    assert [e.result for e in events] == ["Error", "Error", "Error"]


def test_spawn_failure_without_another_host_is_no_valid_host(env: Env) -> None:
    instance = reload(env.boot())
    ComputeNode.objects.exclude(host=instance.host).delete()
    server_spawn_failed(instance_id=instance.id, host=instance.host, message="nope")
    instance = reload(instance)
    assert instance.vm_state == "error"
    assert InstanceFault.objects.get(instance=instance).message.startswith("No valid host was found")


def test_power_actions_follow_the_state_machine(env: Env) -> None:
    actor = env.cloud.member_actor
    instance = spawned(env.boot())
    with pytest.raises(Conflict, match=r"Cannot 'start' instance .* while it is in vm_state active"):
        server_power(actor=actor, server_id=instance.id, action="start", request_id="r1")
    server_power(actor=actor, server_id=instance.id, action="stop", request_id="r2")
    instance = reload(instance)
    assert instance.task_state == "powering-off"
    with pytest.raises(Conflict, match="task_state powering-off"):
        server_reboot(actor=actor, server_id=instance.id, type="HARD", request_id="r3")
    server_task_done(instance_id=instance.id, host=instance.host, task="powering-off", power_state=4,
                     request_id="r2")
    instance = reload(instance)
    assert (instance.vm_state, instance.task_state, instance.power_state) == ("stopped", None, 4)
    with pytest.raises(Conflict, match=r"Cannot 'reboot' instance .* while it is in vm_state stopped"):
        server_reboot(actor=actor, server_id=instance.id, type="SOFT", request_id="r4")
    server_reboot(actor=actor, server_id=instance.id, type="HARD", request_id="r5")
    assert states.status(reload(instance).vm_state, reload(instance).task_state) == "HARD_REBOOT"
    server_task_done(instance_id=instance.id, host=instance.host, task="rebooting_hard", power_state=1,
                     request_id="r5")
    assert reload(instance).vm_state == "active"
    records = list(InstanceAction.objects.filter(instance=instance).order_by("start_time", "id")
                   .values_list("action", flat=True))
    assert records == ["create", "stop", "reboot"]


def test_task_failure_records_fault_and_reverts(env: Env) -> None:
    actor = env.cloud.member_actor
    instance = spawned(env.boot())
    server_power(actor=actor, server_id=instance.id, action="pause", request_id="rp")
    server_task_failed(instance_id=instance.id, host=instance.host, message="cannot pause")
    instance = reload(instance)
    assert (instance.vm_state, instance.task_state) == ("active", None)
    assert InstanceFault.objects.get(instance=instance).message == "cannot pause"
    assert InstanceAction.objects.get(instance=instance, action="pause").message == "Error"


def test_lock_blocks_members_not_admins(env: Env) -> None:
    member, admin = env.cloud.member_actor, env.cloud.admin_actor
    instance = spawned(env.boot())
    server_lock(actor=member, server_id=instance.id, request_id="l1")
    with pytest.raises(Conflict, match="is locked"):
        server_power(actor=member, server_id=instance.id, action="stop", request_id="l2")
    with pytest.raises(Conflict, match="is locked"):
        server_delete(actor=member, server_id=instance.id, request_id="l3")
    server_unlock(actor=member, server_id=instance.id, request_id="l4")
    server_lock(actor=admin, server_id=instance.id, request_id="l5")
    assert reload(instance).locked_by == "admin"
    with pytest.raises(Forbidden):
        server_unlock(actor=member, server_id=instance.id, request_id="l6")
    server_power(actor=admin, server_id=instance.id, action="stop", request_id="l7")


def test_reader_and_other_project_cannot_act(env: Env) -> None:
    instance = spawned(env.boot())
    with pytest.raises(Forbidden):
        server_power(actor=env.cloud.reader_actor, server_id=instance.id, action="stop", request_id="x")
    with pytest.raises(NotFound):
        server_power(actor=env.cloud.other_actor, server_id=instance.id, action="stop", request_id="x")
    with pytest.raises(NotFound):
        server_delete(actor=env.cloud.other_actor, server_id=instance.id, request_id="x")


def test_delete_on_live_node_waits_for_the_node(env: Env, django_capture_on_commit_callbacks: Any) -> None:
    project = env.cloud.demo_project.id
    instance = spawned(env.boot())
    node = ComputeNode.objects.get(host=instance.host)
    with django_capture_on_commit_callbacks() as callbacks:
        server_delete(actor=env.cloud.member_actor, server_id=instance.id, request_id="req-d")
    assert callbacks
    instance = reload(instance)
    assert instance.task_state == "deleting" and not instance.deleted
    server_destroyed(instance_id=instance.id, host=instance.host, request_id="req-d")
    server_destroyed(instance_id=instance.id, host=instance.host, request_id="req-d")  # at most once
    instance = reload(instance)
    assert instance.deleted and instance.vm_state == "deleted" and instance.node is None
    assert used(node) == (0, 0, 0)
    assert not Port.objects.filter(device_id=instance.id).exists()
    assert usage(project) == {"instances": 0, "cores": 0, "ram": 0, "port": 0}
    event = InstanceAction.objects.get(instance=instance, action="delete").events.get()
    assert event.result == "Success"


def test_delete_when_node_down_is_immediate(env: Env) -> None:
    instance = spawned(env.boot())
    node = ComputeNode.objects.get(host=instance.host)
    ComputeNode.objects.update(last_heartbeat=timezone.now() - timezone.timedelta(hours=1))
    server_delete(actor=env.cloud.member_actor, server_id=instance.id, request_id="req-d")
    assert reload(instance).deleted and used(node) == (0, 0, 0)
    assert usage(env.cloud.demo_project.id)["instances"] == 0


def test_resize_confirm_and_revert_keep_claims_and_quota_exact(env: Env) -> None:
    actor = env.cloud.member_actor
    project = env.cloud.demo_project.id
    instance = spawned(env.boot())
    node = ComputeNode.objects.get(host=instance.host)
    server_resize(actor=actor, server_id=instance.id, flavor_ref="2", request_id="rz")
    assert used(node) == (2, 512 + 2048, 21)
    assert usage(project)["ram"] == 2048
    server_task_done(instance_id=instance.id, host=instance.host, task="resize_finish", power_state=1,
                     request_id="rz")
    instance = reload(instance)
    assert states.status(instance.vm_state, instance.task_state) == "VERIFY_RESIZE"
    server_resize_revert(actor=actor, server_id=instance.id, request_id="rv")
    server_task_done(instance_id=instance.id, host=instance.host, task="resize_reverting", power_state=1)
    instance = reload(instance)
    assert instance.vm_state == "active" and instance.memory_mb == 512 and instance.new_flavor is None
    assert used(node) == (1, 512, 1) and usage(project)["ram"] == 512
    server_resize(actor=actor, server_id=instance.id, flavor_ref="2", request_id="rz2")
    server_task_done(instance_id=instance.id, host=instance.host, task="resize_finish", power_state=1)
    server_resize_confirm(actor=actor, server_id=instance.id, request_id="cf")
    server_task_done(instance_id=instance.id, host=instance.host, task="resize_confirming", power_state=1)
    instance = reload(instance)
    assert instance.memory_mb == 2048 and instance.flavor_ref == "2" and instance.vm_state == "active"
    assert used(node) == (1, 2048, 20) and usage(project)["ram"] == 2048 and usage(project)["cores"] == 1


def test_power_sync_and_build_timeouts(env: Env, settings: Any) -> None:
    instance = spawned(env.boot())
    server_power_states_report(host=instance.host, states={instance.id: states.SHUTDOWN})
    instance = reload(instance)
    assert (instance.vm_state, instance.power_state) == ("stopped", 4)
    stuck = reload(env.boot())
    Instance.objects.filter(pk=stuck.pk).update(created_at=timezone.now() - timezone.timedelta(hours=1))
    settings.STRATUS_BUILD_TIMEOUT_SECONDS = 600
    assert server_build_timeouts() == 1
    stuck = reload(stuck)
    assert stuck.vm_state == "error" and stuck.node is None
    assert "timed out" in InstanceFault.objects.get(instance=stuck).message


def test_snapshot_makes_a_queued_image_then_stores_it(env: Env) -> None:
    from apps.images.models import Image

    actor = env.cloud.member_actor
    instance = spawned(env.boot())
    image_id = server_image_create(actor=actor, server_id=instance.id, name="snap", metadata={"k": "v"},
                                   request_id="snap")
    image = Image.objects.get(pk=image_id)
    assert image.status == "queued" and image.owner == instance.project_id
    assert image.properties["instance_uuid"] == instance.id and image.properties["image_type"] == "snapshot"
    assert image.properties["base_image_ref"] == env.image.id and image.properties["k"] == "v"
    assert reload(instance).task_state == "image_snapshot"
    # the node sends the bytes through the image API, with the write URL signed for its host and this image
    from django.test import Client

    from apps.compute.selectors.node_specs import server_node_spec

    signed = server_node_spec(instance_id=instance.id, task="snapshot", image_id=image_id)["upload_url"]
    assert signed["path"].startswith(f"/image/v2/node/images/{image_id}/file?purpose=write&node={instance.host}&")
    response = Client().generic("PUT", signed["path"], qcow2_bytes(), content_type="application/octet-stream",
                                HTTP_X_STRATUS_IMAGE_SIGNATURE=signed["signature"])
    assert response.status_code == 204, response.content
    server_task_done(instance_id=instance.id, host=instance.host, task="image_uploading", power_state=1)
    assert Image.objects.get(pk=image_id).status == "active"
    assert reload(instance).task_state is None and reload(instance).vm_state == "active"


def test_rebuild_changes_image_and_name(env: Env) -> None:
    instance = spawned(env.boot())
    result = server_rebuild(actor=env.cloud.member_actor, server_id=instance.id, image_ref=env.image.id, name="renamed",
                            request_id="rb")
    assert result.admin_pass
    instance = reload(instance)
    assert instance.name == "renamed" and states.status(instance.vm_state, instance.task_state) == "REBUILD"
    server_task_done(instance_id=instance.id, host=instance.host, task="rebuild_spawning", power_state=1)
    assert reload(instance).vm_state == "active"


def test_delete_during_build_is_not_undone_by_the_spawn_report(env: Env) -> None:
    instance = reload(env.boot())
    server_delete(actor=env.cloud.member_actor, server_id=instance.id, request_id="req-del")
    server_spawned(instance_id=instance.id, host=instance.host, power_state=states.RUNNING)
    instance = reload(instance)
    assert instance.task_state == "deleting" and instance.vm_state == "building"
    server_destroyed(instance_id=instance.id, host=instance.host, request_id="req-del")
    assert reload(instance).deleted
    assert all(used(n) == (0, 0, 0) for n in ComputeNode.objects.all())
