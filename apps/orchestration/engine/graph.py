"""The dependency graph of a stack's resources: creation in levels, deletion in the reverse."""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from apps.orchestration.engine.errors import CircularDependency


class Graph:
    """``requires[name]`` is the set of resources ``name`` needs before it can be created."""

    def __init__(self, requires: Mapping[str, Iterable[str]]) -> None:
        self.requires: dict[str, set[str]] = {name: set(deps) for name, deps in requires.items()}
        for deps in list(self.requires.values()):
            for dep in deps:
                self.requires.setdefault(dep, set())
        self.required_by: dict[str, set[str]] = {name: set() for name in self.requires}
        for name, deps in self.requires.items():
            for dep in deps:
                self.required_by[dep].add(name)
        self._levels: list[list[str]] | None = None

    def levels(self) -> list[list[str]]:
        """Creation order: each level's resources need only those of earlier levels, so a level can be
        created in parallel. CircularDependency if there is no such order. Found once (a copy each time)."""
        if self._levels is None:
            self._levels = self._find_levels()
        return [list(level) for level in self._levels]

    def _find_levels(self) -> list[list[str]]:
        waiting = {name: len(deps) for name, deps in self.requires.items()}
        level = sorted(name for name, count in waiting.items() if count == 0)
        levels: list[list[str]] = []
        while level:
            levels.append(level)
            following: set[str] = set()
            for name in level:
                for user in self.required_by[name]:
                    waiting[user] -= 1
                    if waiting[user] == 0:
                        following.add(user)
            level = sorted(following)
        if sum(len(lv) for lv in levels) != len(self.requires):
            raise CircularDependency(cycle=self._cycle({n for n, c in waiting.items() if c > 0}))
        return levels

    def deletion_levels(self) -> list[list[str]]:
        """Deletion order: a resource goes only after everything that needs it."""
        return list(reversed(self.levels()))

    def order(self) -> list[str]:
        return [name for level in self.levels() for name in level]

    def _cycle(self, stuck: set[str]) -> str:
        """One cycle among ``stuck`` (nodes Kahn's walk could not reach), as ``a -> b -> a``."""
        start = min(stuck)
        path: list[str] = [start]
        seen = {start: 0}
        node = start
        while True:
            node = min(dep for dep in self.requires[node] if dep in stuck)
            if node in seen:
                cycle = [*path[seen[node]:], node]
                return " -> ".join(cycle)
            seen[node] = len(path)
            path.append(node)
