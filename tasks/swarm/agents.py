"""Step 2, agent formation: agents from the request, or as many as the analysis recommends
(capped by `max_agents`), registered in the agent registry (`tasks.agent_registry`:
`agent_status.json` with agent_id, team, status, capacity, current_workload, specialization,
last_heartbeat, performance_metrics — or PostgreSQL) (pure).

Metrics are real: they change only when a task finishes (`record_outcome`); a new agent has
no success rate until it has done something. No random numbers anywhere.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from contextlib import AbstractContextManager

# storage lives in the registry; re-exported so callers keep `agents.register(...)` etc.
from tasks.agent_registry import (  # noqa: F401
    AGENTS_FILE,
    agents_of_run,
    deregister,
    heartbeat,
    mark_lapsed,
    open_registry,
    record_outcome,
    register,
    set_status,
    set_workload,
)
from tasks.ids import new_id
from tasks.periodic import every
from tasks.swarm.models import Agent, AgentSpec, PriorityAnalysis, SwarmRequest


def agent_specs(request: SwarmRequest, analysis: PriorityAnalysis) -> list[AgentSpec]:
    """The request's agents, or `min(recommended, max_agents)` generalists whose
    specializations are the task types in decreasing order of work, dealt round-robin."""
    if request.agents:
        return list(request.agents)
    count = min(analysis.recommended_agents, request.max_agents)
    work: dict[str, float] = defaultdict(float)
    for t in request.tasks:
        work[t.type] += t.estimated_duration_ms
    types = sorted(work, key=lambda k: (-work[k], k))
    return [
        AgentSpec(name=f"agent-{i + 1}", specializations=[types[i % len(types)]])
        for i in range(count)
    ]


def form_agents(specs: list[AgentSpec], earlier: Mapping[str, str] | None = None) -> list[Agent]:
    """One agent per spec; `earlier` (name -> agent id: the agents a dead attempt of the same
    run registered, `agents_of_run`) keeps their ids, so a resumed run's agents are its dead
    attempt's and the claims they hold are theirs."""
    earlier = earlier or {}
    return [
        Agent(
            agent_id=earlier.get(s.name) or new_id("agent"),
            name=s.name,
            team=s.team,
            specializations=list(s.specializations),
            concurrency=s.concurrency,
            speed=s.speed,
        )
        for s in specs
    ]


def heartbeating(agent_ids: list[str], timeout_s: float, where=None) -> AbstractContextManager:
    """Beat the agents' heartbeat every third of `timeout_s` while the block runs: a live run's
    agents never lapse, a killed run's do (and the next run's sweep marks them dead). A failed
    beat (store briefly unavailable) is logged and tried again at the next interval
    (`tasks.periodic.every`'s rule)."""

    def beat() -> None:
        heartbeat(agent_ids, where)

    return every(timeout_s / 3, beat, "agent-heartbeat")
