"""AI swarm coordination (SPEC §2).

Pure modules (no Prefect): `models` (request/result), `priority` (Claude or heuristic),
`agents` (formation, agent_status.json), `distribution` (list scheduling), `handlers` (how a task
type runs), `execution` (one claimed item against the ledger), `report` (telemetry aggregation,
datasets, markdown). `prefect_tasks` holds the @task wrappers the flow calls. The claim ledger
is `tasks.claims`.
"""

from tasks.swarm.models import (
    Agent,
    AgentSpec,
    ExecutionRecord,
    HandlerSpec,
    Plan,
    PriorityAnalysis,
    SwarmRequest,
    SwarmResult,
    SwarmTask,
)

__all__ = [
    "Agent",
    "AgentSpec",
    "ExecutionRecord",
    "HandlerSpec",
    "Plan",
    "PriorityAnalysis",
    "SwarmRequest",
    "SwarmResult",
    "SwarmTask",
]
