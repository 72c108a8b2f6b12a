"""The swarm run's summary for people: the assignments table (plan and outcome of each task) and
the markdown report (times, outcomes, the drain's effect on the queue, agents, recommendations).
Pure: text and rows from the run's result; `tasks.swarm.publish` publishes them."""

from __future__ import annotations

from typing import Any

from tasks.swarm.models import (
    DrainSummary,
    ExecutionRecord,
    SwarmResult,
    TelemetrySummary,
    WorkPlan,
)
from tasks.swarm.results import synthetic
from tasks.swarm.story import pending_age, time_lines


def table_rows(plan: WorkPlan, executions: list[ExecutionRecord]) -> list[dict[str, Any]]:
    """The assignments table artifact: plan and outcome of each task."""
    by_task = {e.task_id: e for e in executions}
    return [
        {
            "task": a.task_id,
            "agent": a.agent_id,
            "value_first": a.value_first,
            "planned_start_ms": a.planned_start_ms,
            "planned_finish_ms": a.planned_finish_ms,
            "status": by_task[a.task_id].status,
            "attempts": by_task[a.task_id].attempts,
            "duration_ms": by_task[a.task_id].duration_ms,
            "synthetic_input": synthetic(by_task[a.task_id]),
        }
        for a in plan.assignments
    ]


def markdown_report(result: SwarmResult, failure: str | None = None) -> str:
    """The run summary; `failure` is why the run was rolled back, if it was."""
    analysis, executions = result.analysis, result.executions
    telemetry: TelemetrySummary = result.telemetry
    done = sum(e.status == "completed" for e in executions)
    generated = [e.task_id for e in executions if synthetic(e)]
    lines = [
        f"# Swarm run `{result.run_id}`",
        "",
        *([f"- **rolled back**: {failure}"] if failure else []),
        f"- priority analysis: **{analysis.source}**"
        + (f" (fallback: {analysis.fallback_reason})" if analysis.fallback_reason else ""),
        *time_lines(result, "- "),
        f"- completed **{done}/{len(executions)}** tasks (success rate "
        f"{result.success_rate:.0%}); {len(telemetry.bottlenecks)} bottleneck(s)",
        *(
            [
                f"- computed on a generated input (`synthetic_input: true`, the payload had no "
                f"data): {', '.join(generated)}"
            ]
            if generated
            else []
        ),
        "",
    ]
    if result.queue is not None:
        lines += queue_section(result.queue)
    if result.compensations:
        lines += ["## Compensations", "", *(f"- {c}" for c in result.compensations), ""]
    lines += [
        "## Agents",
        "",
        "| agent | tasks | busy ms | utilisation |",
        "|---|---|---|---|",
        *(
            f"| {u.agent_id} | {u.tasks} | {u.busy_ms:.0f} | {u.utilisation:.0%} |"
            for u in telemetry.utilisation
        ),
        "",
        "## Recommendations",
        "",
        *(f"- {r}" for r in telemetry.recommendations),
    ]
    return "\n".join(lines) + "\n"


def queue_section(q: DrainSummary) -> list[str]:
    """The drain's effect on the queue, for the run summary."""
    lines = [
        "## Queue",
        "",
        "| depth before | taken | completed | failed (for good) | returned to the queue "
        "| depth after | oldest pending |",
        "|---|---|---|---|---|---|---|",
        f"| {q.depth_before} | {q.taken} | {q.completed} | {q.failed} | {q.returned} "
        f"| {q.depth_after} | {pending_age(q.oldest_pending_age_s)} |",
        "",
    ]
    if q.last_errors:
        lines += ["Last errors:", "", *(f"- `{w}`: {e}" for w, e in q.last_errors.items()), ""]
    if q.blocked:
        lines += [
            f"Blocked ({len(q.blocked)}: they depend on items that failed for good):",
            "",
            *(f"- `{w}` <- {', '.join(r)}" for w, r in list(q.blocked.items())[:20]),
            "",
        ]
    return lines
