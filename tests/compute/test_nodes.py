"""Node services and selectors: registration, heartbeats, up/down, enable/disable, usage per project."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from apps.compute.api import inputs
from apps.compute.models import ComputeNode, Instance
from apps.compute.selectors import nodes as node_selectors
from apps.compute.services import nodes as node_services
from apps.core.errors import BadRequest, Forbidden, NotFound
from tests.api_client import SeededCloud


def register(host: str = "compute1", **kw: Any) -> ComputeNode:
    values: dict[str, Any] = {
        "hypervisor_hostname": host, "hypervisor_type": "test", "hypervisor_version": 2,
        "libvirt_uri": f"test:///tmp/{host}.xml", "host_ip": "127.0.0.1", "vcpus": 8, "memory_mb": 16384,
        "local_gb": 200, "cpu_info": {"arch": "amd64", "model": "x86_64"}}
    values.update(kw)
    return node_services.compute_node_register(host=host, **values)


@pytest.mark.django_db
def test_register_refresh_keeps_claims_and_admin_status(settings: Any) -> None:
    settings.STRATUS_CPU_ALLOCATION_RATIO = 4.0
    node = register()
    assert node.cpu_allocation_ratio == 4.0 and node.ram_allocation_ratio == 1.5
    assert node.cpu_info["arch"] == "x86_64" and node.availability_zone == "nova"
    assert node_selectors.node_is_up(node)
    ComputeNode.objects.filter(pk=node.pk).update(vcpus_used=3, enabled=False, disabled_reason="maint")
    again = register(vcpus=16)
    assert again.pk == node.pk and again.uuid == node.uuid
    assert (again.vcpus, again.vcpus_used, again.enabled, again.disabled_reason) == (16, 3, False, "maint")
    with pytest.raises(BadRequest):
        register("bad", vcpus=-1)


@pytest.mark.django_db
def test_heartbeat_and_down_time(settings: Any) -> None:
    settings.STRATUS_COMPUTE_SERVICE_DOWN_TIME = 30
    node = register()
    ComputeNode.objects.filter(pk=node.pk).update(last_heartbeat=timezone.now() - timedelta(seconds=31))
    node.refresh_from_db()
    assert not node_selectors.node_is_up(node)
    node_services.compute_node_heartbeat(host="compute1", running_vms=2)
    node.refresh_from_db()
    assert node_selectors.node_is_up(node) and node.running_vms == 2
    with pytest.raises(NotFound):
        node_services.compute_node_heartbeat(host="nowhere")
    assert node_selectors.node_get_by_host(host="compute1").pk == node.pk


@pytest.mark.django_db
def test_service_update_policy_and_validation(cloud: SeededCloud) -> None:
    node = register()
    with pytest.raises(Forbidden):
        node_services.compute_service_update(actor=cloud.member_actor, node_id=node.id, status="disabled")
    node = node_services.compute_service_update(actor=cloud.admin_actor, node_id="compute1", status="disabled",
                                                disabled_reason="maintenance")
    assert (node.enabled, node.disabled_reason) == (False, "maintenance")
    node = node_services.compute_service_update(actor=cloud.admin_actor, node_id=node.uuid, status="enabled")
    assert (node.enabled, node.disabled_reason) == (True, "")
    node = node_services.compute_service_update(actor=cloud.admin_actor, node_id=str(node.id), forced_down=True)
    assert node.forced_down and not node_selectors.node_is_up(node)
    for bad in ({"status": "broken"}, {"status": "enabled", "disabled_reason": "x"}):
        with pytest.raises(BadRequest):
            node_services.compute_service_update(actor=cloud.admin_actor, node_id=node.id, **bad)
    for body in ({"status": "broken"}, {"forced_down": "yes"}, {"status": "disabled", "disabled_reason": "x" * 256},
                 {"status": "disabled", "disabled_reason": " "}):
        with pytest.raises(BadRequest):
            inputs.service_update(body)  # the API's parser refuses it before any service runs
    with pytest.raises(NotFound):
        node_services.compute_service_update(actor=cloud.admin_actor, node_id=99999, status="enabled")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def instance(project: Any, name: str, launched: datetime | None, ended: datetime | None = None, **kw: Any) -> Instance:
    values: dict[str, Any] = {"vcpus": 2, "memory_mb": 1024, "root_gb": 10, "ephemeral_gb": 5, "flavor_ref": "1",
                              "flavor": {"original_name": "m1.small"}, "vm_state": "active"}
    values.update(kw)
    return Instance.objects.create(project=project, name=name, launched_at=launched, terminated_at=ended,
                                   deleted=ended is not None, deleted_at=ended, **values)


@pytest.mark.django_db
def test_project_usage_clips_to_the_period(cloud: SeededCloud) -> None:
    start, stop = utc(2026, 1, 1), utc(2026, 1, 2)
    demo, other = cloud.demo_project, cloud.other_project
    instance(demo, "all-day", utc(2025, 12, 31), None)                   # 24 h
    instance(demo, "ended", utc(2026, 1, 1, 6), utc(2026, 1, 1, 12))     # 6 h
    instance(demo, "before", utc(2025, 12, 1), utc(2025, 12, 2))         # not counted
    instance(demo, "after", utc(2026, 1, 3))                             # not counted
    instance(demo, "never-launched", None, vm_state="error")             # not counted
    instance(other, "theirs", utc(2026, 1, 1, 12), vcpus=1, memory_mb=512, root_gb=1, ephemeral_gb=0)  # 12 h
    usages = {u.tenant_id: u for u in node_selectors.project_usage(actor=cloud.admin_actor, start=start, stop=stop,
                                                                     detailed=True)}
    assert set(usages) == {demo.id, other.id}
    mine = usages[demo.id]
    assert mine.total_hours == pytest.approx(30)
    assert mine.total_vcpus_usage == pytest.approx(60)
    assert mine.total_memory_mb_usage == pytest.approx(30 * 1024)
    assert mine.total_local_gb_usage == pytest.approx(30 * 15)
    servers = {s.name: s for s in mine.server_usages}
    assert set(servers) == {"all-day", "ended"}
    assert servers["ended"].state == "terminated" and servers["ended"].uptime == 6 * 3600
    assert servers["all-day"].state == "active" and servers["all-day"].ended_at is None
    assert servers["all-day"].flavor == "m1.small" and servers["all-day"].local_gb == 15
    assert usages[other.id].total_hours == pytest.approx(12)
    # a member sees its own project only; every project is for admins
    own = node_selectors.project_usage(actor=cloud.member_actor, start=start, stop=stop, project_id=demo.id)
    assert [u.tenant_id for u in own] == [demo.id] and own[0].server_usages == []
    with pytest.raises(NotFound):
        node_selectors.project_usage(actor=cloud.member_actor, start=start, stop=stop, project_id=other.id)
    with pytest.raises(Forbidden):
        node_selectors.project_usage(actor=cloud.member_actor, start=start, stop=stop)
    with pytest.raises(BadRequest):
        node_selectors.project_usage(actor=cloud.admin_actor, start=stop, stop=start)
    # a running instance is counted until now, not until the end of a period that lies in the future
    now = timezone.now()
    ahead = node_selectors.project_usage(actor=cloud.admin_actor, start=now - timedelta(hours=1),
                                         stop=now + timedelta(days=1), project_id=demo.id, now=now)
    assert ahead[0].total_hours == pytest.approx(2)  # "all-day" and "after" run now
    empty = node_selectors.project_usage(actor=cloud.admin_actor, start=utc(2020, 1, 1), stop=utc(2020, 1, 2),
                                         project_id=other.id)
    assert empty[0].total_hours == 0 and empty[0].server_usages == []
