"""Gnocchi's aggregates API (a selector): operations over the caller's metrics, by id or, with a
resource search, by name on each matching resource, optionally grouped by resource attributes.
Supported: ``(metric ID AGG)``, ``(metric ((ID AGG) ...))``, ``(aggregate METHOD op)``,
``(resample METHOD GRANULARITY op)``, arithmetic ``(+ - * / op op|number)``, ``(abs op)``, ``(neg op)``.
Every metric's points come from its rollups, all metrics in one query."""
from __future__ import annotations

import datetime as dt
import math
import statistics
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from apps.core.errors import BadRequest
from apps.identity.policy import Actor
from apps.telemetry import selectors, timeutil
from apps.telemetry.models import Metric, Resource
from apps.telemetry.query import QueryError, parse_operations

Series = dict[int, dict[int, float]]          # granularity → bucket → value
Labeled = dict[tuple[str, ...], Series]        # label path → series
AGGREGATORS: dict[str, Callable[[list[float]], float]] = {
    "mean": statistics.fmean, "min": min, "max": max, "sum": math.fsum, "count": lambda v: float(len(v)),
    "median": statistics.median, "std": lambda v: statistics.stdev(v) if len(v) > 1 else math.nan,
    "first": lambda v: v[0], "last": lambda v: v[-1]}
def _power(a: float, b: float) -> float:
    try:
        result = a ** b
    except (OverflowError, ZeroDivisionError):
        return math.nan
    return result if isinstance(result, float | int) else math.nan  # a negative base's fractional power


BINARY: dict[str, Callable[[float, float], float]] = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "/": lambda a, b: a / b if b else math.nan, "**": _power}
UNARY: dict[str, Callable[[float], float]] = {"abs": abs, "neg": lambda a: -a}


def _refs(tree: Any, out: list[tuple[str, str]]) -> None:
    """The (metric ref, aggregation) pairs an operations tree reads."""
    if not isinstance(tree, list) or not tree:
        return
    if tree[0] == "metric":
        pairs = tree[1] if len(tree) == 2 and isinstance(tree[1], list) else [tree[1:]]
        for pair in pairs:
            if not isinstance(pair, list) or len(pair) != 2:
                raise BadRequest("Invalid operations: (metric ID AGGREGATION) expected")
            out.append((str(pair[0]), str(pair[1])))
        return
    for item in tree[1:]:
        _refs(item, out)


class Evaluator:
    def __init__(self, points: Mapping[tuple[str, str], Labeled], granularity: int | None,
                 needed_overlap: float, fill: float | str | None) -> None:
        self.points = points
        self.granularity = granularity
        self.needed_overlap = needed_overlap
        self.fill = fill

    def run(self, tree: Any) -> Labeled:
        if not isinstance(tree, list) or not tree or not isinstance(tree[0], str):
            raise BadRequest("Invalid operations")
        op = tree[0]
        if op == "metric":
            pairs = tree[1] if len(tree) == 2 and isinstance(tree[1], list) else [tree[1:]]
            out: Labeled = {}
            for ref, agg in pairs:
                out.update(self.points[(str(ref), str(agg))])
            return out
        if op == "aggregate" and len(tree) == 3:
            return {("aggregated",): self.aggregate(str(tree[1]), self.run(tree[2]))}
        if op == "resample" and len(tree) == 4:
            method, to = str(tree[1]), tree[2]
            try:
                seconds = int(timeutil.parse_duration(to))
            except (ValueError, OverflowError):
                raise BadRequest(f"Invalid operations: bad granularity {to!r}") from None
            if method not in AGGREGATORS or not 1 <= seconds <= timeutil.MAX_DURATION:
                raise BadRequest(f"Invalid operations: bad resample {method} {to}")
            return {label: self.resample(s, method, seconds) for label, s in self.run(tree[3]).items()}
        if op in UNARY and len(tree) == 2:
            fn = UNARY[op]
            return {label: {g: {b: fn(v) for b, v in pts.items()} for g, pts in s.items()}
                    for label, s in self.run(tree[1]).items()}
        if op in BINARY and len(tree) == 3:
            return self.binary(BINARY[op], tree[1], tree[2])
        raise BadRequest(f"Invalid operations: unknown operation {op!r}")

    def binary(self, fn: Callable[[float, float], float], left: Any, right: Any) -> Labeled:
        def number(x: Any) -> float | None:
            return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None

        a, b = number(left), number(right)
        if a is not None and b is not None:
            raise BadRequest("Invalid operations: an operation needs a metric")
        if b is not None:
            return {k: {g: {t: fn(v, b) for t, v in p.items()} for g, p in s.items()}
                    for k, s in self.run(left).items()}
        if a is not None:
            return {k: {g: {t: fn(a, v) for t, v in p.items()} for g, p in s.items()}
                    for k, s in self.run(right).items()}
        lhs, rhs = self.run(left), self.run(right)
        if len(rhs) != 1:
            raise BadRequest("Invalid operations: the right side of an operation must be one series")
        (other,) = rhs.values()
        return {k: {g: {t: fn(v, other[g][t]) for t, v in p.items() if t in other.get(g, {})}
                    for g, p in s.items()} for k, s in lhs.items()}

    def aggregate(self, method: str, labeled: Labeled) -> Series:
        if method not in AGGREGATORS:
            raise BadRequest(f"Invalid operations: unknown aggregation {method!r}")
        fn = AGGREGATORS[method]
        all_series = list(labeled.values())
        if not all_series:
            return {}
        common = set.intersection(*(set(s) for s in all_series))  # (the rollups read were of ?granularity only)
        out: Series = {}
        for g in common:
            stamps = sorted(set().union(*(s[g].keys() for s in all_series)))
            points: dict[int, float] = {}
            for t in stamps:
                values = [s[g][t] for s in all_series if t in s[g]]
                if len(values) * 100.0 < self.needed_overlap * len(all_series):
                    continue
                if self.fill not in (None, "null", "dropna") and len(values) < len(all_series):
                    values += [float(self.fill)] * (len(all_series) - len(values))  # type: ignore[arg-type]
                try:
                    value = fn(values)
                except (OverflowError, ValueError, statistics.StatisticsError):
                    continue
                if math.isfinite(value):
                    points[t] = value
            out[g] = points
        return out

    @staticmethod
    def resample(s: Series, method: str, to: int) -> Series:
        out: Series = {}
        for pts in s.values():
            groups: dict[int, list[float]] = {}
            for t in sorted(pts):
                groups.setdefault(int(t // to) * to, []).append(pts[t])
            out[to] = {}
            for t, v in groups.items():
                try:
                    out[to][t] = AGGREGATORS[method](v)
                except (OverflowError, ValueError, statistics.StatisticsError):
                    continue
        return out


def _render(labeled: Labeled) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label, s in labeled.items():
        node = out
        for part in label[:-1]:
            node = node.setdefault(part, {})
        node[label[-1]] = [[timeutil.from_epoch(t).isoformat(), float(g), v]
                           for g in sorted(s, reverse=True) for t, v in sorted(s[g].items()) if math.isfinite(v)]
    return out


def _evaluate(tree: Any, pairs: list[tuple[str, str]], metrics_for: Mapping[str, list[tuple[tuple[str, ...], Metric]]],
              *, start: dt.datetime | None, stop: dt.datetime | None, granularity: int | None,
              needed_overlap: float, fill: Any, stats: Mapping[Any, Any] | None = None) -> dict[str, Any]:
    """``stats``: the rollups already read (every group of a groupby from one query), else read here."""
    chosen: list[tuple[tuple[str, ...], Metric, str]] = []
    for ref, agg in pairs:
        for label, metric in metrics_for.get(ref, []):
            selectors.check_aggregation(metric, agg, granularity)
            chosen.append(((*label, agg), metric, agg))
    granularities = {granularity} if granularity is not None else \
        {g for _, m, _ in chosen for g in m.archive_policy.granularities}
    if stats is None:
        stats = selectors.rollup_stats(metric_ids={m.id for _, m, _ in chosen}, granularities=granularities,
                                       start=start, stop=stop)
    points: dict[tuple[str, str], Labeled] = {pair: {} for pair in pairs}
    for ref, agg in pairs:
        for label, metric in metrics_for.get(ref, []):
            per_g = stats.get(metric.id, {})
            s: Series = {}
            for g in (metric.archive_policy.granularities if granularity is None else [granularity]):
                s[g] = {b: v for b, stat in per_g.get(g, {}).items()
                        if (v := selectors.stat_value(stat, agg)) is not None}
            points[(ref, agg)][(*label, agg)] = s
    return _render(Evaluator(points, granularity, needed_overlap, fill).run(tree))


def aggregates(*, actor: Actor, operations: Any, search: Any = None, resource_type: str = "generic",
               start: dt.datetime | None = None, stop: dt.datetime | None = None, granularity: int | None = None,
               needed_overlap: float = 100.0, fill: Any = None, groupby: Sequence[str] = ()) -> Any:
    try:
        tree = parse_operations(operations) if isinstance(operations, str) else operations
    except QueryError as exc:
        raise BadRequest(str(exc)) from None
    pairs: list[tuple[str, str]] = []
    _refs(tree, pairs)
    if not pairs:
        raise BadRequest("Invalid operations: no metric referenced")
    options = {"start": start, "stop": stop, "granularity": granularity, "needed_overlap": needed_overlap,
               "fill": fill}
    if search is None:
        ids = []
        for ref, _ in pairs:
            try:
                ids.append(uuid.UUID(ref))
            except ValueError:
                raise BadRequest(f"Invalid operations: {ref} is not a metric id (give a search to use names)") \
                    from None
        found = {str(m.id): m for m in selectors.metrics(actor=actor).filter(pk__in=ids)}
        missing = sorted({ref for ref, _ in pairs if str(uuid.UUID(ref)) not in found})
        if missing:
            raise BadRequest(f"Metrics not found: {', '.join(missing)}")
        by_ref = {ref: [((str(found[str(uuid.UUID(ref))].id),), found[str(uuid.UUID(ref))])] for ref, _ in pairs}
        return {"measures": _evaluate(tree, pairs, by_ref, **options)}
    rtype = selectors.resource_type_get(name=resource_type)
    rows = list(selectors.resources(actor=actor, type_name=resource_type).filter(selectors.parse_search(search, rtype)))
    names = {ref for ref, _ in pairs}
    metric_rows = list(selectors.metrics(actor=actor).filter(resource__in=[r.id for r in rows], name__in=names))
    by_resource: dict[uuid.UUID, list[Metric]] = {}
    for m in metric_rows:
        by_resource.setdefault(m.resource_id, []).append(m)  # type: ignore[arg-type]

    def refs_of(group: list[Resource]) -> dict[str, list[tuple[tuple[str, ...], Metric]]]:
        out: dict[str, list[tuple[tuple[str, ...], Metric]]] = {}
        for r in group:
            for m in by_resource.get(r.id, []):
                out.setdefault(str(m.name), []).append(((str(r.id), str(m.name)), m))
        return out

    if not groupby:
        return {"measures": _evaluate(tree, pairs, refs_of(rows), **options)}
    granularities = {granularity} if granularity is not None else \
        {g for m in metric_rows for g in m.archive_policy.granularities}
    every = selectors.rollup_stats(metric_ids={m.id for m in metric_rows}, granularities=granularities,
                                   start=start, stop=stop)
    groups: dict[tuple[Any, ...], list[Resource]] = {}

    for r in rows:
        key = tuple(_attr(r, name) for name in groupby)
        groups.setdefault(key, []).append(r)
    return [{"group": dict(zip(groupby, key, strict=True)),
             "measures": {"measures": _evaluate(tree, pairs, refs_of(group), stats=every, **options)}}
            for key, group in sorted(groups.items(), key=lambda kv: [str(v) for v in kv[0]])]


def _attr(resource: Resource, name: str) -> Any:
    if name in ("id",):
        return str(resource.id)
    if name == "type":
        return resource.type_id
    if name in selectors.RESOURCE_COLUMNS:
        value = getattr(resource, name)
        return timeutil.isoformat(value) if isinstance(value, dt.datetime) else value
    return resource.attributes.get(name)
