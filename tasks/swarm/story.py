"""The story a swarm run's log tells: one line per step, agent, claim, retry and outcome, the
drain's queue lines and where each dataset went. Pure: each function returns a line, or writes
lines to the logger it is given."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, TypeVar

from tasks.claims.snapshot import Snapshot
from tasks.export_models import ExportResult
from tasks.swarm.models import (
    Agent,
    Assignment,
    DrainSummary,
    ExecutionRecord,
    PriorityAnalysis,
    ResumeReport,
    SwarmRequest,
    SwarmResult,
    TakenWork,
    TelemetrySummary,
    WorkPlan,
)
from tasks.swarm.results import synthetic

T = TypeVar("T")


def request_line(request: SwarmRequest) -> str:
    if (q := request.queue) is not None:
        return (
            f"drain run: up to {q.limit} item(s) from the queue "
            f"({', '.join(q.types) if q.types else 'every handled type'}"
            f"{f', priority >= {q.priority_at_least}' if q.priority_at_least else ''}), "
            f"strategy {request.optimization_strategy}, min success rate "
            f"{request.min_success_rate:.0%}"
        )
    types = Counter(t.type for t in request.tasks)
    edges = sum(len(t.dependencies) for t in request.tasks)
    return (
        f"{len(request.tasks)} task(s) in ({', '.join(f'{n} {k}' for k, n in types.items())}; "
        f"{edges} dependencies), strategy {request.optimization_strategy}, "
        f"min success rate {request.min_success_rate:.0%}"
    )


def priority_line(analysis: PriorityAnalysis) -> str:
    why = f"; fallback: {analysis.fallback_reason}" if analysis.fallback_reason else ""
    return f"priorities from {analysis.source} (confidence {analysis.confidence:.2f}){why}"


def agent_line(a: Agent) -> str:
    specialties = ",".join(a.specializations) or "general"
    return (
        f"agent {a.agent_id} formed: {a.name} ({specialties}), concurrency {a.concurrency}, "
        f"speed {a.speed:g}"
    )


def plan_line(plan: WorkPlan) -> str:
    return (
        f"plan {plan.strategy}: makespan {plan.makespan_ms:.0f} ms vs lower bound "
        f"{plan.lower_bound_ms:.0f} ms (ratio {plan.ratio:.3f}, planned: estimates / agent "
        f"speed); critical path {plan.critical_path_ms:.0f} ms at the fastest agent's speed: "
        f"{' -> '.join(plan.critical_path)}"
    )


def time_lines(result: SwarmResult, bullet: str = "") -> list[str]:
    """The run's times on one base, planned beside measured, each labelled: the plan's
    (estimated durations divided by agent speed; the critical path at the fastest speed, so
    critical path <= lower bound <= makespan), then what the spans measured, then the handler
    workers' start-up, which no task's time includes. A drain whose items carry no estimates
    says its plan is no guide instead of quoting it."""
    plan, telemetry = result.plan, result.telemetry
    unestimated = result.queue.unestimated if result.queue else 0
    planned = (
        f"{bullet}planned ({plan.strategy}; estimated durations / agent speed): makespan "
        f"{plan.makespan_ms:.0f} ms, lower bound {plan.lower_bound_ms:.0f} ms, ratio "
        f"{plan.ratio:.3f}; critical path {plan.critical_path_ms:.0f} ms at the fastest "
        f"agent's speed: {' -> '.join(plan.critical_path) or '-'}"
    )
    if not plan.assignments:
        planned = f"{bullet}planned: nothing (no task to run)"
    elif unestimated == len(plan.assignments):
        planned = (
            f"{bullet}planned ({plan.strategy}): none of the {unestimated} taken item(s) has an "
            "estimated_duration, so the plan only orders them (no planned times)"
        )
    elif unestimated:
        planned += f" ({unestimated} item(s) without an estimated_duration planned as 1 ms)"
    ran = [e for e in result.executions if e.attempts]
    measured = (
        f"{bullet}measured: makespan {telemetry.measured_makespan_ms:.0f} ms (first task start "
        f"to last task end), task time {sum(e.duration_ms for e in ran):.0f} ms over "
        f"{len(ran)} task(s) that ran"
    )
    lines = [planned, measured]
    if (started := telemetry.handler_startup_ms) is not None:
        lines.append(
            f"{bullet}handler worker processes started in {started:.0f} ms before the first "
            "task (in no task's time)"
        )
    return lines


def workers_line(workers: int, started_ms: float) -> str:
    return f"{workers} handler worker process(es) ready in {started_ms:.0f} ms, before any task"


def claim_line(a: Assignment, lease_s: float) -> str:
    return f"claimed {a.work_item_id} ({a.task_id}) for {a.agent_id}, lease {lease_s:g} s"


def retry_line(a: Assignment, error: str, delay_s: float) -> str:
    return f"{a.task_id} on {a.agent_id}: {error}; retrying in {delay_s:.2f} s"


def outcome_line(e: ExecutionRecord) -> str:
    why = f" ({e.error})" if e.error else ""
    generated = " on a generated input (synthetic_input)" if synthetic(e) else ""
    return (
        f"{e.task_id} on {e.agent_id}: {e.status}{generated} after {e.attempts} attempt(s), "
        f"{e.duration_ms:.0f} ms{why}"
    )


def telemetry_line(t: TelemetrySummary) -> str:
    return (
        f"telemetry: {t.spans} span(s), mean {t.mean_duration_ms:.0f} ms, bottlenecks: "
        f"{', '.join(t.bottlenecks) or 'none'}"
    )


def take_line(request: SwarmRequest, batch: TakenWork) -> str:
    selection = request.queue
    assert selection is not None
    types = Counter(t.type for t in batch.request.tasks)
    wanted = ", ".join(selection.types) if selection.types else "every handled type"
    floor = f", priority >= {selection.priority_at_least}" if selection.priority_at_least else ""
    return (
        f"took {len(batch.claims)} of {batch.depth_before} pending item(s) (limit "
        f"{selection.limit}; {wanted}{floor}): "
        f"{', '.join(f'{n} {k}' for k, n in types.items()) or 'nothing ready'}; oldest pending "
        f"{pending_age(batch.oldest_pending_age_s)}"
    )


def drain_line(q: DrainSummary) -> str:
    return (
        f"queue: depth {q.depth_before} -> {q.depth_after}; taken {q.taken}, completed "
        f"{q.completed}, failed for good {q.failed}, returned {q.returned}; {len(q.blocked)} "
        f"blocked; oldest pending {pending_age(q.oldest_pending_age_s)}"
    )


def resume_line(r: ResumeReport) -> str:
    """What a resumed run found of its dead attempt's work in the ledger."""
    done = sum(s == "completed" for s in r.finished.values())
    failed = len(r.finished) - done
    parts = [
        f"resuming: {done} of {r.total} item(s) completed by the dead attempt"
        + (f", {failed} failed for good" if failed else ""),
        f"took back {len(r.taken_back)} claim(s) under their tokens"
        + (f" ({', '.join(r.taken_back[:10])}{', ...' if len(r.taken_back) > 10 else ''})"
           if r.taken_back else ""),
        f"claimed {r.fresh} afresh",
    ]  # fmt: skip
    if r.lost:
        parts.append(
            f"{len(r.lost)} lost to other holders: " + "; ".join(list(r.lost.values())[:5])
        )
    return "; ".join(parts)


def sweep_line(lapsed: list[str], timeout_s: float) -> str:
    shown = ", ".join(lapsed[:10]) + (", ..." if len(lapsed) > 10 else "")
    return (
        f"marked {len(lapsed)} agent(s) dead: no heartbeat within their timeout "
        f"(default {timeout_s:g} s): {shown}"
    )


def dataset_line(name: str, exported: ExportResult) -> str:
    folder = str(exported.files[0].path).rpartition("/")[0]  # a local path or an object URI
    formats = ", ".join(f.format for f in exported.files)
    return f"dataset {name}: {exported.rows} row(s) -> {folder} ({formats})"


def pending_age(seconds: float | None) -> str:
    return "none pending" if seconds is None else f"{seconds:.1f} s"


def log_outcome(logger: Any, record: ExecutionRecord) -> None:
    """One line per executed item; one finished by the dead attempt says so (not run again)."""
    if record.resumed:
        logger.info("%s: %s by the dead attempt, not run again", record.task_id, record.status)
    else:
        logger.log(logging.INFO if record.status == "completed" else logging.WARNING,
                   outcome_line(record))  # fmt: skip


def log_claims(
    logger: Any, plan: WorkPlan, lease_s: float, resumed: ResumeReport | None = None
) -> None:
    if resumed is not None:
        logger.info(resume_line(resumed))
    for a in plan.assignments:
        logger.info(claim_line(a, lease_s) if a.claim_id else f"{a.task_id}: claim lost")


def retry_logger(logger: Any, assignment: Assignment):
    """The `on_retry(attempt, error, delay_s)` callback that logs each retry."""

    def on_retry(_attempt: int, error: str, delay_s: float) -> None:
        logger.warning(retry_line(assignment, error, delay_s))

    return on_retry


def log_exports(
    logger: Any, snap: Snapshot, exported: dict[str, ExportResult]
) -> dict[str, list[str]]:
    """Log where each dataset went; dataset -> its files."""
    if snap.moved_aside:
        logger.warning("%s was not valid JSON: kept it as %s", snap.path, snap.moved_aside)
    for name, done in exported.items():
        logger.info(dataset_line(name, done))
    return {name: [str(f.path) for f in done.files] for name, done in exported.items()}


def log_agents(logger: Any, agents: list[Agent], kept: set[str]) -> None:
    for a in agents:
        logger.info("%s%s", agent_line(a), " (kept from the dead attempt)" * (a.agent_id in kept))


def logged(logger: Any, value: T, line: str) -> T:
    logger.info(line)
    return value
