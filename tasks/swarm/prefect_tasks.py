"""The swarm scenario's Prefect tasks: thin wrappers over the pure modules, with readable run
names, undo hooks (deregister agents, release claims) and the events/artifacts the UI shows.
Imports Prefect (edge module)."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture
from prefect.transactions import get_transaction

from tasks.artifacts import Progress, markdown_table, publish_markdown, publish_table
from tasks.claims import ClaimLedger, WorkItem
from tasks.compensation import record_compensation
from tasks.errors import ReactorError
from tasks.events import emit
from tasks.export import export_dataset
from tasks.ids import new_id
from tasks.settings import get_settings
from tasks.swarm import agents as registry
from tasks.swarm import distribution, priority, report
from tasks.swarm.execution import execute_item
from tasks.swarm.models import (
    Agent,
    Assignment,
    ExecutionRecord,
    Plan,
    PriorityAnalysis,
    SwarmRequest,
    SwarmTask,
    TelemetrySummary,
)
from tasks.telemetry import read_spans, spans_path

# Inputs hold live objects and results are cheap to recompute: no input hashing/caching.
_TASK = {"cache_policy": NO_CACHE, "persist_result": False}


@task(task_run_name="analyse-priorities", **_TASK)
def analyse_priorities(request: SwarmRequest) -> PriorityAnalysis:
    """Step 1: Claude when configured, else the heuristic; `source` says which."""
    return priority.analyse(request.tasks, get_settings())


@task(task_run_name="form-agents", **_TASK)
def form_agents(request: SwarmRequest, analysis: PriorityAnalysis) -> list[Agent]:
    """Step 2: form the agents and register them in agent_status.json."""
    settings = get_settings()
    agents = registry.form_agents(registry.agent_specs(request, analysis))
    txn = get_transaction()
    if txn is not None:
        txn.set("agent_ids", [a.agent_id for a in agents])
        txn.set("coordination_dir", str(settings.coordination_dir))
    registry.register(agents, settings.coordination_dir)
    emit("swarm", "agents_formed", agents[0].agent_id, {"agents": [a.agent_id for a in agents]})
    return agents


@form_agents.on_rollback
def _deregister_agents(txn) -> None:
    removed = registry.deregister(txn.get("agent_ids"), txn.get("coordination_dir"))
    record_compensation(f"deregistered {removed} agent(s) from agent_status.json")


@task(task_run_name="distribute-{request.optimization_strategy}", **_TASK)
def distribute_work(request: SwarmRequest, analysis: PriorityAnalysis, agents: list[Agent]) -> Plan:
    """Step 3: dependency-aware list scheduling; the plan reports makespan vs lower bound."""
    scores = analysis.score_of()
    schedule = distribution.plan(
        [
            distribution.PlanTask(
                t.id, t.estimated_duration_ms, tuple(t.dependencies), t.type, scores[t.id]
            )
            for t in request.tasks
        ],
        [
            distribution.PlanAgent(a.agent_id, a.speed, a.concurrency, tuple(a.specializations))
            for a in agents
        ],
        request.optimization_strategy,
    )
    return Plan(
        strategy=request.optimization_strategy,
        assignments=[
            Assignment(
                task_id=p.task_id,
                agent_id=p.agent_id,
                slot=p.slot,
                planned_start_ms=round(p.start, 3),
                planned_finish_ms=round(p.finish, 3),
                order=p.order,
                value_first=p.value_first,
            )
            for p in schedule.placements
        ],
        makespan_ms=round(schedule.makespan, 3),
        lower_bound_ms=round(schedule.lower_bound, 3),
        ratio=round(schedule.ratio, 4),
        total_work_ms=round(schedule.total_work, 3),
        critical_path_ms=round(schedule.critical_path, 3),
        critical_path=schedule.critical_path_nodes,
    )


@task(task_run_name="claim-assignments", **_TASK)
def claim_assignments(request: SwarmRequest, plan: Plan, run_id: str) -> Plan:
    """Step 4: add one work item per task to the ledger and claim it for its planned agent."""
    settings = get_settings()
    ledger = ClaimLedger(settings.coordination_dir)
    tasks = {t.id: t for t in request.tasks}
    assignments = [a.model_copy(update={"work_item_id": new_id("work")}) for a in plan.assignments]
    ledger.add(
        WorkItem(
            work_item_id=a.work_item_id,
            work_type=tasks[a.task_id].type,
            priority=tasks[a.task_id].priority,
            description=tasks[a.task_id].description or f"{a.task_id} ({run_id})",
            estimated_duration=round(tasks[a.task_id].estimated_duration_ms),
            team="swarm",
            payload={"task_id": a.task_id, "run_id": run_id},
        )
        for a in assignments
    )
    txn = get_transaction()
    if txn is not None:
        txn.set("claims", [(a.work_item_id, a.agent_id) for a in assignments])
        txn.set("coordination_dir", str(settings.coordination_dir))
    for a in assignments:
        ledger.claim(a.work_item_id, a.agent_id, request.lease_s)
    emit("swarm", "claimed", run_id, {"claims": len(assignments)})
    return plan.model_copy(update={"assignments": assignments})


@claim_assignments.on_rollback
def _release_claims(txn) -> None:
    ledger = ClaimLedger(txn.get("coordination_dir"))
    held = {"claimed", "in_progress"}
    released = 0
    for work_item_id, agent_id in txn.get("claims"):
        if ledger.get(work_item_id).status in held:
            ledger.release(work_item_id, agent_id)
            released += 1
    ledger.snapshot()
    record_compensation(f"released {released} unfinished claim(s) of {len(txn.get('claims'))}")


@task(task_run_name="execute-{task.id}", **_TASK)
def execute_work_item(
    request: SwarmRequest,
    task: SwarmTask,
    assignment: Assignment,
    dependency_items: dict[str, str],
    run_id: str,
) -> ExecutionRecord:
    """Step 5 for one claimed item: its handler, under its lease, with timeout and retries."""
    settings = get_settings()
    record = execute_item(
        ClaimLedger(settings.coordination_dir),
        settings,
        task,
        assignment,
        dependency_items,
        request.handlers,
        run_id,
        request.lease_s,
    )
    emit(
        "swarm",
        f"task_{record.status}",
        assignment.work_item_id,
        {"task_id": task.id, "agent_id": assignment.agent_id, "duration_ms": record.duration_ms},
    )
    return record


def execute_plan(request: SwarmRequest, plan: Plan, run_id: str) -> list[ExecutionRecord]:
    """Submit every item in planned start order, each waiting for its dependencies and for the
    item before it on the same agent slot (so an agent never runs more than its concurrency).
    Submission order is a topological order of both relations, so a bounded thread pool cannot
    deadlock. Every future is awaited here (inside the caller's transaction)."""
    tasks = {t.id: t for t in request.tasks}
    item_of = {a.task_id: a.work_item_id for a in plan.assignments}
    futures: dict[str, PrefectFuture[ExecutionRecord]] = {}
    last_on_slot: dict[tuple[str, int], str] = {}
    ordered = sorted(plan.assignments, key=lambda a: (a.planned_start_ms, a.order))
    for a in ordered:
        task = tasks[a.task_id]
        before = [futures[d] for d in task.dependencies]
        previous = last_on_slot.get((a.agent_id, a.slot))
        if previous is not None:
            before.append(futures[previous])
        futures[a.task_id] = execute_work_item.submit(
            request,
            task,
            a,
            {d: item_of[d] for d in task.dependencies},
            run_id,
            wait_for=before,
        )
        last_on_slot[(a.agent_id, a.slot)] = a.task_id
    progress = Progress(len(futures), f"swarm run {run_id}: tasks finished")
    records = []
    for a in ordered:
        records.append(futures[a.task_id].result())
        progress.advance()
    return records


class SuccessRateTooLow(ReactorError):
    """Fewer tasks completed than `min_success_rate` demands."""


@task(task_run_name="check-success-rate", **_TASK)
def require_success_rate(records: list[ExecutionRecord], minimum: float) -> float:
    rate = sum(r.status == "completed" for r in records) / len(records)
    if rate < minimum:
        failed = [f"{r.task_id} ({r.error})" for r in records if r.status != "completed"]
        raise SuccessRateTooLow(
            f"success rate {rate:.0%} is below min_success_rate {minimum:.0%}; "
            f"not completed: {'; '.join(failed)}"
        )
    return rate


@task(task_run_name="aggregate-telemetry", **_TASK)
def aggregate_telemetry(run_id: str, agents: list[Agent], plan: Plan) -> TelemetrySummary:
    """Step 6: from the span records this run wrote to telemetry_spans.jsonl (the run's agents
    are idle from here on)."""
    settings = get_settings()
    registry.set_status([a.agent_id for a in agents], "idle", settings.coordination_dir)
    spans = read_spans(spans_path(settings))
    return report.aggregate(spans, run_id, agents, plan.makespan_ms)


@task(task_run_name="export-datasets", **_TASK)
def export_datasets(
    run_id: str,
    request: SwarmRequest,
    plan: Plan,
    analysis: PriorityAnalysis,
    executions: list[ExecutionRecord],
    telemetry: TelemetrySummary,
) -> dict[str, list[str]]:
    """Datasets swarm_assignments, swarm_claims, swarm_timeline (all four formats), and the
    seed-shaped work_claims.json."""
    settings = get_settings()
    ledger = ClaimLedger(settings.coordination_dir)
    ledger.snapshot()
    tasks = {t.id: t for t in request.tasks}
    by_task = {e.task_id: e for e in executions}
    claims: list[dict[str, Any]] = []
    for a in plan.assignments:
        c, e = ledger.get(a.work_item_id), by_task[a.task_id]
        claims.append(
            {
                "run_id": run_id, "work_item_id": c.work_item_id, "task_id": a.task_id,
                "claim_id": c.claim_id, "agent_id": c.agent_id, "status": c.status,
                "claimed_at": c.claimed_at, "completed_at": c.completed_at, "claims": c.claims,
                "attempts": e.attempts, "work_type": c.work_type, "priority": c.priority,
                "estimated_duration": c.estimated_duration, "result": c.result,
                "error": e.error,
            }
        )  # fmt: skip
    datasets = {
        "swarm_assignments": (
            report.assignment_records(run_id, plan, tasks, analysis.score_of()),
            report.ASSIGNMENTS_SCHEMA,
        ),
        "swarm_claims": (claims, report.CLAIMS_SCHEMA),
        "swarm_timeline": (
            [{"run_id": run_id, **r} for r in telemetry.timeline],
            report.TIMELINE_SCHEMA,
        ),
    }
    out = {}
    for name, (records, schema) in datasets.items():
        result = export_dataset(records, name, run_id, schema, root=settings.exports_dir)
        out[name] = [str(f.path) for f in result.files]
    return out


def publish_summary(
    run_id: str,
    plan: Plan,
    analysis: PriorityAnalysis,
    executions: list[ExecutionRecord],
    telemetry: TelemetrySummary,
) -> None:
    by_task = {e.task_id: e for e in executions}
    rows = [
        {
            "task": a.task_id,
            "agent": a.agent_id,
            "value_first": a.value_first,
            "planned_start_ms": a.planned_start_ms,
            "planned_finish_ms": a.planned_finish_ms,
            "status": by_task[a.task_id].status,
            "attempts": by_task[a.task_id].attempts,
            "duration_ms": by_task[a.task_id].duration_ms,
        }
        for a in plan.assignments
    ]
    publish_table(f"swarm-{run_id}", rows, f"Swarm assignments and outcomes, run {run_id}")
    md = report.markdown_report(
        run_id, plan, executions, telemetry, analysis.source, analysis.fallback_reason
    )
    md += "\n## Assignments\n\n" + markdown_table(rows, list(rows[0]))
    publish_markdown(f"swarm-report-{run_id}", md, f"Swarm report, run {run_id}")
