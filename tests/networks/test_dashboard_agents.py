"""The admins' Network agents panel and why a port is DOWN (issue 11, item 6): the agents with their
state (alive/down by heartbeat, admin state, able to apply state, hosting DHCP and routers, last sync,
ports bound), disabled/enabled/forgotten through the services; each DOWN port's reason computed once
(selectors.port_down_reasons) and shown on the Ports list and the port's page, host names to admins
only; members get 403 on the panel, another project's port page is a 404."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.networks import selectors, services
from apps.networks.models import NetworkAgent, Port
from tests.dashboard.table_pages import table_page, walk, walk_back
from tests.networks.test_dashboard import D, Setup, _messages, env  # noqa: F401

pytestmark = pytest.mark.django_db


def agent(host: str, *, capable: bool = True, dhcp: bool = False, errors: tuple[str, ...] = ()) -> NetworkAgent:
    return services.network_agent_report(host=host, vtep_ip="192.0.2.1", capable=capable, hosts_dhcp_l3=dhcp,
                                         message="" if capable else "no CAP_NET_ADMIN", applied=True,
                                         errors=errors, duration_s=0.25)


def stale(row: NetworkAgent) -> None:
    NetworkAgent.objects.filter(pk=row.pk).update(heartbeat_at=timezone.now() - timedelta(hours=2))


def test_the_agents_panel(env: Setup) -> None:  # noqa: F811
    net1 = agent("net-node", dhcp=True)
    cmp1 = agent("compute-1", errors=("nft: table missing",))
    stale(agent("compute-2", capable=False))
    admin = env.client("admin")
    page = admin.get(f"{D}/agents/")
    assert page.status_code == 200
    html = page.content.decode()
    rows = {host: html.split(f'data-host="{host}"', 1)[1].split("</tr>", 1)[0]
            for host in ("net-node", "compute-1", "compute-2")}
    net_row = rows["net-node"]
    assert 'data-alive="true"' in net_row and "hosts them" in net_row and "applied" in net_row
    assert "nft: table missing" in rows["compute-1"] and "1 error" in rows["compute-1"]
    assert 'data-alive="false"' in rows["compute-2"] and "no CAP_NET_ADMIN" in rows["compute-2"]
    assert ">down<" in rows["compute-2"]
    # disable, enable, forget: the services (what Neutron's API then shows)
    done = admin.post(f"{D}/agents/{cmp1.id}/disable", follow=True)
    assert "Disabled the network agent on compute-1." in _messages(done)
    assert NetworkAgent.objects.get(pk=cmp1.pk).admin_state_up is False
    assert 'data-action="enable"' in admin.get(f"{D}/agents/?partial=1").content.decode().split(
        'data-host="compute-1"', 1)[1].split("</tr>", 1)[0]
    assert admin.post(f"{D}/agents/{cmp1.id}/enable").status_code == 302
    assert NetworkAgent.objects.get(pk=cmp1.pk).admin_state_up is True
    assert admin.post(f"{D}/agents/{cmp1.id}/delete").status_code == 302
    assert not NetworkAgent.objects.filter(pk=cmp1.pk).exists()
    assert admin.post(f"{D}/agents/{cmp1.id}/disable").status_code == 404
    # members: a 403 page, nothing changes
    demo = env.client("demo")
    assert demo.get(f"{D}/agents/").status_code == 403
    assert demo.post(f"{D}/agents/{net1.id}/disable").status_code == 403
    assert NetworkAgent.objects.get(pk=net1.pk).admin_state_up is True
    # the agents' rows cost constant queries
    with CaptureQueriesContext(connection) as few:
        admin.get(f"{D}/agents/?partial=1")
    for index in range(4):
        agent(f"more-{index}")
    with CaptureQueriesContext(connection) as more:
        admin.get(f"{D}/agents/?partial=1")
    assert len(more) == len(few)


def reason(setup: Setup, port: Port, *, admin: bool = False) -> str:
    actor = setup.admin if admin else setup.demo
    return selectors.port_down_reasons(actor=actor, ports=[Port.objects.get(pk=port.pk)]).get(port.id, "")


def test_why_a_port_is_down(env: Setup) -> None:  # noqa: F811
    network, _ = env.network(env.demo, "reasons-net")
    port = services.port_create(actor=env.demo, network_id=network.id, name="p1")
    assert reason(env, port) == "No network agent is alive: no node applies the network's state."
    node = agent("compute-1")
    assert reason(env, port).startswith("Not bound: no instance")
    Port.objects.filter(pk=port.pk).update(binding_host_id="compute-9")
    assert reason(env, port, admin=True) == "No network agent runs on compute-9, the host it is bound to."
    assert "compute-9" not in reason(env, port)  # a member is not told the host's name
    Port.objects.filter(pk=port.pk).update(binding_host_id="compute-1")
    assert reason(env, port, admin=True) == "The network agent on compute-1 has not applied it yet."
    assert reason(env, port) == "The network agent of its host has not applied it yet."
    agent("compute-1", errors=("tap missing",))
    assert reason(env, port, admin=True) == \
        "The network agent on compute-1 failed to apply the last change: tap missing."
    agent("compute-1", capable=False)
    assert "cannot apply network state: no CAP_NET_ADMIN" in reason(env, port, admin=True)
    agent("compute-1")
    NetworkAgent.objects.filter(pk=node.pk).update(admin_state_up=False)
    assert "disabled by an operator" in reason(env, port, admin=True)
    NetworkAgent.objects.filter(pk=node.pk).update(admin_state_up=True)
    agent("other-node")  # someone else is alive: this host's agent is down
    stale(node)
    assert reason(env, port, admin=True).startswith("The network agent on compute-1 is down (last heartbeat ")
    agent("compute-1")
    assert services.port_status_report(host="compute-1", statuses={port.id: "ACTIVE"}) == 1
    assert reason(env, port) == ""  # ACTIVE: no reason
    Port.objects.filter(pk=port.pk).update(status="DOWN", admin_state_up=False)
    assert reason(env, port).startswith("Its admin state is down")


def test_the_reason_on_the_ports_list_and_the_port_page(env: Setup) -> None:  # noqa: F811
    agent("compute-1")
    network, _ = env.network(env.demo, "page-net")
    port = services.port_create(actor=env.demo, network_id=network.id, name="shown")
    Port.objects.filter(pk=port.pk).update(binding_host_id="compute-1")
    demo = env.client("demo")
    listing = demo.get(f"{D}/ports/").content.decode()
    row = listing.split(f'data-id="{port.id}"', 1)[1].split("</tr>", 1)[0]
    assert f'href="{D}/ports/{port.id}/"' in row
    assert "The network agent of its host has not applied it yet." in row
    page = demo.get(f"{D}/ports/{port.id}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="port-down-reason"' in html and "has not applied it yet" in html and "compute-1" not in html
    assert "on compute-1 has not applied it yet" in env.client("admin").get(f"{D}/ports/{port.id}/").content.decode()
    assert env.client("olga").get(f"{D}/ports/{port.id}/").status_code == 404
    assert env.client("rita").get(f"{D}/ports/{port.id}/").status_code == 200  # a reader sees it
    services.port_status_report(host="compute-1", statuses={port.id: "ACTIVE"})
    assert 'id="port-down-reason"' not in demo.get(f"{D}/ports/{port.id}/").content.decode()
    # the reasons cost one query, whatever the number of ports
    with CaptureQueriesContext(connection) as few:
        demo.get(f"{D}/ports/?partial=1")
    for index in range(5):
        services.port_create(actor=env.demo, network_id=network.id, name=f"more-{index}")
    with CaptureQueriesContext(connection) as more:
        demo.get(f"{D}/ports/?partial=1")
    assert len(more) == len(few)


def _grow_agents(start: int, count: int) -> None:
    now = timezone.now()
    NetworkAgent.objects.bulk_create([NetworkAgent(
        host=f"node-{(i * 37) % 100:02d}-{i}", capable=i % 3 != 0, hosts_dhcp_l3=i == 0, admin_state_up=i % 4 != 0,
        heartbeat_at=now - timedelta(seconds=i * 60)) for i in range(start, start + count)])


def test_the_agents_table_sorts_filters_and_pages_with_constant_queries(env: Setup) -> None:  # noqa: F811
    _grow_agents(0, 30)
    admin = env.client("admin")
    first_small = table_page(admin, f"{D}/agents/?sort=host&dir=asc")
    _pages, small = walk(admin, first_small.next)
    _grow_agents(30, 45)

    first = table_page(admin, f"{D}/agents/?sort=host&dir=asc")
    assert first.queries == first_small.queries and len(first.ids) == 25 and first.previous is None
    pages, large = walk(admin, first.next)
    every = list(NetworkAgent.objects.order_by("host", "id").values_list("id", "host"))
    assert list(zip(first.ids + [i for p in pages for i in p.ids], first.names + [n for p in pages for n in p.names],
                    strict=True)) == every
    assert large == small and len(large) == 1, (small, large)
    back = walk_back(admin, pages[-1].previous)
    assert [i for p in back for i in p.ids] + pages[-1].ids == [i for i, _ in every]

    by_beat, counts = walk(admin, f"{D}/agents/?sort=heartbeat_at&dir=desc")
    wanted = list(NetworkAgent.objects.order_by("-heartbeat_at", "-id").values_list("id", flat=True))
    assert [i for p in by_beat for i in p.ids] == wanted and counts == large
    by_state, counts = walk(admin, f"{D}/agents/?sort=alive&dir=desc")
    agents = sorted(NetworkAgent.objects.all(), key=lambda a: (selectors.agent_is_alive(a), a.id), reverse=True)
    assert [i for p in by_state for i in p.ids] == [a.id for a in agents] and counts == large
    assert len({selectors.agent_is_alive(a) for a in agents}) == 2  # some alive, some down
    filtered = table_page(admin, f"{D}/agents/?q=node-1")
    assert filtered.names and all(n.startswith("node-1") for n in filtered.names)
    assert 'data-live="network_agent"' in first.html and 'id="agents-filter"' in first.html


def test_the_agents_bulk_actions_one_call_per_row(env: Setup) -> None:  # noqa: F811
    one, two, three = agent("n-1"), agent("n-2"), agent("n-3")
    admin = env.client("admin")
    page = admin.get(f"{D}/agents/").content.decode()
    assert 'data-bulk-action="disable"' in page and 'data-confirm="Forget the network agent on n-2?"' in page
    answer = admin.post(f"{D}/agents/act", {"action": "disable", "ids": [one.id, two.id, "nope"]},
                        HTTP_ACCEPT="application/json")
    results = answer.json()["results"]
    assert [(r["id"], r["ok"]) for r in results] == [(one.id, True), (two.id, True), ("nope", False)]
    assert results[0]["message"] == "Disabled the network agent on n-1." and "nope" in results[2]["message"]
    assert set(NetworkAgent.objects.filter(admin_state_up=False).values_list("host", flat=True)) == {"n-1", "n-2"}
    answer = admin.post(f"{D}/agents/act", {"action": "delete", "ids": [two.id, three.id]},
                        HTTP_ACCEPT="application/json")
    assert all(r["ok"] for r in answer.json()["results"])
    assert list(NetworkAgent.objects.values_list("host", flat=True)) == ["n-1"]
    refused = env.client("demo").post(f"{D}/agents/act", {"action": "enable", "ids": [one.id]},
                                      HTTP_ACCEPT="application/json")
    assert refused.json()["results"][0]["ok"] is False and not NetworkAgent.objects.get(pk=one.pk).admin_state_up
