"""The admins' Hypervisors and Compute services panels as live tables (apps/dashboard/tables.py):
sorted, filtered and paged through node_selectors (node_list, service_list: the API's selectors) with
a constant number of queries whatever the number of nodes; the capacity arithmetic is the selector's
(with_capacity), the summary's totals its sums over every node; a service is enabled and disabled
row by row or in bulk through node_services.compute_service_update, each row's outcome told."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.compute.models import ComputeNode
from apps.compute.selectors.nodes import node_is_up
from tests.api_client import SeededCloud
from tests.dashboard.conftest import ADMIN_PW, DEMO_PW, signed_in
from tests.dashboard.table_pages import table_page, walk, walk_back

pytestmark = pytest.mark.django_db
H = "/dashboard/compute/admin/hypervisors/"
S = "/dashboard/compute/admin/services/"


def _grow_nodes(start: int, count: int) -> None:
    now = timezone.now()
    ComputeNode.objects.bulk_create([ComputeNode(
        host=f"cn-{i}", hypervisor_hostname=f"hv-{(i * 37) % 100:02d}-{i}", libvirt_uri="test:///default",
        vcpus=2 + i % 5, memory_mb=1024 * (1 + i % 3), local_gb=10 + i, vcpus_used=i % 4, memory_mb_used=100 * i,
        cpu_allocation_ratio=1.5 + i % 2, ram_allocation_ratio=1.0 + (i % 3) / 2, disk_allocation_ratio=1.0,
        reserved_host_memory_mb=512 * (i % 2), running_vms=i % 6, enabled=i % 5 != 0,
        last_heartbeat=None if i % 7 == 0 else now - timedelta(seconds=i * 10)) for i in range(start, start + count)])


def _capacity(node: ComputeNode) -> tuple[int, int, int]:
    return (int(node.vcpus * node.cpu_allocation_ratio),
            max(0, int(node.memory_mb * node.ram_allocation_ratio) - node.reserved_host_memory_mb),
            int(node.local_gb * node.disk_allocation_ratio))


def test_hypervisors_sort_filter_and_page_with_constant_queries(cloud: SeededCloud) -> None:
    _grow_nodes(0, 30)
    admin = signed_in("admin", ADMIN_PW)
    admin.get(H)
    first_small = table_page(admin, f"{H}?sort=hypervisor_hostname&dir=asc")
    _pages, small = walk(admin, first_small.next)
    _grow_nodes(30, 45)

    first = table_page(admin, f"{H}?sort=hypervisor_hostname&dir=asc")
    assert first.queries == first_small.queries and len(first.ids) == 25 and first.previous is None
    pages, large = walk(admin, first.next)
    every = list(ComputeNode.objects.order_by("hypervisor_hostname", "id").values_list("id", "hypervisor_hostname"))
    shown = first.ids + [i for p in pages for i in p.ids]
    assert shown == [str(i) for i, _ in every] and first.names + [n for p in pages for n in p.names] == [
        n for _, n in every]
    assert large == small and len(large) == 1, (small, large)
    back = walk_back(admin, pages[-1].previous)
    assert [i for p in back for i in p.ids] + pages[-1].ids == shown

    by_used, counts = walk(admin, f"{H}?sort=memory_mb_used&dir=desc")
    wanted = [str(i) for i in ComputeNode.objects.order_by("-memory_mb_used", "-id").values_list("id", flat=True)]
    assert [i for p in by_used for i in p.ids] == wanted and counts == large
    # by state (up first): the database's is_up, as node_is_up says it of each node
    by_state, counts = walk(admin, f"{H}?sort=is_up&dir=desc")
    wanted = [str(n.id) for n in sorted(ComputeNode.objects.all(), key=lambda n: (node_is_up(n), n.id), reverse=True)]
    assert [i for p in by_state for i in p.ids] == wanted and counts == large
    assert len({node_is_up(n) for n in ComputeNode.objects.all()}) == 2  # some up, some down
    filtered = table_page(admin, f"{H}?q=hv-1")
    assert filtered.names and all("hv-1" in n for n in filtered.names)
    assert 'data-live="instance"' in first.html and 'id="hypervisors-filter"' in first.html

    # each row's capacity is the selector's arithmetic; the summary sums it over every node
    node = ComputeNode.objects.get(host="cn-7")
    vcpus, ram, disk = _capacity(node)
    row = re.search(rf'<tr data-id="{node.id}".*?</tr>', table_page(admin, f"{H}?q={node.hypervisor_hostname}").html,
                    re.S).group(0)
    assert f"{node.vcpus_used} / {vcpus} " in row and f"/ {disk} GB" in row and 'data-host="cn-7"' in row
    assert f"/ {ram:,} MB" in row or f"/ {ram} MB" in row
    assert ">down<" in row  # no heartbeat
    nodes = list(ComputeNode.objects.all())
    totals = [sum(_capacity(n)[k] for n in nodes) for k in range(3)]
    summary = admin.get(f"{H}?partial=summary").content.decode()
    assert "<table" not in summary and f"of {totals[2]:,} GB" in summary
    assert f"of {totals[0]:,} <" in summary and f"of {totals[1]:,} MB" in summary
    assert 'id="hypervisor-summary" data-live="instance"' in first.html
    assert "hypervisor-summary" not in admin.get(f"{H}?partial=1").content.decode()


def test_hypervisors_are_for_admins(cloud: SeededCloud) -> None:
    _grow_nodes(0, 2)
    demo = signed_in("demo", DEMO_PW)
    assert demo.get(H).status_code == 403 and demo.get(f"{H}?partial=1").status_code == 403


def test_services_sort_filter_and_page_with_constant_queries(cloud: SeededCloud) -> None:
    _grow_nodes(0, 30)
    admin = signed_in("admin", ADMIN_PW)
    admin.get(S)
    first_small = table_page(admin, f"{S}?sort=host&dir=asc")
    _pages, small = walk(admin, first_small.next)
    _grow_nodes(30, 45)

    first = table_page(admin, f"{S}?sort=host&dir=asc")
    assert first.queries == first_small.queries and len(first.ids) == 25
    pages, large = walk(admin, first.next)
    every = list(ComputeNode.objects.order_by("host", "id").values_list("id", "host"))
    assert first.ids + [i for p in pages for i in p.ids] == [str(i) for i, _ in every]
    assert first.names + [n for p in pages for n in p.names] == [h for _, h in every]
    assert large == small and len(large) == 1, (small, large)

    by_status, counts = walk(admin, f"{S}?sort=enabled&dir=asc")
    wanted = [str(i) for i in ComputeNode.objects.order_by("enabled", "id").values_list("id", flat=True)]
    assert [i for p in by_status for i in p.ids] == wanted and counts == large
    by_state, counts = walk(admin, f"{S}?sort=is_up&dir=asc")
    wanted = [str(n.id) for n in sorted(ComputeNode.objects.all(), key=lambda n: (node_is_up(n), n.id))]
    assert [i for p in by_state for i in p.ids] == wanted and counts == large
    filtered = table_page(admin, f"{S}?q=cn-4")
    assert sorted(filtered.names) == sorted(["cn-4", *[f"cn-4{i}" for i in range(10)]])
    assert 'id="services-filter"' in first.html and "data-live=" not in first.html.split('id="services-live"')[1][:30]
    # a disabled row offers Enable (the table's action), an enabled one its Disable form with a reason
    row = re.search(r'<tr data-id="\d+" data-name="cn-0".*?</tr>', table_page(admin, f"{S}?q=cn-0").html, re.S).group(0)
    assert 'value="enable"' in row and 'name="disabled_reason"' not in row
    row = re.search(r'<tr data-id="\d+" data-name="cn-1".*?</tr>', table_page(admin, f"{S}?q=cn-1").html, re.S).group(0)
    assert 'name="disabled_reason"' in row and 'data-confirm="Disable the compute service on cn-1?' in row


def test_services_enable_and_disable_row_by_row_and_in_bulk(cloud: SeededCloud) -> None:
    _grow_nodes(0, 4)  # cn-0 disabled, the others enabled
    ids = {n.host: n.id for n in ComputeNode.objects.all()}
    admin = signed_in("admin", ADMIN_PW)
    page = admin.get(S).content.decode()
    assert 'data-bulk-action="disable"' in page and 'data-bulk-action="enable"' in page
    answer = admin.post(f"{S}act", {"action": "disable", "ids": [ids["cn-1"], ids["cn-2"], "999999"]},
                        HTTP_ACCEPT="application/json")
    results = answer.json()["results"]
    assert [(r["id"], r["ok"]) for r in results] == [(str(ids["cn-1"]), True), (str(ids["cn-2"]), True),
                                                     ("999999", False)]
    assert results[0]["message"] == "Compute service on cn-1 disabled." and "999999" in results[2]["message"]
    assert set(ComputeNode.objects.filter(enabled=False).values_list("host", flat=True)) == {"cn-0", "cn-1", "cn-2"}
    done = admin.post(f"{S}act", {"action": "enable", "ids": [ids["cn-0"], ids["cn-1"]], "next": f"{S}?sort=id"})
    assert done.status_code == 302 and done["Location"] == f"{S}?sort=id"
    assert set(ComputeNode.objects.filter(enabled=False).values_list("host", flat=True)) == {"cn-2"}
    # the row's own form keeps its reason; a bulk disable leaves none
    admin.post(f"{S}{ids['cn-3']}/update", {"status": "disabled", "disabled_reason": "new disks"})
    assert ComputeNode.objects.get(host="cn-3").disabled_reason == "new disks"
    assert ComputeNode.objects.get(host="cn-2").disabled_reason == ""
    # members: refused, row by row
    demo = signed_in("demo", DEMO_PW)
    assert demo.get(S).status_code == 403
    refused = demo.post(f"{S}act", {"action": "enable", "ids": [ids["cn-2"]]}, HTTP_ACCEPT="application/json")
    assert refused.json()["results"][0]["ok"] is False
    assert not ComputeNode.objects.get(host="cn-2").enabled
