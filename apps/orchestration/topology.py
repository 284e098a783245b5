"""The layout of a stack's topology graph for the dashboard: one column per creation level (the engine's
``levels``: a resource's column is after every resource it requires), one box per resource, one curve per
dependency (from the required resource to the one that requires it). Drawn as SVG by the template; no
JavaScript. Pure: it reads the rows it is given, nothing else."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BOX_W, BOX_H = 210, 46
GAP_X, GAP_Y = 70, 18
PAD = 12
NAME_CHARS = 26


@dataclass
class Node:
    name: str
    type: str
    state: str
    x: int
    y: int

    @property
    def status(self) -> str:
        """complete, in-progress, failed, init or deleted: the box's colour."""
        if self.state == "DELETE_COMPLETE":
            return "deleted"
        if self.state.startswith("INIT"):
            return "init"
        return self.state.split("_", 1)[1].lower().replace("_", "-")

    @property
    def label(self) -> str:
        return self.name if len(self.name) <= NAME_CHARS else self.name[: NAME_CHARS - 1] + "…"

    @property
    def short_type(self) -> str:
        return self.type.rsplit("::", 1)[-1]


@dataclass
class Edge:
    source: str
    target: str
    path: str
    status: str


@dataclass
class Topology:
    nodes: list[Node]
    edges: list[Edge]
    width: int
    height: int

    @property
    def box_w(self) -> int:
        return BOX_W

    @property
    def box_h(self) -> int:
        return BOX_H


def layout(rows: list[Any]) -> Topology:
    """``rows``: a stack's resources (name, type, state, level, requires)."""
    columns: dict[int, list[Any]] = {}
    for row in sorted(rows, key=lambda r: (r.level, r.name)):
        columns.setdefault(row.level, []).append(row)
    nodes: dict[str, Node] = {}
    for index, level in enumerate(sorted(columns)):
        for position, row in enumerate(columns[level]):
            nodes[row.name] = Node(name=row.name, type=row.type, state=row.state,
                                   x=PAD + index * (BOX_W + GAP_X), y=PAD + position * (BOX_H + GAP_Y))
    edges = []
    for row in rows:
        target = nodes[row.name]
        for required in row.requires or []:
            source = nodes.get(required)
            if source is None:
                continue
            x1, y1 = source.x + BOX_W, source.y + BOX_H // 2
            x2, y2 = target.x, target.y + BOX_H // 2
            bend = max(20, (x2 - x1) // 2)
            edges.append(Edge(source=source.name, target=target.name, status=target.status,
                              path=f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2 - 6},{y2}"))
    width = max((n.x + BOX_W for n in nodes.values()), default=0) + PAD
    height = max((n.y + BOX_H for n in nodes.values()), default=0) + PAD
    return Topology(nodes=list(nodes.values()), edges=edges, width=width, height=height)
