"""Step 2, agent formation: agents from the request, or as many as the analysis recommends
(capped by `max_agents`), registered in `agent_status.json` (agent_id, team, status, capacity,
current_workload, specialization, last_heartbeat, performance_metrics) (pure).

Metrics are real: they change only when a task finishes (`record_outcome`); a new agent has
no success rate until it has done something. No random numbers anywhere.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tasks.ids import new_id
from tasks.store import JsonStore
from tasks.swarm.models import Agent, AgentSpec, PriorityAnalysis, SwarmRequest

AGENTS_FILE = "agent_status.json"


def agent_store(coordination_dir: Path | str) -> JsonStore[list[dict[str, Any]]]:
    return JsonStore(Path(coordination_dir) / AGENTS_FILE, list)


def _now() -> str:
    return datetime.now(UTC).isoformat()


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


def register(agents: list[Agent], coordination_dir: Path | str) -> None:
    """Add the agents to agent_status.json (seed fields) under the lock."""
    now = _now()
    records = [
        {
            "agent_id": a.agent_id,
            "team": a.team,
            "status": "active",
            "capacity": a.concurrency,
            "current_workload": 0,
            "specialization": ",".join(a.specializations) or "general",
            "last_heartbeat": now,
            "performance_metrics": {
                "tasks_completed": 0,
                "tasks_failed": 0,
                "average_completion_time": None,
                "success_rate": None,
                "total_busy_ms": 0.0,
            },
            "name": a.name,
            "speed": a.speed,
        }
        for a in agents
    ]
    agent_store(coordination_dir).update(lambda rows: rows.extend(records))


def deregister(agent_ids: list[str], coordination_dir: Path | str) -> int:
    """Remove the agents; returns how many were removed."""
    gone = set(agent_ids)
    removed: list[int] = []

    def drop(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        kept = [r for r in rows if r.get("agent_id") not in gone]
        removed.append(len(rows) - len(kept))
        return kept

    agent_store(coordination_dir).update(drop)
    return removed[0]


def set_status(agent_ids: list[str], status: str, coordination_dir: Path | str) -> None:
    """Set the agents' status (e.g. `idle` once their run is over)."""
    ids = set(agent_ids)

    def mark(rows: list[dict[str, Any]]) -> None:
        for r in rows:
            if r.get("agent_id") in ids:
                r["status"] = status
                r["last_heartbeat"] = _now()

    agent_store(coordination_dir).update(mark)


def set_workload(agent_id: str, delta: int, coordination_dir: Path | str) -> None:
    def bump(rows: list[dict[str, Any]]) -> None:
        for r in rows:
            if r.get("agent_id") == agent_id:
                r["current_workload"] = max(0, int(r.get("current_workload", 0)) + delta)
                r["last_heartbeat"] = _now()

    agent_store(coordination_dir).update(bump)


def record_outcome(
    agent_id: str, duration_ms: float, succeeded: bool, coordination_dir: Path | str
) -> None:
    """Fold one finished task into the agent's real metrics."""

    def fold(rows: list[dict[str, Any]]) -> None:
        for r in rows:
            if r.get("agent_id") != agent_id:
                continue
            m = r.setdefault("performance_metrics", {})
            done = int(m.get("tasks_completed", 0)) + (1 if succeeded else 0)
            failed = int(m.get("tasks_failed", 0)) + (0 if succeeded else 1)
            busy = float(m.get("total_busy_ms", 0.0)) + duration_ms
            m.update(
                tasks_completed=done,
                tasks_failed=failed,
                total_busy_ms=round(busy, 3),
                average_completion_time=round(busy / (done + failed), 3),
                success_rate=round(done / (done + failed), 4),
            )
            r["last_heartbeat"] = _now()

    agent_store(coordination_dir).update(fold)
