"""The overview's quota usage: compute / network / storage groups, headline resources as charts,
readable names and units from identity's quota registry, most used first."""
from __future__ import annotations

import re

from django.db import transaction
from django.test import Client

from apps.identity import quotas, services
from tests.api_client import SeededCloud


def test_amounts_are_written_in_the_units_people_read() -> None:
    assert quotas.amount(-1, "bytes") == "unlimited"
    assert quotas.amount(1 << 40, "bytes") == "1 TiB"
    assert quotas.amount(10240, "bytes") == "10 KiB"
    assert quotas.amount(255, "bytes") == "255 bytes"
    assert quotas.amount(51200, "MiB") == "50 GiB"
    assert quotas.amount(1536, "MiB") == "1.5 GiB"
    assert quotas.amount(512, "MiB") == "512 MiB"
    assert quotas.amount(1000, "GiB") == "1,000 GiB"
    assert quotas.amount(0, "GiB") == quotas.amount(0, "bytes") == "0"
    assert quotas.amount(12345) == "12,345"


def test_every_registered_resource_has_a_label_and_a_known_group(db: None) -> None:
    for name, resource in quotas.registered().items():
        assert resource.label, name
        assert resource.group in quotas.GROUPS, (name, resource.service)
    headline = {name for name, r in quotas.registered().items() if r.chart}
    assert {"instances", "cores", "ram", "volumes", "gigabytes", "port", "floatingip"} <= headline


def _charts(html: str) -> list[tuple[str, str]]:
    """(group, resource) of every chart, in page order."""
    found = []
    for group in re.finditer(r'<section class="quota-group" data-group="(\w+)">(.*?)</section>', html, re.S):
        found += [(group.group(1), name) for name in re.findall(r'<figure class="donut-card" data-id="(\w+)"',
                                                                group.group(2))]
    return found


def test_the_overview_groups_charts_and_orders_most_used_first(cloud: SeededCloud, demo_client: Client) -> None:
    html = demo_client.get("/dashboard/").content.decode()
    charts = _charts(html)
    assert list(dict.fromkeys(g for g, _ in charts)) == ["Compute", "Network", "Storage"]
    assert charts[:3] == [("Compute", "instances"), ("Compute", "cores"), ("Compute", "ram")]  # nothing used yet
    assert "Floatingip" not in html and "Subnetpool" not in html and "1,099,511,627,776" not in html
    assert "Floating IPs" in html and "Subnet pools" in html
    assert "<td class=\"num\">1 TiB</td>" in html  # image storage
    assert "0 of 50 GiB" in html  # RAM
    assert "Injected file path" in html and "255 bytes" in html
    demo = cloud.demo_project.id
    with transaction.atomic():
        services.quota_reserve(project_id=demo, deltas={"ram": 40960, "floatingip": 49})
    html = demo_client.get("/dashboard/").content.decode()
    charts = _charts(html)
    assert charts[0] == ("Compute", "ram") and "40 GiB of 50 GiB" in html
    network = [name for group, name in charts if group == "Network"]
    assert network[0] == "floatingip"
    assert re.search(r'data-resource="floatingip"[^>]*>\s*<svg class="donut donut-full', html) is None
    assert re.search(r'data-resource="floatingip"[^>]*>\s*<svg class="donut donut-high', html)
    partial = demo_client.get("/dashboard/?partial=1").content.decode()
    assert "<html" not in partial and _charts(partial) == charts
    with transaction.atomic():
        services.quota_release(project_id=demo, deltas={"ram": 40960, "floatingip": 49})


def test_the_overview_follows_the_ports_it_counts(cloud: SeededCloud, demo_client: Client, monkeypatch,
                                                  django_capture_on_commit_callbacks) -> None:
    """The port quota is counted from the ports (no usage row moves, so no quota event is sent): the
    overview's usage refreshes on the ports' own events too, and shows the ports a create made."""
    from apps.core import events
    from apps.networks import services as network_services

    sent: list[dict] = []
    monkeypatch.setattr(events, "send_all", lambda batch: sent.extend(event for _group, event in batch))
    html = demo_client.get("/dashboard/").content.decode()
    live = re.search(r'id="quota-usage" data-live="([^"]*)"', html)
    assert live is not None and set(live.group(1).split()) == {"quota", "port"}
    network = network_services.network_create(actor=cloud.member_actor, name="counted")
    network_services.port_create(actor=cloud.member_actor, network_id=network.id)  # and the default group
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        network_services.port_create(actor=cloud.member_actor, network_id=network.id)
    assert [(e["kind"], e["resource"]) for e in sent] == [("created", "port")]
    assert re.search(r'data-resource="port".*?2 of 500', demo_client.get("/dashboard/").content.decode(), re.S)
