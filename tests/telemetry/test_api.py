"""Gnocchi v1 at /metric/v1 with the in-process client: policies, rules, types, resources (history,
search), metrics, measures (get/post/batch), aggregates (by id, by search, groupby), capabilities,
status; Gnocchi's error format; another project's things answer 404; lists cost constant queries."""
from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.api_client import SeededCloud

pytestmark = pytest.mark.django_db

INSTANCE = {"flavor_id": "1", "host": "node1", "display_name": "vm"}


def _gnocchi_error(response, status: int, text: str = "") -> dict:
    assert response.status_code == status, (response.status_code, response.content[:400])
    body = response.json()
    assert set(body) == {"code", "title", "description"} and body["code"] == status, body
    assert text in str(body["description"]), body
    return body


def _resource(client, rid: str | None = None, rtype: str = "instance", **attrs) -> dict:
    body = {"id": rid or str(uuid.uuid4()), **(INSTANCE if rtype == "instance" else {}), **attrs}
    response = client.post(f"resource/{rtype}", body)
    assert response.status_code == 201, response.content
    return response.json()


def test_versions_capabilities_and_catalog(cloud: SeededCloud) -> None:
    assert cloud.anonymous.get("/metric").json()["versions"][0]["id"] == "v1.0"
    caps = cloud.member.get("capabilities").json()
    assert "mean" in caps["aggregation_methods"] and "aggregate" in caps["dynamic_aggregation_methods"]
    from apps.identity.models import Service

    assert Service.objects.filter(type="metric", name="gnocchi").exists()
    _gnocchi_error(cloud.anonymous.get("capabilities"), 401)
    _gnocchi_error(cloud.member.get("status"), 403)
    assert "storage" in cloud.admin.get("status").json()


def test_archive_policies_shipped_and_admin_crud(cloud: SeededCloud) -> None:
    names = {p["name"] for p in cloud.member.get("archive_policy").json()}
    assert {"bool", "low", "medium", "high"} <= names
    low = cloud.member.get("archive_policy/low").json()
    assert low["definition"] == [{"granularity": "0:05:00", "points": 8640, "timespan": "30 days, 0:00:00"}]
    body = {"name": "p1", "definition": [{"granularity": "1s", "timespan": "1 hour"}, {"points": 48,
                                                                                      "granularity": "1 hour"}]}
    _gnocchi_error(cloud.member.post("archive_policy", body), 403)
    made = cloud.admin.post("archive_policy", body)
    assert made.status_code == 201, made.content
    assert made.json()["definition"][1] == {"granularity": "1:00:00", "points": 48, "timespan": "2 days, 0:00:00"}
    _gnocchi_error(cloud.admin.post("archive_policy", body), 409, "Archive policy p1 already exists")
    _gnocchi_error(cloud.admin.post("archive_policy", {"name": "bad", "definition": [{"granularity": "x"}]}), 400)
    changed = cloud.admin.patch("archive_policy/p1", {"definition": [{"granularity": "1s", "timespan": "2 hours"},
                                                                      {"granularity": "1 hour", "points": 24}]})
    assert changed.status_code == 200 and changed.json()["definition"][0]["points"] == 7200
    _gnocchi_error(cloud.admin.patch("archive_policy/p1", {"definition": [{"granularity": 5, "points": 3}]}), 400)
    rule = cloud.admin.post("archive_policy_rule", {"name": "r1", "metric_pattern": "disk.*",
                                                    "archive_policy_name": "p1"})
    assert rule.status_code == 201 and rule.json()["archive_policy_name"] == "p1"
    _gnocchi_error(cloud.admin.delete("archive_policy/p1"), 400, "still in use")
    metric = cloud.member.post("metric", {"name": "disk.read"}).json()
    assert metric["archive_policy"]["name"] == "p1"  # the rule's policy
    assert cloud.member.post("metric", {"name": "cpu"}).json()["archive_policy"]["name"] == "low"  # default rule
    _gnocchi_error(cloud.member.get("archive_policy_rule/nope"), 404, "Archive policy rule nope does not exist")
    assert cloud.admin.patch("archive_policy_rule/r1", {"name": "r2"}).json()["name"] == "r2"
    assert cloud.admin.delete("archive_policy_rule/r2").status_code == 204
    _gnocchi_error(cloud.member.get("archive_policy/nope"), 404, "Archive policy nope does not exist")


def test_resource_types(cloud: SeededCloud) -> None:
    types = {t["name"]: t for t in cloud.member.get("resource_type").json()}
    assert {"generic", "instance", "instance_disk", "instance_network_interface", "volume", "image"} <= set(types)
    assert types["instance"]["attributes"]["flavor_id"]["required"] is True
    _gnocchi_error(cloud.member.post("resource_type", {"name": "t1", "attributes": {}}), 403)
    made = cloud.admin.post("resource_type", {"name": "t1", "attributes": {"size": {"type": "number"}}})
    assert made.status_code == 201, made.content
    _gnocchi_error(cloud.admin.post("resource_type", {"name": "t1"}), 409, "Resource type t1 already exists")
    _gnocchi_error(cloud.member.get("resource_type/nope"), 404, "Resource type nope does not exist")
    assert cloud.admin.delete("resource_type/t1").status_code == 204


def test_resource_crud_history_and_metrics(cloud: SeededCloud) -> None:
    rid = str(uuid.uuid4())
    made = _resource(cloud.member, rid, metrics={"cpu_util": {"archive_policy_name": "medium"}})
    assert made["project_id"] == cloud.demo_project.id and made["display_name"] == "vm"
    assert set(made["metrics"]) == {"cpu_util"}
    _gnocchi_error(cloud.member.post("resource/instance", {"id": rid, **INSTANCE}), 409, f"Resource {rid} already")
    _gnocchi_error(cloud.member.post("resource/instance", {"id": "x", "host": "h"}), 400)
    _gnocchi_error(cloud.member.post("resource/instance", {"id": "y", **INSTANCE, "bogus": 1}), 400)
    _gnocchi_error(cloud.member.post("resource/instance", {"id": "z", **INSTANCE,
                                                          "project_id": cloud.other_project.id}), 400)
    _gnocchi_error(cloud.reader.post("resource/instance", {"id": "w", **INSTANCE}), 403)
    shown = cloud.member.get(f"resource/instance/{rid}").json()
    assert shown["flavor_id"] == "1" and shown["metrics"]["cpu_util"] == made["metrics"]["cpu_util"]
    generic = cloud.member.get(f"resource/generic/{rid}").json()
    assert generic["type"] == "instance"
    patched = cloud.member.patch(f"resource/instance/{rid}", {"flavor_id": "2", "metrics": {"memory": {}}})
    assert patched.status_code == 200, patched.content
    assert patched.json()["flavor_id"] == "2" and set(patched.json()["metrics"]) == {"cpu_util", "memory"}
    history = cloud.member.get(f"resource/instance/{rid}/history").json()
    assert [h["flavor_id"] for h in history] == ["1", "2"] and history[0]["revision_end"] is not None
    # a non-UUID id is kept as original_resource_id
    named = _resource(cloud.member, "my-disk", "instance_disk", name="vda", instance_id=rid)
    assert named["original_resource_id"] == "my-disk" and named["id"] != "my-disk"
    assert cloud.member.get("resource/instance_disk/my-disk").json()["id"] == named["id"]
    # metrics under a resource, by name
    metric = cloud.member.get(f"resource/generic/{rid}/metric/cpu_util").json()
    assert metric["archive_policy"]["name"] == "medium" and metric["resource"]["id"] == rid
    listed = cloud.member.get(f"resource/generic/{rid}/metric").json()
    assert {m["name"] for m in listed} == {"cpu_util", "memory"}
    assert cloud.member.delete(f"resource/generic/{rid}/metric/memory").status_code == 204
    _gnocchi_error(cloud.member.get(f"resource/generic/{rid}/metric/memory"), 404, "Metric memory does not exist")
    _gnocchi_error(cloud.member.post(f"resource/generic/{rid}/metric", {"cpu_util": {}}), 409,
                   "Named metric cpu_util already exists")
    assert cloud.member.delete(f"resource/instance/{rid}").status_code == 204
    _gnocchi_error(cloud.member.get(f"resource/instance/{rid}"), 404, f"Resource {rid} does not exist")
    _gnocchi_error(cloud.member.get(f"metric/{metric['id']}"), 404)  # its metrics went with it


def test_resource_list_and_search(cloud: SeededCloud) -> None:
    a = _resource(cloud.member, display_name="alpha", flavor_id="1")
    b = _resource(cloud.member, display_name="beta", flavor_id="2")
    _resource(cloud.member, rtype="volume", display_name="vol")
    assert {r["id"] for r in cloud.member.get("resource/instance").json()} == {a["id"], b["id"]}
    assert len(cloud.member.get("resource/generic").json()) == 3
    found = cloud.member.post("search/resource/instance", {"=": {"flavor_id": "2"}}).json()
    assert [r["id"] for r in found] == [b["id"]]
    found = cloud.member.post('search/resource/instance?filter=display_name%3D%22alpha%22%20or%20flavor_id%3D%222%22')
    assert {r["id"] for r in found.json()} == {a["id"], b["id"]}
    found = cloud.member.post("search/resource/generic", {"and": [{"=": {"type": "instance"}},
                                                                  {"not": {"=": {"id": a["id"]}}}]}).json()
    assert [r["id"] for r in found] == [b["id"]]
    _gnocchi_error(cloud.member.post("search/resource/instance", {"=": {"nope": 1}}), 400)
    _gnocchi_error(cloud.member.post("search/resource/instance", {"=": 3}), 400)
    page = cloud.member.get("resource/instance?limit=1&sort=display_name:desc").json()
    assert [r["id"] for r in page] == [b["id"]]
    assert [r["id"] for r in cloud.member.get(f"resource/instance?sort=display_name:desc&marker={b['id']}")
            .json()] == [a["id"]]


def test_metric_crud_and_measures(cloud: SeededCloud) -> None:
    metric = cloud.member.post("metric", {"name": "temp", "unit": "C", "archive_policy_name": "medium"})
    assert metric.status_code == 201, metric.content
    mid = metric.json()["id"]
    assert [m["id"] for m in cloud.member.get("metric").json()] == [mid]
    measures = [{"timestamp": f"2026-01-05T12:{m:02d}:{s:02d}", "value": float(m * 60 + s)}
                for m in range(10) for s in (0, 30)]
    assert cloud.member.post(f"metric/{mid}/measures", measures).status_code == 202
    points = cloud.member.get(f"metric/{mid}/measures?granularity=60").json()
    assert len(points) == 10 and points[0] == ["2026-01-05T12:00:00+00:00", 60.0, 15.0]
    hourly = cloud.member.get(f"metric/{mid}/measures?aggregation=max").json()
    assert hourly[0] == ["2026-01-05T12:00:00+00:00", 3600.0, 570.0] and len(hourly) == 11
    bounded = cloud.member.get(f"metric/{mid}/measures?granularity=60&start=2026-01-05T12:03:00"
                               "&stop=2026-01-05T12:05:00&aggregation=count").json()
    assert bounded == [["2026-01-05T12:03:00+00:00", 60.0, 2.0], ["2026-01-05T12:04:00+00:00", 60.0, 2.0]]
    resampled = cloud.member.get(f"metric/{mid}/measures?granularity=60&resample=300&aggregation=sum").json()
    assert [p[2] for p in resampled] == [sum(m * 60 + s for m in range(5) for s in (0, 30)),
                                         sum(m * 60 + s for m in range(5, 10) for s in (0, 30))]
    _gnocchi_error(cloud.member.get(f"metric/{mid}/measures?aggregation=median"), 404,
                   "Aggregation method 'median'")
    _gnocchi_error(cloud.member.get(f"metric/{mid}/measures?granularity=7"), 404)
    _gnocchi_error(cloud.member.get(f"metric/{mid}/measures?start=yesterday-ish"), 400)
    _gnocchi_error(cloud.member.post(f"metric/{mid}/measures", [{"timestamp": "bad", "value": 1}]), 400)
    _gnocchi_error(cloud.member.post(f"metric/{mid}/measures", [{"timestamp": 1, "value": "x"}]), 400)
    _gnocchi_error(cloud.reader.post(f"metric/{mid}/measures", measures), 403)
    _gnocchi_error(cloud.member.get(f"metric/{uuid.uuid4()}"), 404, "does not exist")
    _gnocchi_error(cloud.member.get("metric/not-a-uuid"), 404)
    _gnocchi_error(cloud.member.post("metric", {"archive_policy_name": "nope"}), 404, "Archive policy nope")
    assert cloud.member.delete(f"metric/{mid}").status_code == 204


def test_batches(cloud: SeededCloud) -> None:
    res = _resource(cloud.member, metrics={"cpu_util": {}})
    m1 = cloud.member.post("metric", {"name": "a"}).json()["id"]
    measure = [{"timestamp": "2026-01-05T12:00:00", "value": 4.0}]
    assert cloud.member.post("batch/metrics/measures", {m1: measure, res["metrics"]["cpu_util"]: measure}) \
        .status_code == 202
    assert cloud.member.get(f"metric/{m1}/measures").json() == [["2026-01-05T12:00:00+00:00", 300.0, 4.0]]
    stranger = str(uuid.uuid4())
    body = _gnocchi_error(cloud.member.post("batch/metrics/measures", {m1: measure, stranger: measure}), 400)
    assert body["description"] == {"cause": "Unknown metrics", "detail": [stranger]}
    rid = res["id"]
    _gnocchi_error(cloud.member.post("batch/resources/metrics/measures", {rid: {"mem": measure}}), 400,
                   "Unknown metrics")
    made = cloud.member.post("batch/resources/metrics/measures?create_metrics=true",
                             {rid: {"mem": {"archive_policy_name": "high", "measures": measure},
                                    "cpu_util": measure}})
    assert made.status_code == 202, made.content
    mem = cloud.member.get(f"resource/generic/{rid}/metric/mem/measures?granularity=1").json()
    assert mem == [["2026-01-05T12:00:00+00:00", 1.0, 4.0]]
    assert cloud.member.get(f"resource/generic/{rid}/metric/cpu_util/measures").json()[0][2] == 4.0
    from apps.telemetry.models import Measure

    before = Measure.objects.count()
    _gnocchi_error(cloud.member.post("batch/resources/metrics/measures", {str(uuid.uuid4()): {"x": measure}}),
                   400)
    assert Measure.objects.count() == before


def test_aggregates(cloud: SeededCloud) -> None:
    resources = []
    for i, flavor in enumerate(("1", "1", "2")):
        res = _resource(cloud.member, display_name=f"vm{i}", flavor_id=flavor,
                        metrics={"cpu_util": {"archive_policy_name": "medium"}})
        measures = [{"timestamp": f"2026-01-05T12:0{m}:00", "value": float(10 * i + m)} for m in range(3)]
        cloud.member.post(f"resource/generic/{res['id']}/metric/cpu_util/measures", measures)
        resources.append(res)
    ids = [r["metrics"]["cpu_util"] for r in resources]
    one = cloud.member.post("aggregates?granularity=60", {"operations": f"(metric {ids[0]} mean)"}).json()
    assert one["measures"][ids[0]]["mean"][1] == ["2026-01-05T12:01:00+00:00", 60.0, 1.0]
    agg = cloud.member.post("aggregates?granularity=60",
                            {"operations": f"(aggregate mean (metric (({ids[0]} mean) ({ids[1]} mean))))"}).json()
    assert [p[2] for p in agg["measures"]["aggregated"]] == [5.0, 6.0, 7.0]
    by_name = cloud.member.post("aggregates?granularity=60", {
        "operations": "(aggregate max (metric cpu_util mean))", "resource_type": "instance",
        "search": {"=": {"project_id": cloud.demo_project.id}}}).json()
    assert [p[2] for p in by_name["measures"]["aggregated"]] == [20.0, 21.0, 22.0]
    per_resource = cloud.member.post("aggregates?granularity=60", {
        "operations": "(metric cpu_util mean)", "resource_type": "instance", "search": "flavor_id='2'"}).json()
    assert per_resource["measures"][resources[2]["id"]]["cpu_util"]["mean"][0][2] == 20.0
    grouped = cloud.member.post("aggregates?granularity=60&groupby=flavor_id", {
        "operations": "(aggregate sum (metric cpu_util mean))", "resource_type": "instance",
        "search": "project_id!=null"}).json()
    assert [g["group"] for g in grouped] == [{"flavor_id": "1"}, {"flavor_id": "2"}]
    assert [p[2] for p in grouped[0]["measures"]["measures"]["aggregated"]] == [10.0, 12.0, 14.0]
    math_op = cloud.member.post("aggregates?granularity=60", {"operations": f"(* (metric {ids[0]} mean) 2)"}).json()
    assert [p[2] for p in math_op["measures"][ids[0]]["mean"]] == [0.0, 2.0, 4.0]
    resampled = cloud.member.post("aggregates?granularity=60", {
        "operations": f"(resample sum 180 (metric {ids[1]} mean))"}).json()
    assert resampled["measures"][ids[1]]["mean"] == [["2026-01-05T12:00:00+00:00", 180.0, 33.0]]
    _gnocchi_error(cloud.member.post("aggregates", {"operations": "(metric"}), 400)
    _gnocchi_error(cloud.member.post("aggregates", {"operations": "(metric cpu_util mean)"}), 400)
    _gnocchi_error(cloud.member.post("aggregates", {"operations": f"(foo (metric {ids[0]} mean))"}), 400)
    # another project's metric is unknown to olga
    _gnocchi_error(cloud.other.post("aggregates", {"operations": f"(metric {ids[0]} mean)"}), 400, "not found")
    theirs = cloud.other.post("aggregates?granularity=60", {
        "operations": "(aggregate max (metric cpu_util mean))", "resource_type": "instance", "search": {}}).json()
    assert theirs["measures"]["aggregated"] == []


def test_isolation(cloud: SeededCloud) -> None:
    res = _resource(cloud.member, metrics={"cpu_util": {}})
    rid, mid = res["id"], res["metrics"]["cpu_util"]
    free = cloud.member.post("metric", {"name": "x"}).json()["id"]
    measure = [{"timestamp": "2026-01-05T12:00:00", "value": 1.0}]
    for method, path, body in (("GET", f"resource/instance/{rid}", None), ("GET", f"resource/generic/{rid}", None),
                               ("PATCH", f"resource/instance/{rid}", {"flavor_id": "9"}),
                               ("DELETE", f"resource/instance/{rid}", None),
                               ("GET", f"resource/generic/{rid}/history", None),
                               ("GET", f"resource/generic/{rid}/metric/cpu_util", None),
                               ("POST", f"resource/generic/{rid}/metric/cpu_util/measures", measure),
                               ("GET", f"metric/{mid}", None), ("GET", f"metric/{free}", None),
                               ("GET", f"metric/{mid}/measures", None), ("POST", f"metric/{mid}/measures", measure),
                               ("DELETE", f"metric/{free}", None)):
        _gnocchi_error(cloud.other.call(method, path, body), 404, "does not exist")
    assert cloud.other.get("resource/generic").json() == []
    assert cloud.other.get("metric").json() == []
    assert cloud.other.post("search/resource/generic", {"=": {"id": rid}}).json() == []
    _gnocchi_error(cloud.other.post("batch/metrics/measures", {mid: measure}), 400)
    _gnocchi_error(cloud.other.post("batch/resources/metrics/measures", {rid: {"cpu_util": measure}}), 400)
    _gnocchi_error(cloud.other.get(f"resource/generic?marker={rid}"), 400)
    from apps.telemetry.models import Measure, Resource

    assert Resource.objects.get(pk=rid).attributes["flavor_id"] == "1" and not Measure.objects.exists()
    # the admin sees every project's
    assert cloud.admin.get(f"resource/instance/{rid}").status_code == 200
    assert {m["id"] for m in cloud.admin.get("metric").json()} >= {mid, free}
    # a reader sees, but may not change
    assert cloud.reader.get(f"resource/instance/{rid}").status_code == 200
    _gnocchi_error(cloud.reader.patch(f"resource/instance/{rid}", {"flavor_id": "9"}), 403)
    _gnocchi_error(cloud.reader.delete(f"metric/{free}"), 403)


def test_lists_cost_constant_queries(cloud: SeededCloud) -> None:
    def counts() -> list[int]:
        out = []
        for path, method in (("resource/instance", "GET"), ("resource/generic?details=true", "GET"),
                             ("search/resource/instance", "POST"), ("metric", "GET"), ("archive_policy", "GET"),
                             ("archive_policy_rule", "GET"), ("resource_type", "GET")):
            with CaptureQueriesContext(connection) as queries:
                assert cloud.member.call(method, path, {} if method == "POST" else None).status_code == 200
            out.append(len(queries))
        return out

    def grow(n: int) -> None:
        for _ in range(n):
            _resource(cloud.member, metrics={"a": {}, "b": {}})
            cloud.member.post("metric", {"name": "loose"})

    grow(1)
    few = counts()
    grow(8)
    assert counts() == few
    mids = [m["id"] for m in cloud.member.get("metric").json()]

    def aggregate_queries(n: int) -> int:
        ops = "(aggregate mean (metric (" + " ".join(f"({m} mean)" for m in mids[:n]) + ")))"
        with CaptureQueriesContext(connection) as queries:
            assert cloud.member.post("aggregates", {"operations": ops}).status_code == 200
        return len(queries)

    assert aggregate_queries(2) == aggregate_queries(12)


def test_grouped_aggregates_cost_constant_queries(cloud: SeededCloud) -> None:
    def grouped_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = cloud.member.post("aggregates?groupby=flavor_id&groupby=display_name", {
                "operations": "(aggregate mean (metric cpu_util mean))", "resource_type": "instance",
                "search": "project_id!=null"})
            assert response.status_code == 200
        return len(queries)

    def grow(n: int) -> None:
        for i in range(n):
            res = _resource(cloud.member, flavor_id=str(i % 3), display_name=f"vm{uuid.uuid4().hex[:6]}",
                            metrics={"cpu_util": {}})
            cloud.member.post(f"resource/generic/{res['id']}/metric/cpu_util/measures",
                              [{"timestamp": "2026-01-05T12:00:00", "value": float(i)}])

    grow(2)
    few = grouped_queries()
    grow(10)  # 12 groups instead of 2
    assert grouped_queries() == few


def test_resource_batch_delete(cloud: SeededCloud) -> None:
    _resource(cloud.member, started_at="2026-01-01T00:00:00", ended_at="2026-01-02T00:00:00")
    keep = _resource(cloud.member)
    theirs = _resource(cloud.other)
    body = {"<": {"ended_at": "2026-06-01T00:00:00"}}
    _gnocchi_error(cloud.reader.call("DELETE", "resource/instance", body), 403)
    _gnocchi_error(cloud.member.call("DELETE", "resource/instance", {}), 400)
    assert cloud.member.call("DELETE", "resource/instance", body).json() == {"deleted": 1}
    assert {r["id"] for r in cloud.member.get("resource/instance").json()} == {keep["id"]}
    assert cloud.member.call("DELETE", "resource/generic?filter=id!=null").json() == {"deleted": 1}  # its own
    assert cloud.other.get(f"resource/instance/{theirs['id']}").status_code == 200


def test_legacy_aggregation_api(cloud: SeededCloud) -> None:
    """Gnocchi's older aggregation endpoints (`openstack metric measures aggregation`)."""
    ids = []
    for i, flavor in enumerate(("1", "2")):
        res = _resource(cloud.member, flavor_id=flavor, metrics={"cpu_util": {"archive_policy_name": "medium"}})
        cloud.member.post(f"resource/generic/{res['id']}/metric/cpu_util/measures",
                          [{"timestamp": f"2026-01-05T12:0{m}:00", "value": float(10 * i + m)} for m in range(4)])
        ids.append(res["metrics"]["cpu_util"])
    got = cloud.member.get(f"aggregation/metric?metric={ids[0]}&metric={ids[1]}&granularity=60"
                           "&aggregation=max&reaggregation=sum").json()
    assert [p[2] for p in got] == [10.0, 12.0, 14.0, 16.0]
    resampled = cloud.member.get(f"aggregation/metric?metric={ids[1]}&granularity=60&resample=120").json()
    assert resampled == [["2026-01-05T12:00:00+00:00", 120.0, 10.5], ["2026-01-05T12:02:00+00:00", 120.0, 12.5]]
    by_search = cloud.member.post("aggregation/resource/instance/metric/cpu_util?granularity=60&aggregation=mean"
                                  "&reaggregation=max", {"=": {"project_id": cloud.demo_project.id}}).json()
    assert [p[2] for p in by_search] == [10.0, 11.0, 12.0, 13.0]
    grouped = cloud.member.post("aggregation/resource/instance/metric/cpu_util?granularity=60&groupby=flavor_id"
                                "&filter=flavor_id!=null").json()
    assert [(g["group"], g["measures"][0][2]) for g in grouped] == [({"flavor_id": "1"}, 0.0),
                                                                   ({"flavor_id": "2"}, 10.0)]
    _gnocchi_error(cloud.member.get("aggregation/metric"), 400)
    _gnocchi_error(cloud.other.get(f"aggregation/metric?metric={ids[0]}"), 400, "not found")
    assert cloud.other.post("aggregation/resource/instance/metric/cpu_util?granularity=60", {}).json() == []


def test_resource_pages_follow_the_marker(cloud: SeededCloud) -> None:
    made = [_resource(cloud.member)["id"] for _ in range(5)]
    seen: list[str] = []
    marker = ""
    while True:
        page = cloud.member.get(f"resource/instance?limit=2{'&marker=' + marker if marker else ''}").json()
        if not page:
            break
        seen += [r["id"] for r in page]
        marker = page[-1]["id"]
    assert seen == made  # in creation (revision) order, each once
    _gnocchi_error(cloud.member.get(f"resource/instance?marker={uuid.uuid4()}"), 400, "Invalid marker")
