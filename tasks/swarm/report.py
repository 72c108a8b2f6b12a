"""What a swarm run produces for people and tools: the rows and schemas of the datasets
`swarm_assignments`, `swarm_claims` and `swarm_timeline` and their export, the log lines, the
assignments table artifact and the markdown summary. The artifact keys are stable, so the
UI's Artifacts page shows each one's history across runs. Publishes artifacts (edge module)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from typing import Any, TypeVar

from tasks import metrics
from tasks.artifacts import markdown_table, publish_markdown, publish_table
from tasks.claims import Claim, open_ledger
from tasks.claims.snapshot import Snapshot
from tasks.events import emit
from tasks.export import Column, ExportResult, export_dataset
from tasks.settings import Settings
from tasks.swarm import execution
from tasks.swarm.models import (
    Agent,
    Assignment,
    DrainSummary,
    ExecutionRecord,
    PriorityAnalysis,
    ResumeReport,
    SwarmRequest,
    SwarmResult,
    SwarmTask,
    TakenWork,
    TelemetrySummary,
    WorkPlan,
)

T = TypeVar("T")
SUMMARY_KEY = "swarm-summary"
ASSIGNMENTS_KEY = "swarm-assignments"

ASSIGNMENTS_SCHEMA: dict[str, Column] = {k: Column(v) for k, v in {
    "run_id": "str", "task_id": "str", "work_item_id": "str", "agent_id": "str", "slot": "int",
    "order": "int", "value_first": "bool", "work_type": "str", "priority": "str",
    "score": "int", "estimated_duration_ms": "float", "planned_start_ms": "float",
    "planned_finish_ms": "float", "strategy": "str",
}.items()}  # fmt: skip
CLAIMS_SCHEMA: dict[str, Column] = {k: Column(v) for k, v in {
    "run_id": "str", "work_item_id": "str", "task_id": "str", "claim_id": "str",
    "agent_id": "str", "status": "str", "claimed_at": "timestamp", "completed_at": "timestamp",
    "claims": "int", "attempts": "int", "work_type": "str", "priority": "str",
    "estimated_duration": "int", "result": "json", "error": "str",
}.items()}  # fmt: skip
TIMELINE_SCHEMA: dict[str, Column] = {k: Column(v) for k, v in {
    "run_id": "str", "task_id": "str", "work_item_id": "str", "agent_id": "str",
    "work_type": "str", "trace_id": "str", "span_id": "str", "start_time": "timestamp",
    "end_time": "timestamp", "duration_ms": "float", "status": "str", "bottleneck": "bool",
    "subflow_run_id": "str", "handler_ms": "float",
}.items()}  # fmt: skip

Dataset = tuple[list[dict[str, Any]], dict[str, Column]]


def assignment_records(
    run_id: str, plan: WorkPlan, tasks: Mapping[str, SwarmTask], scores: Mapping[str, int]
) -> list[dict[str, Any]]:
    return [
        {
            "run_id": run_id,
            "task_id": a.task_id,
            "work_item_id": a.work_item_id,
            "agent_id": a.agent_id,
            "slot": a.slot,
            "order": a.order,
            "value_first": a.value_first,
            "work_type": tasks[a.task_id].type,
            "priority": tasks[a.task_id].priority,
            "score": scores[a.task_id],
            "estimated_duration_ms": tasks[a.task_id].estimated_duration_ms,
            "planned_start_ms": a.planned_start_ms,
            "planned_finish_ms": a.planned_finish_ms,
            "strategy": plan.strategy,
        }
        for a in plan.assignments
    ]


def claim_records(
    run_id: str,
    plan: WorkPlan,
    claims: Mapping[str, Claim],
    executions: list[ExecutionRecord],
) -> list[dict[str, Any]]:
    """One row per work item, as the ledger holds it after the run (`claims` by item id)."""
    by_task = {e.task_id: e for e in executions}
    rows = []
    for a in plan.assignments:
        c, e = claims[a.work_item_id], by_task[a.task_id]
        rows.append(
            {
                "run_id": run_id, "work_item_id": c.work_item_id, "task_id": a.task_id,
                "claim_id": c.claim_id, "agent_id": c.agent_id, "status": c.status,
                "claimed_at": c.claimed_at, "completed_at": c.completed_at, "claims": c.claims,
                "attempts": e.attempts, "work_type": c.work_type, "priority": c.priority,
                "estimated_duration": c.estimated_duration, "result": c.result,
                "error": e.error,
            }
        )  # fmt: skip
    return rows


def datasets(
    result: SwarmResult, tasks: Mapping[str, SwarmTask], claims: Mapping[str, Claim]
) -> dict[str, Dataset]:
    """Every dataset of the run: name -> (rows, schema)."""
    run_id, plan = result.run_id, result.plan
    return {
        "swarm_assignments": (
            assignment_records(run_id, plan, tasks, result.analysis.score_of()),
            ASSIGNMENTS_SCHEMA,
        ),
        "swarm_claims": (claim_records(run_id, plan, claims, result.executions), CLAIMS_SCHEMA),
        "swarm_timeline": (
            [{"run_id": run_id, **r} for r in result.telemetry.timeline],
            TIMELINE_SCHEMA,
        ),
    }


def export_datasets(
    result: SwarmResult, request: SwarmRequest, settings: Settings
) -> tuple[Snapshot, dict[str, ExportResult]]:
    """work_claims.json refreshed from the ledger, then every dataset of the run in every
    format under the exports dir."""
    with open_ledger(settings) as ledger:
        snap = ledger.snapshot()
        claims = {a.work_item_id: ledger.get(a.work_item_id) for a in result.plan.assignments}
    tasks, root = {t.id: t for t in request.tasks}, settings.exports_dir
    return snap, {
        name: export_dataset(rows, name, result.run_id, schema, root=root)
        for name, (rows, schema) in datasets(result, tasks, claims).items()
    }


def dataset_line(name: str, exported: ExportResult) -> str:
    folder = str(exported.files[0].path).rpartition("/")[0]  # a local path or an object URI
    formats = ", ".join(f.format for f in exported.files)
    return f"dataset {name}: {exported.rows} row(s) -> {folder} ({formats})"


def outcome_facts(e: ExecutionRecord) -> dict[str, Any]:
    """The facts of a task's `reactor.swarm.task_<status>` event."""
    return {"task_id": e.task_id, "agent_id": e.agent_id, "duration_ms": e.duration_ms}


def shortfall_facts(records: list[ExecutionRecord], rate: float, minimum: float) -> dict[str, Any]:
    """The facts of `reactor.swarm.below_min_success_rate`."""
    missed = [r.task_id for r in records if r.status != "completed"]
    return {"success_rate": rate, "min_success_rate": minimum, "not_completed": missed}


def publish(result: SwarmResult, failure: str | None = None) -> None:
    """The assignments table and the markdown summary artifacts, under stable keys."""
    rows = table_rows(result.plan, result.executions)
    title = f"run {result.run_id}"
    publish_table(ASSIGNMENTS_KEY, rows, f"Swarm assignments and outcomes, {title}")
    table = markdown_table(rows, list(rows[0])) if rows else "(nothing ran)"
    summary = f"{markdown_report(result, failure)}\n## Assignments\n\n{table}"
    publish_markdown(SUMMARY_KEY, summary, f"Swarm summary, {title}")


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


def synthetic(execution: ExecutionRecord) -> bool:
    """Did the handler compute on an input it generated (the payload had no data)?"""
    return bool((execution.result or {}).get("synthetic_input"))


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


# -- the story the run's log tells: one line per step, agent, claim and outcome ----------------


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


# -- drain runs ---------------------------------------------------------------------------------


def _age(seconds: float | None) -> str:
    return "none pending" if seconds is None else f"{seconds:.1f} s"


def queue_section(q: DrainSummary) -> list[str]:
    """The drain's effect on the queue, for the run summary."""
    lines = [
        "## Queue",
        "",
        "| depth before | taken | completed | failed (for good) | returned to the queue "
        "| depth after | oldest pending |",
        "|---|---|---|---|---|---|---|",
        f"| {q.depth_before} | {q.taken} | {q.completed} | {q.failed} | {q.returned} "
        f"| {q.depth_after} | {_age(q.oldest_pending_age_s)} |",
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
        f"{_age(batch.oldest_pending_age_s)}"
    )


def drain_line(q: DrainSummary) -> str:
    return (
        f"queue: depth {q.depth_before} -> {q.depth_after}; taken {q.taken}, completed "
        f"{q.completed}, failed for good {q.failed}, returned {q.returned}; {len(q.blocked)} "
        f"blocked; oldest pending {_age(q.oldest_pending_age_s)}"
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


def check_success_rate(
    logger: Any, records: list[ExecutionRecord], minimum: float, run_id: str
) -> float:
    """The run's success rate, logged; below `minimum` the alert event goes out and the
    shortfall is raised."""
    rate = execution.success_rate(records)
    if (error := execution.shortfall(records, minimum)) is not None:
        emit("swarm", "below_min_success_rate", run_id, shortfall_facts(records, rate, minimum))
        raise error
    logger.info("success rate %.0f%% (minimum %.0f%%)", 100 * rate, 100 * minimum)
    return rate


def executed(logger: Any, record: ExecutionRecord, elapsed_s: float) -> ExecutionRecord:
    """The outcome of one item's task: its duration metric, log line and event."""
    metrics.task_duration.record(elapsed_s, {"scenario": "swarm", "task": "execute"})
    log_outcome(logger, record)
    emit("swarm", f"task_{record.status}", record.work_item_id, outcome_facts(record))
    return record


def logged(logger: Any, value: T, line: str) -> T:
    logger.info(line)
    return value
