"""The swarm run's datasets, each declared once as a row model (its columns and types come from
`tasks.export_schema.schema_of`): `swarm_assignments` (the plan), `swarm_claims` (the ledger
after the run) and `swarm_timeline` (what the spans measured). Pure: rows from the run's result."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from tasks.claims.models import Claim
from tasks.swarm.models import SwarmResult, SwarmTask


class AssignmentRow(BaseModel):
    """One row of `swarm_assignments`: a task's place in the plan."""

    run_id: str
    task_id: str
    work_item_id: str
    agent_id: str
    slot: int
    order: int
    value_first: bool
    work_type: str
    priority: str
    score: int
    estimated_duration_ms: float
    planned_start_ms: float
    planned_finish_ms: float
    strategy: str


class ClaimRow(BaseModel):
    """One row of `swarm_claims`: a work item as the ledger holds it after the run."""

    run_id: str
    work_item_id: str
    task_id: str
    claim_id: str | None
    agent_id: str | None
    status: str
    claimed_at: datetime | None
    completed_at: datetime | None
    claims: int
    attempts: int
    work_type: str
    priority: str
    estimated_duration: int
    result: Any
    error: str | None


class TimelineRow(BaseModel):
    """One row of `swarm_timeline`: an item's `swarm.execute` span."""

    run_id: str
    task_id: str
    work_item_id: str
    agent_id: str
    work_type: str
    trace_id: str
    span_id: str
    start_time: datetime
    end_time: datetime
    duration_ms: float
    status: str
    bottleneck: bool
    subflow_run_id: str | None
    handler_ms: float


Dataset = tuple[list[BaseModel], type[BaseModel]]


def assignment_rows(result: SwarmResult, tasks: Mapping[str, SwarmTask]) -> list[AssignmentRow]:
    scores = result.analysis.score_of()
    return [
        AssignmentRow(
            **a.model_dump(include=set(AssignmentRow.model_fields)),
            run_id=result.run_id,
            work_type=tasks[a.task_id].type,
            priority=tasks[a.task_id].priority,
            score=scores[a.task_id],
            estimated_duration_ms=tasks[a.task_id].estimated_duration_ms,
            strategy=result.plan.strategy,
        )
        for a in result.plan.assignments
    ]


def claim_rows(result: SwarmResult, claims: Mapping[str, Claim]) -> list[ClaimRow]:
    """One row per work item, as the ledger holds it after the run (`claims` by item id)."""
    by_task = {e.task_id: e for e in result.executions}
    rows = []
    for a in result.plan.assignments:
        claim, execution = claims[a.work_item_id], by_task[a.task_id]
        rows.append(
            ClaimRow(
                **claim.model_dump(include=set(ClaimRow.model_fields) - {"attempts"}),
                run_id=result.run_id,
                task_id=a.task_id,
                attempts=execution.attempts,
                error=execution.error,
            )
        )
    return rows


def timeline_rows(result: SwarmResult) -> list[TimelineRow]:
    return [TimelineRow(run_id=result.run_id, **r) for r in result.telemetry.timeline]


def datasets(
    result: SwarmResult, tasks: Mapping[str, SwarmTask], claims: Mapping[str, Claim]
) -> dict[str, Dataset]:
    """Every dataset of the run: name -> (rows, row model)."""
    return {
        "swarm_assignments": (assignment_rows(result, tasks), AssignmentRow),
        "swarm_claims": (claim_rows(result, claims), ClaimRow),
        "swarm_timeline": (timeline_rows(result), TimelineRow),
    }
