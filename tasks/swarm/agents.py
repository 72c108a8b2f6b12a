"""Step 2, agent formation: agents from the request, or as many as the analysis recommends
(capped by `max_agents`), registered in the agent registry (`tasks.agent_registry`:
`agent_status.json` with agent_id, team, status, capacity, current_workload, specialization,
last_heartbeat, performance_metrics — or PostgreSQL) (pure).

Metrics are real: they change only when a task finishes (`record_outcome`); a new agent has
no success rate until it has done something. No random numbers anywhere.
"""

from __future__ import annotations

from collections import defaultdict

# storage lives in the registry; re-exported so callers keep `agents.register(...)` etc.
from tasks.agent_registry import (  # noqa: F401
    AGENTS_FILE,
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


def form_agents(specs: list[AgentSpec]) -> list[Agent]:
    return [
        Agent(
            agent_id=new_id("agent"),
            name=s.name,
            team=s.team,
            specializations=list(s.specializations),
            concurrency=s.concurrency,
            speed=s.speed,
        )
        for s in specs
    ]
