"""What a swarm run's result holds beyond the steps' own outputs: the result of a drain that took
nothing, whether a task computed on a generated input, and the facts its events carry. Pure."""

from __future__ import annotations

from typing import Any

from tasks.swarm.models import (
    DrainSummary,
    ExecutionRecord,
    PriorityAnalysis,
    SwarmRequest,
    SwarmResult,
    TelemetrySummary,
    WorkPlan,
)


def empty_run(run_id: str, request: SwarmRequest, queue: DrainSummary) -> SwarmResult:
    """The result of a drain run that found nothing to take."""
    strategy = request.optimization_strategy
    return SwarmResult(
        run_id=run_id,
        strategy=strategy,
        analysis=PriorityAnalysis(
            scores=[], confidence=1.0, recommended_agents=1, reasoning="nothing taken"
        ),
        agents=[],
        plan=WorkPlan(
            strategy=strategy,
            assignments=[],
            makespan_ms=0.0,
            lower_bound_ms=0.0,
            ratio=1.0,
            total_work_ms=0.0,
            critical_path_ms=0.0,
            critical_path=[],
        ),
        executions=[],
        success_rate=1.0,
        telemetry=TelemetrySummary(
            trace_id=None,
            spans=0,
            timeline=[],
            utilisation=[],
            bottlenecks=[],
            mean_duration_ms=0.0,
            recommendations=["the queue had nothing ready to take"],
        ),
        queue=queue,
    )


def synthetic(execution: ExecutionRecord) -> bool:
    """Did the handler compute on an input it generated (the payload had no data)?"""
    return bool((execution.result or {}).get("synthetic_input"))


def outcome_facts(e: ExecutionRecord) -> dict[str, Any]:
    """The facts of a task's `reactor.swarm.task_<status>` event."""
    return {"task_id": e.task_id, "agent_id": e.agent_id, "duration_ms": e.duration_ms}


def shortfall_facts(records: list[ExecutionRecord], rate: float, minimum: float) -> dict[str, Any]:
    """The facts of `reactor.swarm.below_min_success_rate`."""
    missed = [r.task_id for r in records if r.status != "completed"]
    return {"success_rate": rate, "min_success_rate": minimum, "not_completed": missed}
