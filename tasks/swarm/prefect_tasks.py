"""The swarm flow's @task wrappers over the pure modules: readable run names, the priority
cache, undo hooks (deregister agents, release claims), and the logs, events, metrics and
artifacts an operator reads. Imports Prefect (edge module)."""

from __future__ import annotations

import hashlib
import logging
import time
from functools import cache
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import INPUTS, NO_CACHE, CacheKeyFnPolicy
from prefect.exceptions import MissingContextError
from prefect.transactions import get_transaction

from tasks import metrics
from tasks.artifacts import markdown_table, publish_markdown, publish_table
from tasks.claims import open_ledger
from tasks.compensation import record_compensation
from tasks.events import emit
from tasks.export import export_dataset
from tasks.settings import Settings, get_settings
from tasks.swarm import agents as registry
from tasks.swarm import aggregation, claiming, distribution, execution, priority, report
from tasks.swarm.models import (
    Agent,
    Assignment,
    ExecutionRecord,
    HandlerSpec,
    PriorityAnalysis,
    SwarmRequest,
    SwarmResult,
    SwarmTask,
    TelemetrySummary,
    WorkPlan,
)
from tasks.telemetry import read_spans, spans_path

# Inputs hold live objects and results are cheap to recompute: no input hashing/caching.
_TASK = {"cache_policy": NO_CACHE, "persist_result": False}


@cache
def prompt_version() -> str:
    """A hash of the module that builds Claude's prompt: a changed prompt is asked afresh."""
    return hashlib.sha256(Path(priority.__file__).read_bytes()).hexdigest()[:16]


# same tasks + model + prompt code => Claude's earlier answer, across runs. A fallback raises
# inside `ask_claude` (nothing is cached for it), so the next run asks again.
PRIORITY_CACHE = (INPUTS - "settings" - "http_client") + CacheKeyFnPolicy(
    cache_key_fn=lambda _, p: f"{p['settings'].anthropic_model}:{prompt_version()}"
)


@task(task_run_name="ask-claude-priorities", cache_policy=PRIORITY_CACHE, persist_result=True)
def ask_claude(tasks: list[SwarmTask], settings: Settings, http_client: Any = None):
    return priority.ask_claude(tasks, settings, http_client)


@task(task_run_name="analyze-priorities", **_TASK)
def analyze_priorities(request: SwarmRequest, http_client: Any = None) -> PriorityAnalysis:
    """Step 1: Claude when configured, else the heuristic; `source` says which."""
    analysis = priority.analyze(request.tasks, get_settings(), http_client, ask=ask_claude)
    level = logging.WARNING if analysis.fallback_reason else logging.INFO
    get_run_logger().log(level, report.priority_line(analysis))
    return analysis


def _remember(**values: Any) -> None:
    """Keep what an undo hook needs on this task's transaction."""
    if (txn := get_transaction()) is not None:
        for key, value in values.items():
            txn.set(key, value)


def _compensated(action: str) -> None:
    record_compensation(action)
    try:
        logger = get_run_logger()
    except MissingContextError:
        logger = logging.getLogger(__name__)
    logger.warning(f"compensation: {action}")


@task(task_run_name="form-agents", **_TASK)
def form_agents(request: SwarmRequest, analysis: PriorityAnalysis) -> list[Agent]:
    """Step 2: form the agents and register them in agent_status.json."""
    settings = get_settings()
    agents = registry.form_agents(registry.agent_specs(request, analysis))
    _remember(agent_ids=[a.agent_id for a in agents], where=str(settings.coordination_dir))
    registry.register(agents, settings)
    for a in agents:
        get_run_logger().info(report.agent_line(a))
    emit("swarm", "agents_formed", agents[0].agent_id, {"agents": [a.agent_id for a in agents]})
    return agents


@form_agents.on_rollback
def _deregister_agents(txn) -> None:
    agents = registry.open_registry(get_settings())
    removed = agents.deregister(txn.get("agent_ids"))
    _compensated(f"deregistered {removed} agent(s) from {agents.name}")


@task(task_run_name="distribute-{request.optimization_strategy}", **_TASK)
def distribute_work(request: SwarmRequest, analysis: PriorityAnalysis, agents: list[Agent]):
    """Step 3: dependency-aware list scheduling; the plan reports makespan vs lower bound."""
    plan = distribution.plan_work(request, analysis, agents)
    get_run_logger().info(report.plan_line(plan))
    return plan


@task(task_run_name="claim-assignments", **_TASK)
def claim_assignments(request: SwarmRequest, plan: WorkPlan, run_id: str) -> WorkPlan:
    """Step 4: add one work item per task to the ledger and claim it for its planned agent."""
    where = get_settings().coordination_dir
    ledger, plan = open_ledger(get_settings()), claiming.with_work_items(plan)
    ledger.add(claiming.work_items(request, plan, run_id))
    _remember(claims=[(a.work_item_id, a.agent_id) for a in plan.assignments], where=str(where))
    plan = claiming.claim_planned(ledger, plan, request.lease_s)
    ledger.close()
    for a in plan.assignments:
        get_run_logger().info(report.claim_line(a, request.lease_s))
    emit("swarm", "claimed", run_id, {"claims": len(plan.assignments)})
    return plan


@claim_assignments.on_rollback
def _release_claims(txn) -> None:
    ledger = open_ledger(get_settings())
    released = claiming.release_unfinished(ledger, txn.get("claims"))
    ledger.close()
    _compensated(f"released {released} unfinished claim(s) of {len(txn.get('claims'))}")


@task(task_run_name="execute-{task.id}", **_TASK)
def execute_work_item(
    task: SwarmTask,
    assignment: Assignment,
    dependency_items: dict[str, str],
    handlers: dict[str, HandlerSpec],
    lease_s: float,
    run_id: str,
) -> ExecutionRecord:
    """Step 5 for one claimed item: its handler, under its lease, with timeout and retries."""
    settings, logger, t0 = get_settings(), get_run_logger(), time.perf_counter()
    ledger = open_ledger(settings)

    def on_retry(_attempt: int, error: str, delay_s: float) -> None:
        logger.warning(report.retry_line(assignment, error, delay_s))

    record = execution.execute_item(
        ledger, settings, task, assignment, dependency_items, handlers, run_id, lease_s, on_retry
    )
    ledger.close()
    metrics.task_duration.record(time.perf_counter() - t0, {"scenario": "swarm", "task": "execute"})
    level = logging.INFO if record.status == "completed" else logging.WARNING
    logger.log(level, report.outcome_line(record))
    facts = {"task_id": task.id, "agent_id": assignment.agent_id, "duration_ms": record.duration_ms}
    emit("swarm", f"task_{record.status}", assignment.work_item_id, facts)
    return record


@task(task_run_name="check-success-rate", **_TASK)
def require_success_rate(records: list[ExecutionRecord], minimum: float, run_id: str) -> float:
    """The run's success rate; below `minimum` the event `reactor.swarm.below_min_success_rate`
    goes out (an alert automation listens for it) and the run fails."""
    rate = execution.success_rate(records)
    if (error := execution.shortfall(records, minimum)) is not None:
        missed = [r.task_id for r in records if r.status != "completed"]
        facts = {"success_rate": rate, "min_success_rate": minimum, "not_completed": missed}
        emit("swarm", "below_min_success_rate", run_id, facts)
        raise error
    get_run_logger().info(f"success rate {rate:.0%} (minimum {minimum:.0%})")
    return rate


@task(task_run_name="aggregate-telemetry", **_TASK)
def aggregate_telemetry(run_id: str, agents: list[Agent], plan: WorkPlan) -> TelemetrySummary:
    """Step 6: from the span records this run wrote (its agents are idle from here on)."""
    settings = get_settings()
    registry.set_status([a.agent_id for a in agents], "idle", settings)
    spans = read_spans(spans_path(settings))
    summary = aggregation.aggregate(spans, run_id, agents, plan.makespan_ms)
    get_run_logger().info(report.telemetry_line(summary))
    return summary


@task(task_run_name="export-datasets", **_TASK)
def export_datasets(result: SwarmResult, request: SwarmRequest) -> dict[str, list[str]]:
    """swarm_assignments, swarm_claims and swarm_timeline in every format; work_claims.json
    refreshed from the ledger."""
    settings = get_settings()
    ledger = open_ledger(settings)
    snap = ledger.snapshot()
    claims = {a.work_item_id: ledger.get(a.work_item_id) for a in result.plan.assignments}
    ledger.close()
    if snap.moved_aside:
        get_run_logger().warning(f"{snap.path} was not valid JSON: kept it as {snap.moved_aside}")
    out = {}
    tasks = {t.id: t for t in request.tasks}
    for name, (rows, schema) in report.datasets(result, tasks, claims).items():
        exported = export_dataset(rows, name, result.run_id, schema, root=settings.exports_dir)
        out[name] = [str(f.path) for f in exported.files]
        folder, formats = exported.files[0].path.parent, ", ".join(f.format for f in exported.files)
        get_run_logger().info(f"dataset {name}: {exported.rows} row(s) -> {folder} ({formats})")
    return out


@task(task_run_name="publish-summary", **_TASK)
def publish_summary(result: SwarmResult, failure: str | None = None) -> None:
    """The assignments table and the markdown summary, under stable keys."""
    rows = report.table_rows(result.plan, result.executions)
    title = f"run {result.run_id}"
    publish_table(report.ASSIGNMENTS_KEY, rows, f"Swarm assignments and outcomes, {title}")
    table = markdown_table(rows, list(rows[0])) if rows else "(nothing ran)"
    summary = f"{report.markdown_report(result, failure)}\n## Assignments\n\n{table}"
    publish_markdown(report.SUMMARY_KEY, summary, f"Swarm summary, {title}")
