"""Telemetry with the real gnocchiclient (`openstack metric ...`) against a running cloud: resources
with metrics, `metric list`, `measures add`, `measures show` with --aggregation/--granularity/--start/
--stop/--resample, batch, `metric aggregates` with a search and --groupby, archive policies; another
project's resource is not found."""
from __future__ import annotations

import json
import uuid
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


def test_metric_cli(live_cloud) -> None:
    cloud = live_cloud
    policies = {p["name"] for p in metric(cloud, "archive-policy", "list")}
    assert {"low", "medium", "high", "bool"} <= policies
    vms = []
    for i, flavor in enumerate(("1", "1", "2")):
        rid = str(uuid.uuid4())
        made = metric(cloud, "resource", "create", "--type", "instance", "-a", f"flavor_id:{flavor}",
                      "-a", "host:node1", "-a", f"display_name:vm{i}", "-n", "cpu_util:medium", rid)
        assert made["id"] == rid and made["display_name"] == f"vm{i}"
        vms.append(rid)
    listed = metric(cloud, "resource", "list", "--type", "instance")
    assert set(vms) <= {r["id"] for r in listed}  # (other tests' servers may be polled into the same cloud)
    shown = metric(cloud, "resource", "show", "--type", "instance", vms[0])
    assert shown["flavor_id"] == "1" and "cpu_util" in shown["metrics"]
    assert len([m for m in metric(cloud, "list") if m["name"] == "cpu_util" and m["resource_id"] in vms]) == 3

    for i, rid in enumerate(vms):
        args = []
        for m in range(6):
            args += ["-m", f"2026-01-05T12:{m:02d}:00+00:00@{10 * i + m}"]
        plain(cloud, "measures", "add", "--resource-id", rid, "cpu_util", *args)
    shown = metric(cloud, "measures", "show", "--resource-id", vms[1], "cpu_util", "--utc",
                   "--aggregation", "max", "--granularity", "60",
                   "--start", "2026-01-05T12:02:00+00:00", "--stop", "2026-01-05T12:04:00+00:00")
    assert [(m["timestamp"], m["granularity"], m["value"]) for m in shown] == [
        ("2026-01-05T12:02:00+00:00", 60.0, 12.0), ("2026-01-05T12:03:00+00:00", 60.0, 13.0)]
    hourly = metric(cloud, "measures", "show", "--resource-id", vms[1], "cpu_util", "--utc",
                    "--aggregation", "mean", "--granularity", "3600")
    assert [(m["timestamp"], m["value"]) for m in hourly] == [("2026-01-05T12:00:00+00:00", 12.5)]
    resampled = metric(cloud, "measures", "show", "--resource-id", vms[0], "cpu_util", "--utc",
                       "--aggregation", "sum", "--granularity", "60", "--resample", "180")
    assert [m["value"] for m in resampled] == [3.0, 12.0]

    grouped = metric(cloud, "aggregates", "--resource-type", "instance", "--granularity", "60",
                     "--groupby", "flavor_id", "(aggregate sum (metric cpu_util mean))", "host='node1'",
                     "--start", "2026-01-05T12:00:00+00:00", "--stop", "2026-01-05T12:02:00+00:00")
    rows = sorted((g["group"], g["timestamp"][:16], g["value"]) for g in grouped)
    assert rows == [("flavor_id: 1", "2026-01-05T12:00", 10.0), ("flavor_id: 1", "2026-01-05T12:01", 12.0),
                    ("flavor_id: 2", "2026-01-05T12:00", 20.0), ("flavor_id: 2", "2026-01-05T12:01", 21.0)]
    overall = metric(cloud, "aggregates", "--resource-type", "instance", "--granularity", "60",
                     "(aggregate max (metric cpu_util mean))", "flavor_id='1' and host=node1")
    assert [row["value"] for row in overall] == [10.0 + m for m in range(6)]
    # the older aggregation API (`metric measures aggregation`): by metric ids, and by a search with groupby
    ids = [metric(cloud, "show", "--resource-id", rid, "cpu_util")["id"] for rid in vms[:2]]
    summed = metric(cloud, "measures", "aggregation", "-m", *ids, "--aggregation", "mean", "--reaggregation", "sum",
                    "--granularity", "60", "--utc")
    assert [row["value"] for row in summed] == [10.0 + 2 * m for m in range(6)]
    by_group = metric(cloud, "measures", "aggregation", "-m", "cpu_util", "--query", "host='node1'",
                      "--resource-type", "instance", "--groupby", "flavor_id", "--granularity", "60",
                      "--reaggregation", "max", "--utc")
    assert sorted((row["group"], row["value"]) for row in by_group if row["timestamp"].startswith(
        "2026-01-05T12:00")) == [("flavor_id: 1", 10.0), ("flavor_id: 2", 20.0)]
    cpu = metric(cloud, "show", "--resource-id", vms[2], "cpu_util")
    assert cpu["archive_policy/name"] == "medium" and cpu["resource/id"] == vms[2]
    by_id = metric(cloud, "aggregates", "--granularity", "60", f"(metric {cpu['id']} max)")
    assert [row["value"] for row in by_id][:2] == [20.0, 21.0]

    # a standalone metric and the batch command
    loose = metric(cloud, "create", "--archive-policy-name", "low", "--unit", "B", "loose")
    assert loose["archive_policy/name"] == "low" and loose["unit"] == "B"
    plain(cloud, "measures", "add", loose["id"], "-m", "2026-01-05T12:00:00+00:00@5", "-m",
          "2026-01-05T12:01:00+00:00@7")
    assert [m["value"] for m in metric(cloud, "measures", "show", loose["id"], "--aggregation", "mean")] == [6.0]

    # another project's member: not found (resource, metric, measures), an empty list; the admin sees it
    name = f"tele-{uuid.uuid4().hex[:6]}"
    cloud.openstack("project", "create", name)
    cloud.openstack("user", "create", "--project", name, "--password", "pw-" + name, name)
    cloud.openstack("role", "add", "--project", name, "--user", name, "member")

    def outsider(*args: str) -> Any:
        return cloud.openstack("metric", *args, user=name, project=name, password="pw-" + name, check=False)

    for args in (("resource", "show", "--type", "instance", vms[0]), ("show", loose["id"]),
                 ("measures", "show", loose["id"]), ("measures", "add", loose["id"], "-m", "2026-01-05@1")):
        refused = outsider(*args)
        assert refused.returncode != 0 and "does not exist" in refused.stderr, (args, refused.stderr)
    assert json.loads(outsider("resource", "list", "-f", "json").stdout) == []
    assert json.loads(outsider("list", "-f", "json").stdout) == []
    assert metric(cloud, "resource", "show", "--type", "instance", vms[0], user="admin")["id"] == vms[0]
    plain(cloud, "resource", "delete", vms[2])
    gone = cloud.openstack("metric", "resource", "show", vms[2], user="demo", check=False)
    assert gone.returncode != 0 and "does not exist" in gone.stderr
    deleted = metric(cloud, "resource", "batch", "delete", "--type", "instance", "host='node1' and flavor_id='1'")
    assert deleted["deleted"] == 2
    assert metric(cloud, "resource", "search", "--type", "instance", "host='node1'") == []
