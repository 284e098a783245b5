"""The quota framework: limits with defaults, reservations in the resource's transaction, exact
under concurrency on PostgreSQL (row locks)."""
from __future__ import annotations

import threading

import pytest
from django.db import close_old_connections, connection, transaction

from apps.core.errors import BadRequest, Forbidden, QuotaExceeded
from apps.identity import quotas, selectors, services
from apps.identity.models import QuotaUsage


@pytest.fixture
def widgets():
    quotas.register("widgets", default=10, service="test", description="test resource")
    quotas.register("gadgets", default=-1, service="test")
    yield "widgets"
    quotas.unregister("widgets")
    quotas.unregister("gadgets")


@pytest.fixture
def project(cloud):
    """The seeded cloud's demo project (tests/conftest.py)."""
    return cloud.demo_project


def usage(project, resource="widgets") -> int:
    return QuotaUsage.objects.filter(project=project, resource=resource).values_list("in_use", flat=True).first() or 0


def test_defaults_apply_until_a_project_has_its_own_limit(cloud, project, widgets):
    assert selectors.quota_usage(project=project)["widgets"] == {"limit": 10, "in_use": 0}
    admin = cloud.admin_actor
    services.quota_default_set(actor=admin, limits={"widgets": 20})
    assert selectors.quota_limits(project=project)["widgets"] == 20
    services.quota_set(actor=admin, project_id=project.id, limits={"widgets": 3})
    assert selectors.quota_limits(project=project)["widgets"] == 3
    services.quota_delete(actor=admin, project_id=project.id, resources=["widgets"])
    assert selectors.quota_limits(project=project)["widgets"] == 20


def test_reserve_and_release_in_the_callers_transaction(project, widgets):
    with transaction.atomic():
        services.quota_reserve(project_id=project.id, deltas={"widgets": 4, "gadgets": 100})
    assert usage(project) == 4
    assert usage(project, "gadgets") == 100  # -1 is unlimited
    with transaction.atomic():
        services.quota_release(project_id=project.id, deltas={"widgets": 3})
    assert usage(project) == 1


def test_over_the_limit_raises_and_changes_nothing(project, widgets):
    with transaction.atomic():
        services.quota_reserve(project_id=project.id, deltas={"widgets": 9})
    with pytest.raises(QuotaExceeded) as err, transaction.atomic():
        services.quota_reserve(project_id=project.id, deltas={"gadgets": 5, "widgets": 2})
    assert err.value.resource == "widgets" and err.value.limit == 10 and err.value.in_use == 9
    assert usage(project) == 9
    assert usage(project, "gadgets") == 0


def test_a_rolled_back_resource_gives_its_reservation_back(project, widgets):
    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        services.quota_reserve(project_id=project.id, deltas={"widgets": 5})
        raise Boom
    assert usage(project) == 0


@pytest.mark.django_db(transaction=True)
def test_reserve_outside_a_transaction_is_a_programming_error(project, widgets):
    assert not connection.in_atomic_block
    with pytest.raises(RuntimeError):
        services.quota_reserve(project_id=project.id, deltas={"widgets": 1})


def test_unknown_resources_and_bad_limits_are_refused(cloud, project, widgets):
    admin = cloud.admin_actor
    with pytest.raises(BadRequest), transaction.atomic():
        services.quota_reserve(project_id=project.id, deltas={"unobtainium": 1})
    with pytest.raises(BadRequest):
        services.quota_set(actor=admin, project_id=project.id, limits={"widgets": -2})
    with pytest.raises(BadRequest):
        services.quota_set(actor=admin, project_id=project.id, limits={"widgets": "many"})


def test_a_limit_takes_32_bits_unless_its_default_needs_more(cloud, project, widgets):
    """The OpenStack schemas' 32-bit limit, except for a resource whose own default passes it: image
    storage counts bytes (1 TiB by default), and an admin can always set it back to that."""
    admin = cloud.admin_actor
    with pytest.raises(BadRequest):
        services.quota_set(actor=admin, project_id=project.id, limits={"widgets": services.QUOTA_MAX + 1})
    assert services.quota_set(actor=admin, project_id=project.id,
                              limits={"image_bytes": 1 << 40})["image_bytes"] == 1 << 40
    assert services.quota_set(actor=admin, project_id=project.id,
                              limits={"image_bytes": 4 << 40})["image_bytes"] == 4 << 40
    with pytest.raises(BadRequest):
        services.quota_default_set(actor=admin, limits={"widgets": services.QUOTA_MAX + 1})


def test_a_limit_below_usage_is_refused_unless_forced(cloud, project, widgets):
    admin = cloud.admin_actor
    with transaction.atomic():
        services.quota_reserve(project_id=project.id, deltas={"widgets": 5})
    with pytest.raises(BadRequest):
        services.quota_set(actor=admin, project_id=project.id, limits={"widgets": 4})
    assert services.quota_set(actor=admin, project_id=project.id, limits={"widgets": 4}, force=True)["widgets"] == 4


def test_only_admins_set_quotas(cloud, project, widgets):
    member = cloud.member_actor
    with pytest.raises(Forbidden):
        services.quota_set(actor=member, project_id=project.id, limits={"widgets": 100})


def test_only_admins_list_the_projects_with_their_own_limits(cloud, project, widgets):
    admin = cloud.admin_actor
    services.quota_set(actor=admin, project_id=project.id, limits={"widgets": 4})
    assert selectors.quota_projects_with_limits(actor=admin, resources=["widgets", "gadgets"]) == [project.id]
    assert selectors.quota_projects_with_limits(actor=admin, resources=["gadgets"]) == []
    member = cloud.member_actor
    with pytest.raises(Forbidden):
        selectors.quota_projects_with_limits(actor=member, resources=["widgets"])


def test_renamed_resources_keep_usage_limits_and_default_and_forgotten_ones_go(cloud, project, widgets):
    """What a volume type rename or delete does to its per type quotas."""
    admin = cloud.admin_actor
    quotas.register("widgets_new", default=10, service="test")
    try:
        with transaction.atomic():
            services.quota_reserve(project_id=project.id, deltas={"widgets": 2})
        services.quota_set(actor=admin, project_id=project.id, limits={"widgets": 7})
        services.quota_default_set(actor=admin, limits={"widgets": 9})
        with transaction.atomic():
            services.quota_resources_rename(resources={"widgets": "widgets_new"})
        assert selectors.quota_usage(project=project)["widgets_new"] == {"limit": 7, "in_use": 2}
        assert selectors.quota_usage(project=project)["widgets"] == {"limit": 10, "in_use": 0}
        assert selectors.quota_defaults()["widgets_new"] == 9
        with transaction.atomic():
            services.quota_resources_forget(resources=["widgets_new"])
        assert selectors.quota_usage(project=project)["widgets_new"] == {"limit": 10, "in_use": 0}
        assert usage(project, "widgets_new") == 0 and selectors.quota_defaults()["widgets_new"] == 10
    finally:
        quotas.unregister("widgets_new")


@pytest.mark.django_db(transaction=True)
def test_concurrent_reservations_never_overshoot(project, widgets):
    """30 threads, each its own PostgreSQL connection, race for a limit of 10: exactly 10 win."""
    assert connection.vendor == "postgresql"
    barrier = threading.Barrier(30)
    results: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            barrier.wait()
            with transaction.atomic():
                services.quota_reserve(project_id=project.id, deltas={"widgets": 1})
            outcome = "ok"
        except QuotaExceeded:
            outcome = "over"
        except Exception as exc:  # noqa: BLE001 - reported below
            outcome = f"error: {exc!r}"
        finally:
            close_old_connections()
            connection.close()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=worker) for _ in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == ["ok"] * 10 + ["over"] * 20
    assert usage(project) == 10
