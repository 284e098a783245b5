"""os-hypervisors, os-services and os-simple-tenant-usage in-process, checked against tempest's strict
2.1 response schemas (loaded from .venv-tempest, where `make test` installs tempest)."""
from __future__ import annotations

import glob
import importlib
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.compute.models import ComputeNode, Instance
from apps.compute.services import nodes as node_services
from tests.api_client import SeededCloud
from tests.compute.helpers import nova_error

ROOT = Path(__file__).resolve().parents[2]


def _tempest_schemas(names: tuple[str, ...]) -> dict[str, Any]:
    sites = glob.glob(str(ROOT / ".venv-tempest/lib/python3*/site-packages"))
    if not sites:
        pytest.skip("tempest is not installed in .venv-tempest (make venv-tempest)")
    sys.path.append(sites[0])
    try:
        base = "tempest.lib.api_schema.response.compute"
        return {name: importlib.import_module(f"{base}.{name}") for name in names}
    finally:
        sys.path.remove(sites[0])


@pytest.fixture(scope="module")
def schemas() -> dict[str, Any]:
    found = _tempest_schemas(("v2_1.hypervisors", "v2_1.services", "v2_1.tenant_usages"))
    return {name.split(".")[1]: module for name, module in found.items()}


def check(response: Any, schema: dict[str, Any]) -> dict:
    assert response.status_code in schema["status_code"], (response.status_code, response.content[:500])
    body = response.json()
    jsonschema.Draft4Validator(schema["response_body"], format_checker=jsonschema.FormatChecker()).validate(body)
    return body


def node(host: str, **kw: Any) -> ComputeNode:
    values: dict[str, Any] = {
        "hypervisor_hostname": f"{host}.example", "hypervisor_type": "test", "hypervisor_version": 2,
        "libvirt_uri": f"test:///tmp/{host}.xml", "host_ip": "192.0.2.10", "vcpus": 8, "memory_mb": 16384,
        "local_gb": 200, "cpu_info": {"arch": "x86_64", "model": "x86_64"}}
    values.update(kw)
    return node_services.compute_node_register(host=host, **values)


def server_on(n: ComputeNode, project: Any, name: str, **kw: Any) -> Instance:
    values: dict[str, Any] = {"vcpus": 1, "memory_mb": 512, "root_gb": 1, "flavor_ref": "1", "vm_state": "active",
                              "launched_at": timezone.now(), **kw}
    return Instance.objects.create(project=project, name=name, node=n, host=n.host, **values)


@pytest.mark.django_db
def test_hypervisors(cloud: SeededCloud, schemas: dict[str, Any], settings: Any) -> None:
    h = schemas["hypervisors"]
    n1, n2 = node("compute1"), node("compute2")
    ComputeNode.objects.filter(pk=n1.pk).update(vcpus_used=2, memory_mb_used=1024, local_gb_used=10, running_vms=1)
    ComputeNode.objects.filter(pk=n2.pk).update(last_heartbeat=timezone.now() - timedelta(hours=1), enabled=False,
                                                disabled_reason="maintenance")
    server_on(n1, cloud.demo_project, "vm-a")
    server_on(n1, cloud.demo_project, "gone", deleted=True)

    brief = cloud.admin.get("os-hypervisors").json()["hypervisors"]
    assert brief == [{"id": n1.id, "hypervisor_hostname": "compute1.example", "state": "up", "status": "enabled"},
                     {"id": n2.id, "hypervisor_hostname": "compute2.example", "state": "down",
                      "status": "disabled"}]
    detail = check(cloud.admin.get("os-hypervisors/detail"), h.list_hypervisors_detail)["hypervisors"]
    first = detail[0]
    assert (first["vcpus"], first["vcpus_used"], first["memory_mb"], first["memory_mb_used"]) == (8, 2, 16384, 1024)
    assert (first["free_ram_mb"], first["free_disk_gb"], first["running_vms"]) == (15360, 190, 1)
    assert first["service"] == {"host": "compute1", "id": n1.id, "disabled_reason": None}
    assert first["cpu_info"].startswith("{") and first["hypervisor_type"] == "test"
    assert detail[1]["service"]["disabled_reason"] == "maintenance"

    shown = check(cloud.admin.get(f"os-hypervisors/{n1.id}"), h.get_hypervisor)["hypervisor"]
    assert shown == first
    stats = check(cloud.admin.get("os-hypervisors/statistics"), h.get_hypervisor_statistics)["hypervisor_statistics"]
    assert (stats["count"], stats["vcpus"], stats["vcpus_used"], stats["memory_mb"]) == (2, 16, 2, 32768)
    assert (stats["free_disk_gb"], stats["running_vms"]) == (390, 1)

    found = check(cloud.admin.get("os-hypervisors/compute1/search"), h.list_search_hypervisors)["hypervisors"]
    assert [x["id"] for x in found] == [n1.id]
    both = check(cloud.admin.get("os-hypervisors/example/search"), h.list_search_hypervisors)["hypervisors"]
    assert len(both) == 2
    servers = check(cloud.admin.get("os-hypervisors/compute/servers"), h.get_hypervisors_servers)["hypervisors"]
    assert [s["name"] for s in servers[0]["servers"]] == ["vm-a"] and "servers" not in servers[1]
    uptime = check(cloud.admin.get(f"os-hypervisors/{n1.id}/uptime"), h.get_hypervisor_uptime)["hypervisor"]
    assert " up " in uptime["uptime"]

    nova_error(cloud.admin.get("os-hypervisors/999999"), 404, "itemNotFound")
    nova_error(cloud.admin.get("os-hypervisors/nothing-like-this/search"), 404, "itemNotFound")
    nova_error(cloud.admin.get("os-hypervisors/nothing-like-this/servers"), 404, "itemNotFound")
    for path in ("os-hypervisors", "os-hypervisors/detail", f"os-hypervisors/{n1.id}", "os-hypervisors/statistics",
                 "os-hypervisors/compute1/search", "os-hypervisors/compute1/servers"):
        nova_error(cloud.member.get(path), 403, "forbidden")
        nova_error(cloud.reader.get(path), 403, "forbidden")
    assert cloud.anonymous.get("os-hypervisors").status_code == 401


@pytest.mark.django_db
def test_hypervisor_lists_cost_constant_queries(cloud: SeededCloud) -> None:
    def count(path: str) -> int:
        cloud.admin.get(path)  # warm the token cache
        with CaptureQueriesContext(connection) as ctx:
            assert cloud.admin.get(path).status_code == 200
        return len(ctx.captured_queries)

    n = node("compute0")
    server_on(n, cloud.demo_project, "x")
    costs = [count(p) for p in ("os-hypervisors/detail", "os-services", "os-hypervisors/compute/servers",
                                "os-simple-tenant-usage?detailed=1&start=2000-01-01T00:00:00")]
    for i in range(1, 8):
        extra = node(f"compute{i}")
        server_on(extra, cloud.demo_project, f"x{i}")
        server_on(extra, cloud.other_project, f"y{i}")
    assert [count(p) for p in ("os-hypervisors/detail", "os-services", "os-hypervisors/compute/servers",
                               "os-simple-tenant-usage?detailed=1&start=2000-01-01T00:00:00")] == costs


@pytest.mark.django_db
def test_services(cloud: SeededCloud, schemas: dict[str, Any], settings: Any) -> None:
    s = schemas["services"]
    n1, n2 = node("compute1"), node("compute2", availability_zone="az2")
    ComputeNode.objects.filter(pk=n2.pk).update(last_heartbeat=timezone.now() - timedelta(hours=1))
    listed = check(cloud.admin.get("os-services"), s.list_services)["services"]
    assert [(x["id"], x["host"], x["binary"], x["zone"], x["status"], x["state"]) for x in listed] == [
        (n1.id, "compute1", "nova-compute", "nova", "enabled", "up"),
        (n2.id, "compute2", "nova-compute", "az2", "enabled", "down")]
    assert listed[0]["updated_at"] and listed[0]["disabled_reason"] is None and "forced_down" not in listed[0]
    assert [x["host"] for x in cloud.admin.get("os-services?host=compute2").json()["services"]] == ["compute2"]
    assert cloud.admin.get("os-services?binary=nova-scheduler").json()["services"] == []

    body = {"host": "compute1", "binary": "nova-compute"}
    out = check(cloud.admin.put("os-services/disable", body), s.enable_disable_service)["service"]
    assert out == {"host": "compute1", "binary": "nova-compute", "status": "disabled"}
    assert not ComputeNode.objects.get(pk=n1.pk).enabled
    out = cloud.admin.put("os-services/disable-log-reason", {**body, "disabled_reason": "disk swap"}).json()
    assert out["service"] == {**body, "status": "disabled", "disabled_reason": "disk swap"}
    assert cloud.admin.get("os-services").json()["services"][0]["disabled_reason"] == "disk swap"
    out = check(cloud.admin.put("os-services/enable", body), s.enable_disable_service)["service"]
    assert out["status"] == "enabled" and ComputeNode.objects.get(pk=n1.pk).disabled_reason == ""

    nova_error(cloud.admin.put("os-services/enable", {"host": "nowhere", "binary": "nova-compute"}), 404)
    nova_error(cloud.admin.put("os-services/enable", {"host": "compute1"}), 400, "badRequest")
    nova_error(cloud.admin.put("os-services/disable-log-reason", body), 400, "badRequest")
    nova_error(cloud.admin.put("os-services/force-down", {**body, "forced_down": True}), 404)  # 2.11+
    nova_error(cloud.member.get("os-services"), 403, "forbidden")
    nova_error(cloud.member.put("os-services/disable", body), 403, "forbidden")
    assert ComputeNode.objects.get(pk=n1.pk).enabled

    # delete: refused while it hosts instances, then gone
    vm = server_on(n2, cloud.demo_project, "busy")
    nova_error(cloud.member.delete(f"os-services/{n2.id}"), 403, "forbidden")
    nova_error(cloud.admin.delete(f"os-services/{n2.id}"), 409, "conflictingRequest")
    Instance.objects.filter(pk=vm.pk).update(deleted=True, node=None)
    assert cloud.admin.delete(f"os-services/{n2.id}").status_code == 204
    assert [x["host"] for x in cloud.admin.get("os-services").json()["services"]] == ["compute1"]
    nova_error(cloud.admin.delete(f"os-services/{n2.id}"), 404, "itemNotFound")


@pytest.mark.django_db
def test_simple_tenant_usage(cloud: SeededCloud, schemas: dict[str, Any]) -> None:
    t = schemas["tenant_usages"]
    n = node("compute1")
    now = timezone.now()
    server_on(n, cloud.demo_project, "mine", launched_at=now - timedelta(hours=3),
              flavor={"original_name": "m1.tiny"})
    server_on(n, cloud.other_project, "theirs", launched_at=now - timedelta(hours=5),
              terminated_at=now - timedelta(hours=1), deleted_at=now - timedelta(hours=1), deleted=True)
    start = (now - timedelta(days=1)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    end = (now + timedelta(minutes=1)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    q = f"start={start}&end={end}"

    usages = check(cloud.admin.get(f"os-simple-tenant-usage?{q}"), t.list_tenant_usage)["tenant_usages"]
    assert {u["tenant_id"] for u in usages} == {cloud.demo_project.id, cloud.other_project.id}
    assert all("server_usages" not in u for u in usages)
    detailed = check(cloud.admin.get(f"os-simple-tenant-usage?{q}&detailed=1"), t.list_tenant_usage)
    as_sdk = check(cloud.admin.get(f"os-simple-tenant-usage?{q}&detailed=True"), t.list_tenant_usage)
    assert sorted(s["instance_id"] for u in as_sdk["tenant_usages"] for s in u["server_usages"]) == \
        sorted(s["instance_id"] for u in detailed["tenant_usages"] for s in u["server_usages"])
    by_project = {u["tenant_id"]: u for u in detailed["tenant_usages"]}
    theirs = by_project[cloud.other_project.id]
    assert theirs["total_hours"] == pytest.approx(4, abs=0.01)
    assert theirs["server_usages"][0]["state"] == "terminated" and theirs["server_usages"][0]["ended_at"]
    assert theirs["server_usages"][0]["uptime"] == 4 * 3600

    mine = check(cloud.member.get(f"os-simple-tenant-usage/{cloud.demo_project.id}?{q}"), t.get_tenant_usage)
    usage = mine["tenant_usage"]
    assert usage["total_hours"] == pytest.approx(3, abs=0.02)
    assert usage["total_vcpus_usage"] == pytest.approx(3, abs=0.02)
    assert usage["total_memory_mb_usage"] == pytest.approx(3 * 512, abs=10)
    assert usage["total_local_gb_usage"] == pytest.approx(3, abs=0.02)
    assert [(s["name"], s["flavor"], s["state"]) for s in usage["server_usages"]] == [("mine", "m1.tiny", "active")]
    datetime.strptime(usage["start"], "%Y-%m-%dT%H:%M:%S.%f")

    nova_error(cloud.member.get(f"os-simple-tenant-usage/{cloud.other_project.id}?{q}"), 404, "itemNotFound")
    nova_error(cloud.member.get(f"os-simple-tenant-usage?{q}"), 403, "forbidden")
    nova_error(cloud.admin.get(f"os-simple-tenant-usage?start={end}&end={start}"), 400, "badRequest")
    nova_error(cloud.admin.get("os-simple-tenant-usage?start=yesterday"), 400, "badRequest")
    empty = check(cloud.admin.get(f"os-simple-tenant-usage/{cloud.admin_project.id}?{q}"), t.get_tenant_usage)
    assert empty["tenant_usage"]["total_hours"] == 0 and empty["tenant_usage"]["server_usages"] == []


@pytest.mark.django_db
def test_bodies_follow_the_microversion(cloud: SeededCloud, monkeypatch: pytest.MonkeyPatch) -> None:
    """Above 2.1 (once the API advertises more): 2.11 forced_down and force-down, 2.28 cpu_info as an
    object, 2.33 pagination links, 2.53 UUIDs, ?with_servers and PUT os-services/{id}, 2.88 trimmed."""
    from apps.compute.api import serializers

    monkeypatch.setattr(serializers, "MAX_VERSION", (2, 88))
    v = _tempest_schemas(("v2_11.services", "v2_28.hypervisors", "v2_33.hypervisors", "v2_53.hypervisors",
                          "v2_53.services"))

    def at(version: str) -> dict[str, str]:
        return {"OpenStack-API-Version": f"compute {version}"}

    n1, n2 = node("compute1"), node("compute2")
    vm = server_on(n1, cloud.demo_project, "vm-a")
    body = {"host": "compute1", "binary": "nova-compute"}
    services = check(cloud.admin.get("os-services", headers=at("2.11")), v["v2_11.services"].list_services)
    assert services["services"][0]["forced_down"] is False
    forced = check(cloud.admin.put("os-services/force-down", {**body, "forced_down": True}, headers=at("2.11")),
                   v["v2_11.services"].update_forced_down)
    assert forced["service"]["forced_down"] is True
    assert cloud.admin.get("os-services", headers=at("2.11")).json()["services"][0]["state"] == "down"

    detail = check(cloud.admin.get("os-hypervisors/detail", headers=at("2.28")),
                   v["v2_28.hypervisors"].list_hypervisors_detail)
    assert detail["hypervisors"][0]["cpu_info"]["arch"] == "x86_64"
    page = check(cloud.admin.get("os-hypervisors/detail?limit=1", headers=at("2.33")),
                 v["v2_33.hypervisors"].list_hypervisors_detail)
    assert len(page["hypervisors"]) == 1 and f"marker={n1.id}" in page["hypervisors_links"][0]["href"]
    rest = cloud.admin.get(f"os-hypervisors/detail?limit=1&marker={n1.id}", headers=at("2.33")).json()
    assert [h["id"] for h in rest["hypervisors"]] == [n2.id]

    listed = check(cloud.admin.get("os-hypervisors/detail?with_servers=true", headers=at("2.53")),
                   v["v2_53.hypervisors"].list_hypervisors_detail)["hypervisors"]
    assert listed[0]["id"] == n1.uuid and listed[0]["servers"] == [{"uuid": vm.id, "name": "vm-a"}]
    assert "servers" not in listed[1]
    one = check(cloud.admin.get(f"os-hypervisors/{n2.uuid}", headers=at("2.53")), v["v2_53.hypervisors"].get_hypervisor)
    assert one["hypervisor"]["service"]["id"] == n2.uuid
    found = cloud.admin.get("os-hypervisors?hypervisor_hostname_pattern=compute2", headers=at("2.53")).json()
    assert [h["id"] for h in found["hypervisors"]] == [n2.uuid]
    nova_error(cloud.admin.get("os-hypervisors/compute1/search", headers=at("2.53")), 404)
    s53 = v["v2_53.services"]
    check(cloud.admin.get("os-services", headers=at("2.53")), s53.list_services)
    updated = check(cloud.admin.put(f"os-services/{n1.uuid}", {"status": "disabled", "disabled_reason": "x",
                                                                 "forced_down": False}, headers=at("2.53")),
                    s53.update_service)["service"]
    assert (updated["status"], updated["disabled_reason"], updated["forced_down"]) == ("disabled", "x", False)
    nova_error(cloud.admin.put(f"os-services/{n1.uuid}", {"bogus": 1}, headers=at("2.53")), 400)
    nova_error(cloud.admin.put("os-services/enable", body, headers=at("2.53")), 404)

    trimmed = cloud.admin.get(f"os-hypervisors/{n1.uuid}", headers=at("2.88")).json()["hypervisor"]
    assert "vcpus" not in trimmed and "cpu_info" not in trimmed and " up " in trimmed["uptime"]
    nova_error(cloud.admin.get("os-hypervisors/statistics", headers=at("2.88")), 404)
