"""Usage summaries (apps.telemetry.selectors.usage_summary) from the lifecycle records: periods that
cut the resources' lives and revisions, per project and cloud-wide, the top consumers, who may see
what, a constant number of queries, and instance hours (vCPU, RAM, disk hours) equal to what Nova's
os-simple-tenant-usage (`openstack usage show`) answers through the real API for the same periods,
over a history of boots, a confirmed resize and deletes made through compute's services."""
from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from django.utils import timezone

from apps.compute.services.server_lifecycle import server_delete
from apps.compute.services.server_rebuild_resize import server_resize, server_resize_confirm
from apps.compute.services.server_reports import server_destroyed, server_spawned, server_task_done
from apps.core.errors import BadRequest, NotFound
from apps.telemetry import selectors, services
from apps.telemetry.services.lifecycle import Record
from tests.api_client import ApiClient
from tests.compute.test_servers_support import Env, env_fixture, image_dir_fixture, reload  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=False)
UTC = dt.UTC
T0 = dt.datetime(2026, 2, 1, tzinfo=UTC)
NOW = dt.datetime(2026, 3, 1, tzinfo=UTC)


def h(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


def rec(kind: str, rid: str, project: str, event: str, at: float, **attributes: Any) -> Record:
    return Record(kind=kind, resource_id=rid, project_id=project, user_id="u", attributes=attributes,
                  event=event, at=h(at))  # type: ignore[arg-type]


def history(demo: str, other: str) -> None:
    """Hours from T0: demo's volume of 10 GB (0-20, extended to 30 GB at 10), its snapshot of 10 GB
    (5-15), an instance m1.small (2 vCPU, 2048 MB, 20+0 GB) from 2 on, a floating IP (0-8), an
    account of 2 GiB (0-12) then 1 GiB; other's instance m1.tiny (1, 512, 1) 4-6 and volume 1 GB from 0."""
    gib = 1 << 30
    services.lifecycle_apply(records=[
        rec("volume", "vol-a", demo, "create", 0, size=10, display_name="data"),
        rec("snapshot", "snap-a", demo, "create", 5, size=10, volume_id="vol-a"),
        rec("volume", "vol-a", demo, "update", 10, size=30),
        rec("snapshot", "snap-a", demo, "delete", 15),
        rec("volume", "vol-a", demo, "delete", 20),
        rec("instance", "vm-a", demo, "create", 2, flavor_name="m1.small", flavor_id="2", vcpus=2, memory_mb=2048,
            root_gb=20, ephemeral_gb=0, display_name="a"),
        rec("floatingip", "ip-a", demo, "create", 0, floating_ip_address="172.24.4.10"),
        rec("floatingip", "ip-a", demo, "delete", 8),
        rec("swift_account", demo, demo, "update", 0, bytes=2 * gib, objects=2, containers=1),
        rec("swift_account", demo, demo, "update", 12, bytes=gib, objects=1, containers=1),
        rec("instance", "vm-b", other, "create", 4, flavor_name="m1.tiny", flavor_id="1", vcpus=1, memory_mb=512,
            root_gb=1, ephemeral_gb=0, display_name="b"),
        rec("instance", "vm-b", other, "delete", 6),
        rec("volume", "vol-b", other, "create", 0, size=1),
    ])


def test_usage_over_periods_that_cut_the_lives(cloud: Any) -> None:
    demo, other = cloud.demo_project.id, cloud.other_project.id
    history(demo, other)
    summary = selectors.usage_summary(caller=cloud.admin_actor, start=h(6), end=h(14), now=NOW)
    usage = {u.project_id: u for u in summary.projects}
    assert set(usage) == {demo, other}
    mine = usage[demo]
    assert mine.volume_gb_hours == pytest.approx(4 * 10 + 4 * 30)       # 6-10 at 10 GB, 10-14 at 30 GB
    assert mine.snapshot_gb_hours == pytest.approx(8 * 10)              # 6-14
    assert mine.instance_hours == pytest.approx(8) and mine.vcpu_hours == pytest.approx(16)
    assert mine.memory_mb_hours == pytest.approx(8 * 2048) and mine.disk_gb_hours == pytest.approx(8 * 20)
    assert mine.instance_hours_by_flavor == pytest.approx({"m1.small": 8})
    assert mine.floating_ip_hours == pytest.approx(2)                   # 6-8
    assert mine.object_gb_hours == pytest.approx(6 * 2 + 2 * 1)         # 6-12 at 2 GiB, 12-14 at 1 GiB
    theirs = usage[other]
    assert theirs.instance_hours == pytest.approx(0) and theirs.volume_gb_hours == pytest.approx(8)
    total = summary.total
    assert total.project_id is None and total.volume_gb_hours == pytest.approx(160 + 8)
    assert total.instance_hours_by_flavor == pytest.approx({"m1.small": 8})  # vm-b ended when it began
    assert [(c.project_id, c.value) for c in summary.top_projects["volume_gb_hours"]] == [
        (demo, pytest.approx(160)), (other, pytest.approx(8))]
    assert [(c.resource_id, c.name) for c in summary.top_resources["volume_gb_hours"]] == [
        ("vol-a", "data"), ("vol-b", "")]
    # the whole life, a running instance counted until now, and a period before anything
    whole = selectors.usage_summary(caller=cloud.admin_actor, start=h(-1), end=h(30), now=h(24))
    assert {u.project_id: u.instance_hours for u in whole.projects} == pytest.approx({demo: 22, other: 2})
    assert whole.total.snapshot_gb_hours == pytest.approx(100)
    before = selectors.usage_summary(caller=cloud.admin_actor, start=h(-10), end=h(-1), now=NOW)
    assert before.projects == [] and before.total.volume_gb_hours == 0


def test_who_sees_what(cloud: Any) -> None:
    demo, other = cloud.demo_project.id, cloud.other_project.id
    history(demo, other)
    own = selectors.usage_summary(caller=cloud.member_actor, start=h(0), end=h(24), now=NOW)
    assert [u.project_id for u in own.projects] == [demo]
    assert own.total.volume_gb_hours == own.projects[0].volume_gb_hours  # theirs is not in the total
    reader = selectors.usage_summary(caller=cloud.reader_actor, start=h(0), end=h(24), project_id=demo, now=NOW)
    assert reader.projects[0].instance_hours == pytest.approx(22)
    with pytest.raises(NotFound):
        selectors.usage_summary(caller=cloud.member_actor, start=h(0), end=h(24), project_id=other)
    with pytest.raises(BadRequest):
        selectors.usage_summary(caller=cloud.admin_actor, start=h(2), end=h(1))
    empty = selectors.usage_summary(caller=cloud.admin_actor, start=h(0), end=h(1), project_id="nothing-here")
    assert [u.project_id for u in empty.projects] == ["nothing-here"] and empty.total.instance_hours == 0


@pytest.mark.parametrize("copies", [1, 12])
def test_constant_queries(cloud: Any, copies: int, django_assert_max_num_queries: Any) -> None:
    for n in range(copies):
        history(f"{cloud.demo_project.id}-{n}" if n else cloud.demo_project.id, f"other-{n}")
    with django_assert_max_num_queries(2):
        summary = selectors.usage_summary(caller=cloud.admin_actor, start=h(6), end=h(14), now=NOW)
    assert len(summary.projects) == 2 * copies


# ---- equal to os-simple-tenant-usage through the real API ----------------------------------------------

def stamp(moment: dt.datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def lived(env: Env, capture: Any, midway: Any) -> list[dt.datetime]:
    """A history through compute's services, with the moments between its steps: A and B boot; A is
    resized (m1.tiny → flavor 2) and confirmed; B is deleted; C boots (``midway(marks)`` is called
    then, A still running); A is deleted."""
    actor = env.cloud.member_actor
    marks = [timezone.now()]

    def boot(name: str) -> Any:
        instance = env.boot(name=name)
        with capture(execute=True):
            server_spawned(instance_id=instance.id, host=instance.host, power_state=1)
        return reload(instance)

    def delete(instance: Any) -> None:
        with capture(execute=True):
            server_delete(actor=actor, server_id=instance.id, request_id=f"del-{instance.id}")
            server_destroyed(instance_id=instance.id, host=instance.host, request_id=f"del-{instance.id}")

    a, b = boot("a"), boot("b")
    marks.append(timezone.now())
    with capture(execute=True):
        server_resize(actor=actor, server_id=a.id, flavor_ref="2", request_id="rz")
        server_task_done(instance_id=a.id, host=a.host, task="resize_finish", power_state=1)
        server_resize_confirm(actor=actor, server_id=a.id, request_id="cf")
        server_task_done(instance_id=a.id, host=a.host, task="resize_confirming", power_state=1)
    delete(b)
    marks.append(timezone.now())
    boot("c")
    marks.append(timezone.now())
    midway(marks)
    delete(a)
    marks.append(timezone.now())
    return marks


def test_equal_to_os_simple_tenant_usage(env: Env, django_capture_on_commit_callbacks: Any) -> None:
    cloud = env.cloud
    demo = cloud.demo_project.id
    nova_admin = ApiClient(cloud.admin_token, api="compute", project_id=cloud.admin_project.id)
    nova_member = ApiClient(cloud.member_token, api="compute", project_id=demo)
    figures = {"total_hours": "instance_hours", "total_vcpus_usage": "vcpu_hours",
               "total_memory_mb_usage": "memory_mb_hours", "total_local_gb_usage": "disk_gb_hours"}

    def compare(periods: list[tuple[dt.datetime, dt.datetime]]) -> None:
        for start, end in periods:
            query = f"start={stamp(start)}&end={stamp(end)}"
            response = nova_member.get(f"os-simple-tenant-usage/{demo}?{query}")
            assert response.status_code == 200, response.content
            nova = response.json()["tenant_usage"]
            ours = selectors.usage_summary(caller=cloud.member_actor, start=start, end=end, project_id=demo)
            assert nova["total_hours"] > 0
            for key, measure in figures.items():
                assert getattr(ours.projects[0], measure) == pytest.approx(nova[key], rel=1e-9, abs=1e-12), \
                    (key, start)
            # by flavor: what Nova's server_usages say, summed per flavor
            by_flavor: dict[str, float] = {}
            for server in nova["server_usages"]:
                by_flavor[server["flavor"]] = by_flavor.get(server["flavor"], 0.0) + server["hours"]
            assert ours.projects[0].instance_hours_by_flavor == pytest.approx(by_flavor)
            # cloud-wide: the list of every project's usage
            listed = nova_admin.get(f"os-simple-tenant-usage?{query}").json()["tenant_usages"]
            everyone = selectors.usage_summary(caller=cloud.admin_actor, start=start, end=end)
            assert everyone.total.vcpu_hours == pytest.approx(sum(u["total_vcpus_usage"] for u in listed), rel=1e-9)
            assert everyone.total.memory_mb_hours == pytest.approx(sum(u["total_memory_mb_usage"] for u in listed),
                                                                   rel=1e-9)
            assert everyone.total.instance_hours == pytest.approx(sum(u["total_hours"] for u in listed), rel=1e-9)

    # midway, the resized A still runs (its flavor now counts for its whole life, in both)
    marks = lived(env, django_capture_on_commit_callbacks,
                  lambda m: compare([(m[0], m[3]), (m[1], m[3]), (m[1], m[2]), (m[2], m[3]), (m[0], m[1])]))
    compare([(marks[0], marks[4]), (marks[1], marks[3]), (marks[1], marks[2]), (marks[2], marks[4]),
             (marks[0], marks[1]), (marks[3], marks[4])])
    # the resized instance counts its new flavor for its whole life, in both
    whole = selectors.usage_summary(caller=cloud.member_actor, start=marks[0], end=marks[4])
    assert set(whole.projects[0].instance_hours_by_flavor) == {"m1.tiny", "m1.small"}


def test_backfill_makes_older_rows_count(cloud: Any, django_capture_on_commit_callbacks: Any) -> None:
    """Rows older than telemetry (no lifecycle records): `manage.py telemetry_backfill` records them,
    and the summary then equals os-simple-tenant-usage for them too; a second run changes nothing."""
    from django.core.management import call_command

    from apps.compute.selectors import nodes as node_selectors
    from apps.networks import services as network_services
    from apps.telemetry.models import Measure, Resource
    from tests.compute.test_nodes import instance

    demo = cloud.demo_project
    instance(demo, "old", h(-48), h(5))
    instance(demo, "running", h(3), None, vcpus=4, memory_mb=4096, root_gb=40, ephemeral_gb=0)
    instance(demo, "never", None, vm_state="error")
    network_services.floatingip_create(actor=cloud.member_actor, floating_network_id=cloud.public_id)
    Resource.objects.all().delete()  # as if telemetry had never heard of them
    start, end = h(0), h(10)
    before = selectors.usage_summary(caller=cloud.admin_actor, start=start, end=end, now=NOW)
    assert before.total.instance_hours == 0
    with django_capture_on_commit_callbacks(execute=True):  # (a command runs in autocommit: at once)
        call_command("telemetry_backfill", stdout=io.StringIO())
    nova = node_selectors.project_usage(actor=cloud.admin_actor, start=start, stop=end, project_id=demo.id, now=NOW)
    ours = selectors.usage_summary(caller=cloud.admin_actor, start=start, end=end, project_id=demo.id, now=NOW)
    assert nova[0].total_hours == pytest.approx(5 + 7)
    assert ours.projects[0].instance_hours == pytest.approx(nova[0].total_hours)
    assert ours.projects[0].vcpu_hours == pytest.approx(nova[0].total_vcpus_usage)
    assert ours.projects[0].disk_gb_hours == pytest.approx(nova[0].total_local_gb_usage)
    assert Resource.objects.filter(type_id="floatingip").count() == 1
    samples = Measure.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("telemetry_backfill", stdout=io.StringIO())
    assert Measure.objects.count() == samples and Resource.objects.filter(type_id="instance").count() == 2


def test_an_instance_polled_while_building_and_deleted_counts_nothing(
        env: Env, django_capture_on_commit_callbacks: Any) -> None:
    """The pollster may read a domain before the spawn is reported: its resource is closed when the
    instance is deleted, and never counted (Nova counts only launched instances)."""
    from apps.telemetry.models import Resource

    start = timezone.now()
    instance = env.boot()
    services.samples_from_node(host=instance.host, domains=[{
        "uuid": instance.id, "timestamp": timezone.now().timestamp(), "cpu_time_ns": 1000, "vcpus": 1,
        "memory_mb": 512, "memory_usage_mb": 100, "disks": [], "nics": []}])
    assert Resource.objects.get(original_resource_id=instance.id).ended_at is None
    with django_capture_on_commit_callbacks(execute=True):
        server_delete(actor=env.cloud.member_actor, server_id=instance.id, request_id="del")
        server_destroyed(instance_id=instance.id, host=instance.host, request_id="del")
    assert reload(instance).launched_at is None
    assert Resource.objects.get(original_resource_id=instance.id).ended_at == reload(instance).terminated_at
    end = timezone.now()
    nova = ApiClient(env.cloud.member_token, api="compute", project_id=env.cloud.demo_project.id).get(
        f"os-simple-tenant-usage/{env.cloud.demo_project.id}?start={stamp(start)}&end={stamp(end)}").json()
    ours = selectors.usage_summary(caller=env.cloud.member_actor, start=start, end=end)
    assert nova["tenant_usage"]["total_hours"] == 0 and ours.projects[0].instance_hours == 0
    assert ours.projects[0].instance_hours_by_flavor == {}
