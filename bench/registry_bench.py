"""Cost of one agent-registry write after 1 and after 1,000 finished runs (5 agents each).

Ours: each run registers its agents and sets them idle at its end, as a swarm run does; the
next run's registration drops them, so the registry holds one run's agents whatever the
history. Baseline: the same registry holding every finished run's agents (the rule before:
finished runs' agents stayed, `agent_status.json` grew by 5 records a run), built by writing
that history at once. The write timed is the one an executed item makes three times
(`set_workload`), median of 50, on the embedded registry and, when `REACTOR_DATABASE_URL` is
set, on PostgreSQL (ours only: the baseline's history there is one table).

    .venv/bin/python bench/registry_bench.py
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from tasks import agent_registry
from tasks.settings import get_settings
from tasks.swarm.agents import form_agents
from tasks.swarm.models import AgentSpec

AGENTS = 5
WRITES = 50


def _specs() -> list[AgentSpec]:
    return [AgentSpec(name=f"agent-{i}") for i in range(AGENTS)]


def _run(where, run_id: str) -> None:
    agents = form_agents(_specs())
    agent_registry.register(agents, where, run_id=run_id)
    agent_registry.set_status([a.agent_id for a in agents], "idle", where)


def _write_ms(where) -> float:
    """Median ms of one `set_workload` on a live run's agent, with the history in place."""
    live = form_agents(_specs())
    agent_registry.register(live, where, run_id="live")
    times = []
    for i in range(WRITES):
        start = time.perf_counter()
        agent_registry.set_workload(live[0].agent_id, 1 if i % 2 == 0 else -1, where)
        times.append((time.perf_counter() - start) * 1000)
    agent_registry.set_status([a.agent_id for a in live], "idle", where)
    return statistics.median(times)


def ours(where, runs: int) -> tuple[float, int]:
    for r in range(runs):
        _run(where, f"run-{r}")
    ms = _write_ms(where)
    return ms, len(agent_registry.agents(where))


def baseline(directory: Path, runs: int) -> tuple[float, int]:
    registry = agent_registry.JsonAgentRegistry(directory)
    now = "2026-01-01T00:00:00+00:00"
    history = [
        {**agent_registry.agent_record(a, now, None, f"run-{r}"), "status": "idle"}
        for r in range(runs)
        for a in form_agents(_specs())
    ]
    registry.store.update(lambda rows: rows + history)
    live = form_agents(_specs())
    registry.store.update(lambda rows: rows + [agent_registry.agent_record(a) for a in live])
    times = []
    for i in range(WRITES):
        start = time.perf_counter()
        registry.set_workload(live[0].agent_id, 1 if i % 2 == 0 else -1)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), len(registry.agents())


def main() -> None:
    rows = []
    for runs in (1, 1000):
        with tempfile.TemporaryDirectory() as d:
            rows.append(("embedded, ours", runs, *ours(Path(d), runs)))
        with tempfile.TemporaryDirectory() as d:
            rows.append(("embedded, history kept", runs, *baseline(Path(d), runs)))
    if os.environ.get("REACTOR_DATABASE_URL"):
        settings = get_settings()
        for runs in (1, 1000):
            rows.append(("postgresql, ours", runs, *ours(settings, runs)))
    print(f"{'registry':<24} {'runs':>5} {'ms/write':>9} {'records':>8}")
    for name, runs, ms, size in rows:
        print(f"{name:<24} {runs:>5} {ms:>9.2f} {size:>8}")
    by = {(name, runs): ms for name, runs, ms, _ in rows}
    for name in dict.fromkeys(name for name, *_ in rows):
        print(f"{name}: after 1,000 runs / after 1 = {by[(name, 1000)] / by[(name, 1)]:.2f}x")


if __name__ == "__main__":
    main()
