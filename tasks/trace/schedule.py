"""Which systems may start now: each one as soon as all of its own dependencies finished (not
batch by batch, so one slow system delays only what depends on it)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from tasks.graph import batches


def ready_systems(
    graph: Mapping[str, Sequence[str]], finished: Collection[str], started: Collection[str]
) -> list[str]:
    """Systems not yet started whose dependencies have all finished, in Kahn order."""
    return [
        name
        for batch in batches(graph, "system")
        for name in batch
        if name not in started
        and name not in finished
        and all(dep in finished for dep in graph[name])
    ]
