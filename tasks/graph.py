"""Dependency graphs, shared by the swarm, trace and worktree scenarios.

Built on the standard library's `graphlib`, which finds cycles and yields ready batches; this
module adds what the scenarios need on top: unknown-dependency errors, a named cycle, Kahn
batches in a stable order, and the critical (longest-duration) path.
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
