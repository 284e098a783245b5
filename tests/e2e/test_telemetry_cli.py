"""Telemetry with the real gnocchiclient (`openstack metric ...`) against a running cloud: resources
with metrics, `metric list`, `measures add`, `measures show` with --aggregation/--granularity/--start/
--stop/--resample, batch, `metric aggregates` with a search and --groupby, archive policies; another
project's resource is not found."""
from __future__ import annotations

import json
import uuid
from datetime import UTC
from typing import Any

import pytest

from tests.conftest import VENV_BIN

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def _gnocchiclient() -> None:
    try:
        import gnocchiclient  # noqa: F401
    except ImportError:
        pytest.skip("gnocchiclient is missing: pip install -r requirements-test.txt")
    assert (VENV_BIN / "openstack").exists()


def metric(cloud: Any, *args: str, user: str = "demo", check: bool = True) -> Any:
    result = cloud.openstack("metric", *args, "-f", "json", user=user, check=False)
    if check:
        assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-2000:])
        return json.loads(result.stdout) if result.stdout.strip() else None
    return result


def plain(cloud: Any, *args: str, user: str = "demo") -> str:
    result = cloud.openstack("metric", *args, user=user, check=False)
    assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-2000:])
    return result.stdout


def leaf_values(data: Any) -> list[float]:
    """The values of an aggregates answer's measures, as `metric aggregates` prints them in order."""
    if isinstance(data, list):
        return [value for _ts, _granularity, value in data]
    return [value for key in data for value in leaf_values(data[key])]


def test_metric_cli(live_cloud) -> None:
    """The CLI for what a user types (a resource create, list and show, measures add and show, aggregates with
    --groupby, the older aggregation with a search, a metric create, an outsider's refusal, delete and batch
    delete); gnocchiclient's library on openstacksdk's session, in process, for the breadth between them
    (each CLI call costs a second of start-up)."""
    from gnocchiclient import exceptions as gnocchi_errors
    from gnocchiclient.v1.client import Client as Gnocchi

    cloud = live_cloud
    gnocchi = Gnocchi(session=cloud.sdk(user="demo").session, adapter_options={"interface": "public"})
    policies = {p["name"] for p in gnocchi.archive_policy.list()}
    assert {"low", "medium", "high", "bool"} <= policies
    vms = []
    for i, flavor in enumerate(("1", "1", "2")):
        rid = str(uuid.uuid4())
        if i == 0:
            made = metric(cloud, "resource", "create", "--type", "instance", "-a", f"flavor_id:{flavor}",
                          "-a", "host:node1", "-a", f"display_name:vm{i}", "-n", "cpu_util:medium", rid)
        else:
            made = gnocchi.resource.create("instance", {"id": rid, "flavor_id": flavor, "host": "node1",
                                                        "display_name": f"vm{i}",
                                                        "metrics": {"cpu_util": {"archive_policy_name": "medium"}}})
        assert made["id"] == rid and made["display_name"] == f"vm{i}"
        vms.append(rid)
    listed = metric(cloud, "resource", "list", "--type", "instance")
    assert set(vms) <= {r["id"] for r in listed}  # (other tests' servers may be polled into the same cloud)
    shown = metric(cloud, "resource", "show", "--type", "instance", vms[0])
    assert shown["flavor_id"] == "1" and "cpu_util" in shown["metrics"]
    assert len([m for m in gnocchi.metric.list() if m["name"] == "cpu_util" and m["resource_id"] in vms]) == 3

    for i, rid in enumerate(vms):
        if i == 0:
            args = []
            for m in range(6):
                args += ["-m", f"2026-01-05T12:{m:02d}:00+00:00@{10 * i + m}"]
            plain(cloud, "measures", "add", "--resource-id", rid, "cpu_util", *args)
        else:
            gnocchi.metric.add_measures("cpu_util", [{"timestamp": f"2026-01-05T12:{m:02d}:00+00:00",
                                                      "value": 10 * i + m} for m in range(6)], resource_id=rid)
    shown = metric(cloud, "measures", "show", "--resource-id", vms[1], "cpu_util", "--utc",
                   "--aggregation", "max", "--granularity", "60",
                   "--start", "2026-01-05T12:02:00+00:00", "--stop", "2026-01-05T12:04:00+00:00")
    assert [(m["timestamp"], m["granularity"], m["value"]) for m in shown] == [
        ("2026-01-05T12:02:00+00:00", 60.0, 12.0), ("2026-01-05T12:03:00+00:00", 60.0, 13.0)]
    hourly = gnocchi.metric.get_measures("cpu_util", resource_id=vms[1], aggregation="mean", granularity=3600)
    assert [(ts.astimezone(UTC).isoformat(), value) for ts, _g, value in hourly] == [
        ("2026-01-05T12:00:00+00:00", 12.5)]
    resampled = gnocchi.metric.get_measures("cpu_util", resource_id=vms[0], aggregation="sum", granularity=60,
                                            resample=180)
    assert [value for _ts, _g, value in resampled] == [3.0, 12.0]

    grouped = metric(cloud, "aggregates", "--resource-type", "instance", "--granularity", "60",
                     "--groupby", "flavor_id", "(aggregate sum (metric cpu_util mean))", "host='node1'",
                     "--start", "2026-01-05T12:00:00+00:00", "--stop", "2026-01-05T12:02:00+00:00")
    rows = sorted((g["group"], g["timestamp"][:16], g["value"]) for g in grouped)
    assert rows == [("flavor_id: 1", "2026-01-05T12:00", 10.0), ("flavor_id: 1", "2026-01-05T12:01", 12.0),
                    ("flavor_id: 2", "2026-01-05T12:00", 20.0), ("flavor_id: 2", "2026-01-05T12:01", 21.0)]
    overall = gnocchi.aggregates.fetch("(aggregate max (metric cpu_util mean))", resource_type="instance",
                                       search="flavor_id='1' and host=node1", granularity=60)
    assert leaf_values(overall["measures"]) == [10.0 + m for m in range(6)]
    # the older aggregation API (`metric measures aggregation`): by metric ids, and by a search with groupby
    ids = [gnocchi.metric.get("cpu_util", resource_id=rid)["id"] for rid in vms[:2]]
    summed = gnocchi.metric.aggregation(ids, aggregation="mean", reaggregation="sum", granularity=60)
    assert [value for _ts, _g, value in summed] == [10.0 + 2 * m for m in range(6)]
    by_group = metric(cloud, "measures", "aggregation", "-m", "cpu_util", "--query", "host='node1'",
                      "--resource-type", "instance", "--groupby", "flavor_id", "--granularity", "60",
                      "--reaggregation", "max", "--utc")
    assert sorted((row["group"], row["value"]) for row in by_group if row["timestamp"].startswith(
        "2026-01-05T12:00")) == [("flavor_id: 1", 10.0), ("flavor_id: 2", 20.0)]
    cpu = gnocchi.metric.get("cpu_util", resource_id=vms[2])
    assert cpu["archive_policy"]["name"] == "medium" and cpu["resource"]["id"] == vms[2]
    by_id = gnocchi.aggregates.fetch(f"(metric {cpu['id']} max)", granularity=60)
    assert leaf_values(by_id["measures"])[:2] == [20.0, 21.0]

    # a standalone metric and the batch command
    loose = metric(cloud, "create", "--archive-policy-name", "low", "--unit", "B", "loose")
    assert loose["archive_policy/name"] == "low" and loose["unit"] == "B"
    gnocchi.metric.add_measures(loose["id"], [{"timestamp": "2026-01-05T12:00:00+00:00", "value": 5},
                                              {"timestamp": "2026-01-05T12:01:00+00:00", "value": 7}])
    assert [value for _ts, _g, value in gnocchi.metric.get_measures(loose["id"], aggregation="mean")] == [6.0]

    # another project's member: not found (resource, metric, measures), an empty list; the admin sees it
    name = f"tele-{uuid.uuid4().hex[:6]}"
    password = cloud.new_member(name)
    refused = cloud.openstack("metric", "resource", "show", "--type", "instance", vms[0], user=name, project=name,
                              password=password, check=False)
    assert refused.returncode != 0 and "does not exist" in refused.stderr, refused.stderr
    outsider = Gnocchi(session=cloud.sdk(user=name, password=password).session,
                       adapter_options={"interface": "public"})
    for call in (lambda: outsider.metric.get(loose["id"]), lambda: outsider.metric.get_measures(loose["id"]),
                 lambda: outsider.metric.add_measures(loose["id"], [{"timestamp": "2026-01-05", "value": 1}])):
        with pytest.raises(gnocchi_errors.NotFound) as refusal:
            call()
        assert "does not exist" in str(refusal.value), refusal.value
    assert outsider.resource.list() == []
    assert outsider.metric.list() == []
    admin = Gnocchi(session=cloud.sdk().session, adapter_options={"interface": "public"})
    assert admin.resource.get("instance", vms[0])["id"] == vms[0]
    plain(cloud, "resource", "delete", vms[2])
    with pytest.raises(gnocchi_errors.NotFound) as refusal:
        gnocchi.resource.get("generic", vms[2])
    assert "does not exist" in str(refusal.value)
    deleted = metric(cloud, "resource", "batch", "delete", "--type", "instance", "host='node1' and flavor_id='1'")
    assert deleted["deleted"] == 2
    assert gnocchi.resource.search(resource_type="instance", query={"=": {"host": "node1"}}) == []
