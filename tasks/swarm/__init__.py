"""AI swarm coordination (docs/swarm.md).

Pure modules (no Prefect): `models` (request/result), `priority` (Claude or heuristic),
`agents` (formation, agent_status.json), `distribution` (list scheduling), `claiming` (work
items in the claim ledger), `builtins` (the demo's handlers), `handlers` (how a handler runs:
isolated, timed out, retried), `execution` (one claimed item against the ledger),
`aggregation` (telemetry from the run's spans), `datasets` (the dataset row models and rows),
`story` (the log lines), `summary` (the artifacts' table and markdown), `results` (the empty
drain's result, event facts), `errors`. Edge modules (Prefect): `publish` (export, artifacts,
events, metrics) and `prefect_tasks`, the @task wrappers and undo hooks the flow calls.
The claim ledger is `tasks.claims`.
"""

from tasks.swarm.models import (
    Agent,
    AgentSpec,
    ExecutionRecord,
    HandlerSpec,
    PriorityAnalysis,
    SwarmRequest,
    SwarmResult,
    SwarmTask,
    WorkPlan,
)

__all__ = [
    "Agent",
    "AgentSpec",
    "ExecutionRecord",
    "HandlerSpec",
    "PriorityAnalysis",
    "SwarmRequest",
    "SwarmResult",
    "SwarmTask",
    "WorkPlan",
]
