"""IPAM, VXLAN ids and quotas are exact under concurrency on PostgreSQL: many threads, each with its
own connection, race through the services; row locks serialise them and the unique constraints
stand guard."""
from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable

import pytest
from django.db import close_old_connections, connection, transaction

from apps.core.errors import StratusError
from apps.identity import services as identity_services
from apps.networks import services
from apps.networks.models import IPAllocation, Network, Port
from tests.api_client import SeededCloud

pytestmark = pytest.mark.django_db(transaction=True)


def race(n: int, work: Callable[[int], str]) -> list[str]:
    """Run ``work(i)`` in ``n`` threads released together; returns each outcome."""
    barrier = threading.Barrier(n)
    results: list[str] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        try:
            barrier.wait()
            outcome = work(i)
        except StratusError as exc:
            outcome = type(exc).__name__
        except Exception as exc:  # noqa: BLE001 - reported in the assertion
            outcome = f"error: {exc!r}"
        finally:
            close_old_connections()
            connection.close()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


@pytest.fixture
def member(cloud: SeededCloud):
    """The seeded cloud's alice, a member of demo."""
    return cloud.member_actor


def test_fifty_parallel_ports_on_a_slash_28(member):
    assert connection.vendor == "postgresql"
    network = services.network_create(actor=member, name="tiny")
    subnet = services.subnet_create(actor=member, network_id=network.id, cidr="10.50.0.0/28", enable_dhcp=False)
    # .0 network, .1 gateway, .15 broadcast: 13 addresses to give
    results = race(50, lambda i: services.port_create(actor=member, network_id=network.id).id and "ok")
    assert sorted(results) == ["IpAddressGenerationFailure"] * 37 + ["ok"] * 13, results
    given = list(IPAllocation.objects.filter(subnet=subnet).values_list("ip_address", flat=True))
    assert len(given) == len(set(given)) == 13
    assert sorted(given, key=ipaddress.ip_address) == [f"10.50.0.{i}" for i in range(2, 15)]
    assert Port.objects.filter(network=network).count() == 13
    usage = identity_services.selectors.quota_usage(project=member.project)["port"]["in_use"]
    assert usage == 13  # the failed creates gave their reservation back


def test_parallel_networks_get_distinct_vxlan_ids(member):
    results = race(20, lambda i: str(services.network_create(actor=member, name=f"n{i}").segmentation_id))
    assert not [r for r in results if not r.isdigit()], results
    vnis = [int(r) for r in results]
    assert len(set(vnis)) == 20
    assert Network.objects.filter(network_type="vxlan").values("segmentation_id").distinct().count() == \
        Network.objects.filter(network_type="vxlan").count()


def test_parallel_creates_never_exceed_the_quota(cloud, member):
    identity_services.quota_set(actor=cloud.admin_actor, project_id=member.project_id, limits={"router": 5})
    results = race(15, lambda i: services.router_create(actor=member, name=f"r{i}").id and "ok")
    assert sorted(results) == ["OverQuota"] * 10 + ["ok"] * 5, results


def test_one_default_security_group_whatever_the_race(member):
    from apps.networks.models import SecurityGroup

    results = race(10, lambda i: services.security_group_ensure_default(project_id=member.project_id).id)
    assert len(set(results)) == 1, results
    assert SecurityGroup.objects.filter(project_id=member.project_id, is_default=True).count() == 1


def test_a_create_holding_its_address_does_not_hold_up_the_next(member, monkeypatch):
    """IPAM locks no subnet row: while one port create has claimed its address and not yet committed,
    another create on the same subnet takes the next free address at once (with the subnet's row lock
    of before, it waited for the first one's commit: lock timeout here), and both commit distinct ones."""
    from apps.networks.services import ports

    network = services.network_create(actor=member, name="busy")
    subnet = services.subnet_create(actor=member, network_id=network.id, cidr="10.60.0.0/24", enable_dhcp=False)
    services.port_create(actor=member, network_id=network.id)  # the default group exists before the race
    claimed, go_on = threading.Event(), threading.Event()
    reserve = ports.reserve

    def slow_reserve(*args, **kwargs):
        if threading.current_thread().name == "slow":
            claimed.set()
            assert go_on.wait(60)
        return reserve(*args, **kwargs)

    monkeypatch.setattr(ports, "reserve", slow_reserve)
    results: list[str] = []

    def slow() -> None:
        try:
            results.append(services.port_create(actor=member, network_id=network.id).id)
        finally:
            connection.close()

    thread = threading.Thread(target=slow, name="slow")
    thread.start()
    try:
        assert claimed.wait(60)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '3s'")
            fast = services.port_create(actor=member, network_id=network.id)
    finally:
        go_on.set()
        thread.join(60)
    assert len(results) == 1
    given = list(IPAllocation.objects.filter(subnet=subnet).values_list("ip_address", flat=True))
    assert len(given) == len(set(given)) == 3
    assert IPAllocation.objects.filter(port_id__in=[fast.id, results[0]]).count() == 2
    usage = identity_services.selectors.quota_usage(project=member.project)["port"]["in_use"]
    assert usage == 3


def _pause_after_reserve(monkeypatch, seconds: float) -> None:
    """Each port create, once its quota is checked, waits ``seconds`` before its commit: the creates of
    a race are all in flight at once, none committed, when they check."""
    import time

    from apps.networks.services import ports

    reserve = ports.reserve

    def slow_reserve(*args, **kwargs):
        reserve(*args, **kwargs)
        time.sleep(seconds)

    monkeypatch.setattr(ports, "reserve", slow_reserve)


def test_parallel_port_creates_never_pass_the_port_limit(cloud, member, monkeypatch):
    """The port quota is counted from the ports (no usage row is shared): 12 creates race for the 5
    ports left under the limit, each holding its transaction open after its check. At most 5 are
    created, the rest refused as over quota, and the usage reads what was created. Without counting the
    creates still in flight each would see only the committed ports and all 12 would pass."""
    from apps.identity.models import QuotaUsage
    from tests.networks.helpers import neutron_error

    network = services.network_create(actor=member, name="limited")
    services.subnet_create(actor=member, network_id=network.id, cidr="10.70.0.0/24", enable_dhcp=False)
    services.port_create(actor=member, network_id=network.id)  # the default group exists before the race
    identity_services.quota_set(actor=cloud.admin_actor, project_id=member.project_id, limits={"port": 6})
    _pause_after_reserve(monkeypatch, 0.4)
    results = race(12, lambda i: services.port_create(actor=member, network_id=network.id).id and "ok")
    created = results.count("ok")
    assert 1 <= created <= 5 and sorted(results) == ["OverQuota"] * (12 - created) + ["ok"] * created, results
    assert Port.objects.filter(project_id=member.project_id, counted=True).count() == 1 + created
    usage = identity_services.selectors.quota_usage(project=member.project)["port"]
    assert usage == {"limit": 6, "in_use": 1 + created}
    assert not QuotaUsage.objects.filter(resource="port").exists()  # counted, not kept
    monkeypatch.undo()
    for _ in range(5 - created):  # what a race at the limit refused is there to take afterwards
        assert cloud.member.post("ports", {"port": {"network_id": network.id}}).status_code == 201
    details = cloud.member.get(f"quotas/{member.project_id}/details").json()["quota"]["port"]
    assert details == {"limit": 6, "used": 6, "reserved": 0}
    error = neutron_error(cloud.member.post("ports", {"port": {"network_id": network.id}}), 409, "OverQuota")
    assert "port" in error["message"]
    assert Port.objects.filter(project_id=member.project_id, counted=True).count() == 6


def test_an_unlimited_port_quota_locks_and_writes_nothing_for_it(cloud, member):
    """With the port limit at -1 a create takes no quota lock of any kind and writes no usage row;
    the usage the APIs report is still the project's ports, right after a create and a delete."""
    from apps.identity.models import QuotaUsage

    network = services.network_create(actor=member, name="free")
    services.subnet_create(actor=member, network_id=network.id, cidr="10.71.0.0/24", enable_dhcp=False)
    identity_services.quota_set(actor=cloud.admin_actor, project_id=member.project_id, limits={"port": -1})
    services.port_create(actor=member, network_id=network.id)
    with transaction.atomic():
        port = services.port_create(actor=member, network_id=network.id)
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory'")
            advisory = cursor.fetchone()[0]
    assert advisory == 1  # the address's claim (IPAM), none for the quota
    assert not QuotaUsage.objects.filter(resource="port").exists()
    services.port_delete(actor=member, port_id=port.id)
    assert identity_services.selectors.quota_usage(project=member.project)["port"] == {"limit": -1, "in_use": 1}
    details = cloud.member.get(f"quotas/{member.project_id}/details").json()["quota"]["port"]
    assert details == {"limit": -1, "used": 1, "reserved": 0}
