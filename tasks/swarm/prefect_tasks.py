"""The swarm flow's @task wrappers over the pure modules: readable run names, the priority
cache, undo hooks (deregister agents, release claims), and the logs, events, metrics and
artifacts an operator reads. Imports Prefect (edge module)."""

from __future__ import annotations

import logging
import time
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import INPUTS, NO_CACHE, CacheKeyFnPolicy

from tasks import metrics
from tasks.claims import open_ledger
from tasks.compensation import compensated, remember
from tasks.events import emit
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

# Inputs hold live objects and results are cheap to recompute: no input hashing/caching.
_TASK = {"cache_policy": NO_CACHE, "persist_result": False}


# same tasks + model + prompt code => Claude's earlier answer, across runs. A fallback raises
# inside `ask_claude` (nothing is cached for it), so the next run asks again.
PRIORITY_CACHE = (INPUTS - "settings" - "http_client") + CacheKeyFnPolicy(
    cache_key_fn=lambda _, p: f"{p['settings'].anthropic_model}:{priority.prompt_version()}"
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


@task(task_run_name="form-agents", **_TASK)
def form_agents(request: SwarmRequest, analysis: PriorityAnalysis) -> list[Agent]:
    """Step 2: form the agents and register them in agent_status.json."""
    agents = registry.form_agents(registry.agent_specs(request, analysis))
    remember(agent_ids=[a.agent_id for a in agents])
    registry.register(agents, get_settings())
    for a in agents:
        get_run_logger().info(report.agent_line(a))
    emit("swarm", "agents_formed", agents[0].agent_id, {"agents": [a.agent_id for a in agents]})
    return agents


@form_agents.on_rollback
def _deregister_agents(txn) -> None:
    agents = registry.open_registry(get_settings())
    removed = agents.deregister(txn.get("agent_ids"))
    compensated(f"deregistered {removed} agent(s) from {agents.name}")


@task(task_run_name="distribute-{request.optimization_strategy}", **_TASK)
def distribute_work(request: SwarmRequest, analysis: PriorityAnalysis, agents: list[Agent]):
    """Step 3: dependency-aware list scheduling; the plan reports makespan vs lower bound."""
    plan = distribution.plan_work(request, analysis, agents)
    get_run_logger().info(report.plan_line(plan))
    return plan


@task(task_run_name="claim-assignments", **_TASK)
def claim_assignments(request: SwarmRequest, plan: WorkPlan, run_id: str) -> WorkPlan:
    """Step 4: add one work item per task to the ledger and claim it for its planned agent."""
    settings, plan = get_settings(), claiming.with_work_items(plan)
    with open_ledger(settings) as ledger:
        ledger.add(claiming.work_items(request, plan, run_id))
        remember(claims=[(a.work_item_id, a.agent_id) for a in plan.assignments])
        plan = claiming.claim_planned(ledger, plan, request.lease_s)
    for a in plan.assignments:
        get_run_logger().info(report.claim_line(a, request.lease_s))
    emit("swarm", "claimed", run_id, {"claims": len(plan.assignments)})
    return plan


@claim_assignments.on_rollback
def _release_claims(txn) -> None:
    with open_ledger(get_settings()) as ledger:
        released = claiming.release_unfinished(ledger, txn.get("claims"))
    compensated(f"released {released} unfinished claim(s) of {len(txn.get('claims'))}")


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

    def on_retry(_attempt: int, error: str, delay_s: float) -> None:
        logger.warning(report.retry_line(assignment, error, delay_s))

    with open_ledger(settings) as ledger:
        item = (task, assignment, dependency_items, handlers, run_id, lease_s, on_retry)
        record = execution.execute_item(ledger, settings, *item)
    metrics.task_duration.record(time.perf_counter() - t0, {"scenario": "swarm", "task": "execute"})
    level = logging.INFO if record.status == "completed" else logging.WARNING
    logger.log(level, report.outcome_line(record))
    emit("swarm", f"task_{record.status}", assignment.work_item_id, report.outcome_facts(record))
    return record


@task(task_run_name="check-success-rate", **_TASK)
def require_success_rate(records: list[ExecutionRecord], minimum: float, run_id: str) -> float:
    """The run's success rate; below `minimum` the event `reactor.swarm.below_min_success_rate`
    goes out (an alert automation listens for it) and the run fails."""
    rate = execution.success_rate(records)
    if (error := execution.shortfall(records, minimum)) is not None:
        facts = report.shortfall_facts(records, rate, minimum)
        emit("swarm", "below_min_success_rate", run_id, facts)
        raise error
    get_run_logger().info(f"success rate {rate:.0%} (minimum {minimum:.0%})")
    return rate


@task(task_run_name="aggregate-telemetry", **_TASK)
def aggregate_telemetry(run_id: str, agents: list[Agent], plan: WorkPlan) -> TelemetrySummary:
    """Step 6: from the span records this run wrote (its agents are idle from here on)."""
    summary = aggregation.summarise_run(get_settings(), run_id, agents, plan.makespan_ms)
    get_run_logger().info(report.telemetry_line(summary))
    return summary


@task(task_run_name="export-datasets", **_TASK)
def export_datasets(result: SwarmResult, request: SwarmRequest) -> dict[str, list[str]]:
    """swarm_assignments, swarm_claims and swarm_timeline in every format; work_claims.json
    refreshed from the ledger."""
    logger = get_run_logger()
    snap, exported = report.export_datasets(result, request, get_settings())
    if snap.moved_aside:
        logger.warning(f"{snap.path} was not valid JSON: kept it as {snap.moved_aside}")
    for name, done in exported.items():
        logger.info(report.dataset_line(name, done))
    return {name: [str(f.path) for f in done.files] for name, done in exported.items()}


@task(task_run_name="publish-summary", **_TASK)
def publish_summary(result: SwarmResult, failure: str | None = None) -> None:
    """The assignments table and the markdown summary, under stable keys."""
    report.publish(result, failure)
