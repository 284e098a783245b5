"""A push's state comes from one snapshot (``network_push_state``): a commit made between two of the
loader's queries does not reach the state (it would mix two commits under READ COMMITTED), and the
change it made gets a larger generation from its own push than the one that missed it. PostgreSQL, each
thread with its own connection; the commit is made at a fixed point through a query hook."""
from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from apps.networks import selectors, services
from apps.networks.models import Network, Port
from tests.api_client import SeededCloud
from workers.network_control import state_message

pytestmark = pytest.mark.django_db(transaction=True)

HOST = "snap-node"
NETWORKS_LOAD = 'FROM "networks_network" '  # the loader's query of the networks (the ports come after)


def _commit_elsewhere(network_id: str, port_id: str, seen: dict[str, Any]) -> None:
    """One commit on another connection that changes a network and one of its ports, then the
    generation its own push would read."""
    def work() -> None:
        try:
            with transaction.atomic():
                Network.objects.filter(pk=network_id).update(mtu=1400)
                Port.objects.filter(pk=port_id).update(admin_state_up=False)
            seen["its_generation"] = selectors.network_state_generation()
        except Exception as exc:  # noqa: BLE001 - reported by the test
            seen["error"] = repr(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(30)


@pytest.fixture
def bound(cloud: SeededCloud) -> tuple[str, str]:
    """A network with a subnet and a port bound to HOST, whose agent is alive."""
    assert connection.vendor == "postgresql"
    services.network_agent_report(host=HOST, vtep_ip="192.0.2.9", capable=True, hosts_dhcp_l3=False)
    network = services.network_create(actor=cloud.member_actor, name="snap")
    services.subnet_create(actor=cloud.member_actor, network_id=network.id, cidr="10.77.0.0/24", enable_dhcp=False)
    port = services.port_create(actor=cloud.member_actor, network_id=network.id)
    Port.objects.filter(pk=port.id).update(binding_host_id=HOST)
    return network.id, port.id


def test_a_commit_between_the_loaders_queries_does_not_mix_into_the_state(bound: tuple[str, str]) -> None:
    network_id, port_id = bound
    before = selectors.network_node_state(host=HOST)
    assert [n.mtu for n in before.networks] == [1450] and [p.admin_state_up for p in before.ports] == [True]
    seen: dict[str, Any] = {}
    order: list[str] = []

    def hook(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        result = execute(sql, params, many, context)
        order.append(sql)
        if NETWORKS_LOAD in sql and not seen:
            seen["fired"] = True
            _commit_elsewhere(network_id, port_id, seen)
        return result

    with connection.execute_wrapper(hook), CaptureQueriesContext(connection) as queries:
        message = state_message(HOST)
    assert "error" not in seen and seen.get("fired"), seen
    # the commit came between the load of the networks and the load of their ports
    fired_at = next(i for i, sql in enumerate(order) if NETWORKS_LOAD in sql)
    assert any('FROM "networks_port"' in sql for sql in order[fired_at + 1:])
    # the state is the one before the commit, whole: not its network before and its port after
    assert message["state"] == before.to_dict()
    # one snapshot: the transaction's first statement sets it, the generation is read before the loads
    statements = [q["sql"] for q in queries]  # Django logs the transaction's BEGIN and COMMIT too
    assert statements[:3] == ["BEGIN", "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY",
                              "SELECT (extract(epoch FROM statement_timestamp()) * 1000000)::bigint"]
    assert statements[-1] == "COMMIT" and statements.count("BEGIN") == 1
    # the change it missed has its own push, with a larger generation: the node applies that one after
    assert seen["its_generation"] > message["generation"]
    after = state_message(HOST)
    assert after["generation"] > message["generation"]
    assert [n["mtu"] for n in after["state"]["networks"]] == [1400]
    assert [p["admin_state_up"] for p in after["state"]["ports"]] == [False]


def test_inside_a_callers_transaction_it_reads_in_that_one(bound: tuple[str, str]) -> None:
    """The isolation of a transaction already begun cannot change: the state is read in it (and sees
    what it wrote)."""
    network_id, _port_id = bound
    with transaction.atomic():
        Network.objects.filter(pk=network_id).update(mtu=1300)
        generation, state = selectors.network_push_state(host=HOST)
    assert [n.mtu for n in state.networks] == [1300] and generation > 0
