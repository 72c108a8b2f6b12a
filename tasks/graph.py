"""Dependency graphs, shared by the swarm, trace and worktree scenarios.

Built on the standard library's `graphlib`, which finds cycles and yields ready batches; this
module adds what the scenarios need on top: unknown-dependency errors, a named cycle, Kahn
batches in a stable order, the critical (longest-duration) path, and `ReadySet` for a scheduler
that starts each node as soon as its own dependencies have succeeded.
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Mapping, Sequence

from tasks.errors import DependencyCycle, InvalidInput

Graph = Mapping[str, Sequence[str]]  # node -> the nodes it depends on


def validate_graph(graph: Graph, what: str = "dependency") -> None:
    """Raise InvalidInput for a dependency on an unknown node or on itself, DependencyCycle
    (naming the cycle) for a cycle."""
    for node, deps in graph.items():
        unknown = [d for d in deps if d not in graph]
        if unknown:
            raise InvalidInput(
                f"{node!r} depends on unknown {what} {', '.join(map(repr, unknown))}"
            )
    batches(graph, what)


def batches(graph: Graph, what: str = "dependency") -> list[list[str]]:
    """Kahn batches: every node's dependencies are in earlier batches; each batch sorted."""
    sorter = graphlib.TopologicalSorter({n: list(d) for n, d in graph.items()})
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        cycle = list(reversed(exc.args[1]))  # graphlib lists it dependency-first
        raise DependencyCycle(cycle, what) from None
    out: list[list[str]] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        out.append(ready)
        sorter.done(*ready)
    return out


def dependents(graph: Graph, node: str) -> set[str]:
    """Every node that depends on `node`, directly or transitively."""
    reverse: dict[str, list[str]] = {n: [] for n in graph}
    for n, deps in graph.items():
        for d in deps:
            reverse.setdefault(d, []).append(n)
    seen: set[str] = set()
    stack = list(reverse.get(node, []))
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(reverse.get(current, []))
    return seen


def critical_path(graph: Graph, duration: Mapping[str, float]) -> tuple[float, list[str]]:
    """The longest chain by summed `duration` (length, nodes in dependency order)."""
    finish: dict[str, float] = {}
    via: dict[str, str | None] = {}
    for batch in batches(graph):
        for node in batch:
            best = max(graph[node], key=lambda d: finish[d], default=None)
            finish[node] = duration[node] + (finish[best] if best is not None else 0.0)
            via[node] = best
    if not finish:
        return 0.0, []
    end: str | None = max(finish, key=lambda n: finish[n])
    length = finish[end]
    path: list[str] = []
    while end is not None:
        path.append(end)
        end = via[end]
    return length, path[::-1]


class ReadySet:
    """Hands out the nodes of a dependency graph as they become ready, for a scheduler that
    starts each node as soon as its own dependencies have succeeded (not batch by batch).

    Built on `graphlib.TopologicalSorter`: `succeeded(node)` marks it done there, so its
    dependents become ready. `failed(node, why)` does not, and instead skips every node that
    can no longer run (a dependency failed or was skipped), with the reason, at once, so a
    dependent is reported the moment its dependency fails rather than when its other
    dependencies finish.
    """

    def __init__(self, graph: Graph, what: str = "dependency") -> None:
        self._graph = {n: list(d) for n, d in graph.items()}
        self._sorter = graphlib.TopologicalSorter(self._graph)
        try:
            self._sorter.prepare()
        except graphlib.CycleError as exc:
            raise DependencyCycle(list(reversed(exc.args[1])), what) from None
        self._waiting: list[str] = []  # ready, not taken yet
        self._taken: set[str] = set()
        self._failed: dict[str, str] = {}
        self.skipped: dict[str, str] = {}  # node -> why

    def take(self, limit: int | None = None) -> list[str]:
        """Ready nodes not handed out before (sorted), at most `limit` of them."""
        fresh = [n for n in self._sorter.get_ready() if n not in self.skipped]
        self._waiting = sorted({*self._waiting, *fresh})
        taken = self._waiting if limit is None else self._waiting[: max(limit, 0)]
        self._waiting = self._waiting[len(taken) :]
        self._taken.update(taken)
        return taken

    def succeeded(self, node: str) -> None:
        self._sorter.done(node)

    def failed(self, node: str, why: str) -> dict[str, str]:
        """Record that `node` failed (`why`, e.g. its status); returns the nodes newly skipped
        because of it, each with its reason (`dependency api unhealthy`, `dependency api was
        skipped`): the first failed or skipped dependency in the order they are listed."""
        self._failed[node] = why
        new: dict[str, str] = {}
        changed = True
        while changed:  # a skip can make its own dependents skippable
            changed = False
            for name, deps in self._graph.items():
                if name in self._taken or name in self.skipped or name in new:
                    continue
                for dep in deps:
                    if dep in self._failed:
                        new[name] = f"dependency {dep} {self._failed[dep]}"
                    elif dep in self.skipped or dep in new:
                        new[name] = f"dependency {dep} was skipped"
                    else:
                        continue
                    changed = True
                    break
        self.skipped.update(new)
        return new

    def pending(self) -> list[str]:
        """Nodes neither handed out nor skipped (in graph order)."""
        return [n for n in self._graph if n not in self._taken and n not in self.skipped]


def ancestors(graph: Graph, nodes: Iterable[str]) -> set[str]:
    """`nodes` and every node they depend on, directly or transitively."""
    closed: set[str] = set()
    stack = list(nodes)
    while stack:
        node = stack.pop()
        if node not in closed:
            closed.add(node)
            stack.extend(graph[node])
    return closed


def bottom_levels(graph: Graph, duration: Mapping[str, float]) -> dict[str, float]:
    """Each node's duration plus the longest chain of work that depends on it: the priority
    list scheduling gives a node (the critical path has the largest)."""
    reverse: dict[str, list[str]] = {n: [] for n in graph}
    for node, deps in graph.items():
        for d in deps:
            reverse[d].append(node)
    level: dict[str, float] = {}
    for node in reversed([n for batch in batches(graph) for n in batch]):
        level[node] = duration[node] + max((level[c] for c in reverse[node]), default=0.0)
    return level
