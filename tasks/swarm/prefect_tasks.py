"""The swarm flow's @task wrappers over the pure modules (log lines from `story`; exports, events,
metrics and artifacts from `publish`): run names, the priority cache, undo hooks. Each
side-effecting task is idempotent for a resumed run (docs/swarm.md, "After a crash"). Imports
Prefect (edge module)."""

from __future__ import annotations

import time
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import INPUTS, NO_CACHE, CacheKeyFnPolicy

from tasks.claims import open_ledger
from tasks.compensation import compensated, remember
from tasks.events import emit
from tasks.settings import Settings, get_settings
from tasks.swarm import agents as registry
from tasks.swarm import (
    aggregation,
    claiming,
    distribution,
    execution,
    handlers,
    priority,
    publish,
    story,
)
from tasks.swarm.execution import ItemJob
from tasks.swarm.models import (
    Agent,
    ExecutionRecord,
    PriorityAnalysis,
    SwarmRequest,
    SwarmResult,
    SwarmTask,
    TelemetrySummary,
    WorkPlan,
)

# No input hashing/caching: a resumed run re-runs each task, which finds its dead attempt's work.
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
    logger = get_run_logger()
    (logger.warning if analysis.fallback_reason else logger.info)(story.priority_line(analysis))
    return analysis


@task(task_run_name="form-agents", **_TASK)
def form_agents(
    request: SwarmRequest, analysis: PriorityAnalysis, run_id: str = "", resuming: bool = False
) -> list[Agent]:
    """Step 2: mark dead the agents whose heartbeat lapsed (a killed run's), then form this
    run's agents (a resumed run keeps its dead attempt's) and register them."""
    settings, logger = get_settings(), get_run_logger()
    if lapsed := registry.mark_lapsed(request.heartbeat_timeout_s, settings):
        logger.warning(story.sweep_line(lapsed, request.heartbeat_timeout_s))
    earlier = registry.agents_of_run(run_id, settings) if resuming else {}
    agents = registry.form_agents(registry.agent_specs(request, analysis), earlier)
    remember(agent_ids=[a.agent_id for a in agents])
    registry.register(agents, settings, request.heartbeat_timeout_s, run_id or None)
    story.log_agents(logger, agents, set(earlier.values()))
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
    return story.logged(get_run_logger(), plan, story.plan_line(plan))


@task(task_run_name="start-handler-workers", **_TASK)
def start_handler_workers(request: SwarmRequest) -> float | None:
    """Before step 5 (submitted at the start, so it overlaps steps 1-4): the handler worker
    processes started and warm, so no task's measured time includes their start-up. How long
    it took; None when no task runs in them here (HTTP and scenario handlers, a Dask runner)."""
    settings = get_settings()
    targets = handlers.pool_targets((t.type for t in request.tasks), request.handlers)
    in_pool = settings.task_runner == "threads" and handlers.default_isolation() == "process"
    if targets is None or not in_pool:
        return None
    started_ms = handlers.start_workers(settings.max_workers, targets)
    get_run_logger().info(story.workers_line(settings.max_workers, started_ms))
    return started_ms


@task(task_run_name="claim-assignments", **_TASK)
def claim_assignments(request: SwarmRequest, plan: WorkPlan, run_id: str) -> WorkPlan:
    """Step 4: one work item per task, claimed for its planned agent; a resumed run takes back
    the items its dead attempt added and the claims its agents hold (same tokens)."""
    plan = claiming.with_work_items(plan, run_id)
    remember(claims=[(a.work_item_id, a.agent_id) for a in plan.assignments])
    with open_ledger(get_settings()) as ledger:
        plan, resumed = claiming.claim_for_run(ledger, request, plan, run_id)
    story.log_claims(get_run_logger(), plan, request.lease_s, resumed)
    emit("swarm", "claimed", run_id, {"claims": len(plan.assignments)})
    return plan


@claim_assignments.on_rollback
def _release_claims(txn) -> None:
    with open_ledger(get_settings()) as ledger:
        released = claiming.release_unfinished(ledger, txn.get("claims"))
    compensated(f"released {released} unfinished claim(s) of {len(txn.get('claims'))}")


@task(task_run_name="execute-{job.task.id}", **_TASK)
def execute_work_item(job: ItemJob) -> ExecutionRecord:
    """Step 5 for one claimed item: its handler, under its lease, with timeout and retries."""
    settings, logger, t0 = get_settings(), get_run_logger(), time.perf_counter()
    on_retry = story.retry_logger(logger, job.assignment)
    with open_ledger(settings) as ledger:
        record = execution.execute_item(ledger, settings, job, on_retry)
    return publish.executed(logger, record, time.perf_counter() - t0)


@task(task_run_name="check-success-rate", **_TASK)
def require_success_rate(records: list[ExecutionRecord], minimum: float, run_id: str) -> float:
    """The success rate; below `minimum` the alert event goes out and the run fails."""
    return publish.check_success_rate(get_run_logger(), records, minimum, run_id)


@task(task_run_name="aggregate-telemetry", **_TASK)
def aggregate_telemetry(
    run_id: str, agents: list[Agent], plan: WorkPlan, handler_startup_ms: float | None = None
) -> TelemetrySummary:
    """Step 6: from the span records this run wrote (its agents are idle from here on)."""
    summary = aggregation.summarise_run(
        get_settings(), run_id, agents, plan.makespan_ms, handler_startup_ms
    )
    return story.logged(get_run_logger(), summary, story.telemetry_line(summary))


@task(task_run_name="export-datasets", **_TASK)
def export_datasets(result: SwarmResult, request: SwarmRequest) -> dict[str, list[str]]:
    """The run's datasets in every format; work_claims.json refreshed from the ledger."""
    return story.log_exports(
        get_run_logger(), *publish.export_datasets(result, request, get_settings())
    )


@task(task_run_name="publish-summary", **_TASK)
def publish_summary(result: SwarmResult, failure: str | None = None) -> None:
    """The assignments table and the markdown summary, under stable keys."""
    publish.publish(result, failure)
