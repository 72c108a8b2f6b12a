"""AI swarm coordination: prioritise, form agents, distribute, claim, execute, measure —
over inline tasks, or over work taken from the ledger's queue (a drain run). The steps,
datasets and design decisions are in docs/swarm.md.

python -m flows.swarm_coordination            # runs the bundled sample
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from prefect import get_run_logger
from prefect.artifacts import acreate_progress_artifact, aupdate_progress_artifact
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run

from tasks.compensation import compensating
from tasks.errors import RolledBack
from tasks.events import emit
from tasks.runtime import current_run_id, reactor_flow
from tasks.swarm.agents import heartbeating
from tasks.swarm.errors import SwarmRolledBack
from tasks.swarm.execution import ItemJob, submission_order, success_rate
from tasks.swarm.models import ExecutionRecord, SwarmRequest, SwarmResult, TakenWork, WorkPlan
from tasks.swarm.prefect_tasks import (
    aggregate_telemetry,
    analyze_priorities,
    claim_assignments,
    distribute_work,
    execute_work_item,
    export_datasets,
    form_agents,
    publish_summary,
    require_success_rate,
    start_handler_workers,
)
from tasks.swarm.queue.draining import dependency_items
from tasks.swarm.queue.prefect_tasks import assign_work, summarize_drain, take_work
from tasks.swarm.results import empty_run
from tasks.swarm.story import request_line

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "swarm" / "tasks.json"


# not `resumable`: each step finds its dead attempt's work in the ledger and the registry, no
# Prefect result needed (docs/swarm.md, "After a crash")
@reactor_flow("swarm-coordination")
async def swarm_coordination(request: SwarmRequest) -> SwarmResult:
    logger, run_id = get_run_logger(), current_run_id()
    logger.info(request_line(request))
    # a retry of this run (same id, `reactor runs resume`): each step finds what its dead
    # attempt did in the ledger and the agent registry and continues from there
    resuming = (flow_run.run_count or 1) > 1
    if resuming:
        logger.info("resuming run %s: attempt %d", run_id, flow_run.run_count)
    emit("swarm", "started", run_id, {"tasks": len(request.tasks), "drain": bool(request.queue)})

    # 0 and 2-5 change shared state, so they run as one transaction: a failure (or a success
    # rate below the minimum) deregisters the agents and releases unfinished claims.
    executions: list[ExecutionRecord] = []
    failure: RolledBack | None = None
    batch: TakenWork | None = None
    try:
        with compensating("swarm coordination"):
            # 0. a drain run takes its work from the ledger's queue (undo: give back what is
            # still held); an inline run brings its tasks
            if request.queue is not None:
                batch = take_work(request, run_id, resuming)
            work = batch.request if batch else request
            if work.tasks:  # the handler workers start while steps 1-4 run
                workers = start_handler_workers.submit(work)
            else:  # nothing ready in the queue: the summary says so
                assert batch is not None
                result = empty_run(run_id, request, summarize_drain(batch, [], run_id))
                publish_summary(result)
                emit("swarm", "completed", run_id, {"success_rate": 1.0, "taken": 0})
                return result

            # 1. priority analysis: Claude when configured (answers cached), else the heuristic
            analysis = analyze_priorities(work)
            agents = form_agents(work, analysis, run_id, resuming)
            plan = distribute_work(work, analysis, agents)
            # the agents beat their heartbeat while the run works (killed, they lapse)
            with heartbeating([a.agent_id for a in agents], request.heartbeat_timeout_s):
                if batch is not None:  # 4. taken items to their planned agents (same tokens)
                    plan = assign_work(plan, batch, request.lease_s)
                else:  # 4. one work item per task, claimed for its planned agent
                    plan = claim_assignments(work, plan, run_id)
                facts = {"makespan_ms": plan.makespan_ms, "ratio": plan.ratio}
                emit("swarm", "planned", run_id, facts)
                # 5. one task run per claimed item, after its dependencies and its slot's
                # previous item (an item its dead attempt finished is not run again)
                # the tasks start once the workers are ready: their times are their own
                startup_ms = workers.result()
                executions = await execute_plan(plan, work, batch, run_id)
            require_success_rate(executions, request.min_success_rate, run_id)
    except RolledBack as undone:
        if not executions:  # failed before the plan ran: the error says what was undone
            raise
        failure = undone
        logger.error("rolled back: %s; undone: %s", undone.message, "; ".join(undone.compensations))

    # 6. telemetry aggregation from the spans this run wrote, the queue's state, datasets, UI
    result = SwarmResult(
        run_id=run_id,
        strategy=request.optimization_strategy,
        analysis=analysis,
        agents=agents,
        plan=plan,
        telemetry=aggregate_telemetry(run_id, agents, plan, startup_ms),
        executions=executions,
        success_rate=success_rate(executions),
        queue=summarize_drain(batch, executions, run_id) if batch else None,
        compensations=failure.compensations if failure else [],
    )
    if failure:  # the summary still shows what ran and what was undone; the run fails
        publish_summary(result, failure=failure.message)
        raise SwarmRolledBack(failure.message, failure.compensations, result) from failure
    result.exports = export_datasets(result, work)
    publish_summary(result)
    emit("swarm", "completed", run_id, {"success_rate": result.success_rate})
    return result


async def execute_plan(
    plan: WorkPlan, work: SwarmRequest, batch: TakenWork | None, run_id: str
) -> list[ExecutionRecord]:
    tasks = {t.id: t for t in work.tasks}
    items = {a.task_id: a.work_item_id for a in plan.assignments}
    futures: dict[str, PrefectFuture[ExecutionRecord]] = {}
    for a, after in submission_order(plan, tasks):
        task = tasks[a.task_id]
        job = ItemJob(
            task=task,
            assignment=a,
            run_id=run_id,
            lease_s=work.lease_s,
            dependency_items=dependency_items(batch, task, items),
            handlers=work.handlers,
        )
        futures[a.task_id] = execute_work_item.submit(job, wait_for=[futures[t] for t in after])
    progress = await acreate_progress_artifact(0.0, description=f"{run_id}: tasks done")
    finished = []
    for future in futures.values():
        finished.append(future.result())
        await aupdate_progress_artifact(progress, 100.0 * len(finished) / len(futures))
    return finished


def load_sample(path: Path = SAMPLE) -> SwarmRequest:
    return SwarmRequest.model_validate_json(path.read_text(encoding="utf-8"))


if __name__ == "__main__":
    result = asyncio.run(swarm_coordination(load_sample()))
    print(
        f"run {result.run_id}: success rate {result.success_rate:.0%}, "
        f"priorities by {result.analysis.source}, planned makespan {result.plan.makespan_ms:.0f}"
        f" ms = {result.plan.ratio:.3f} x lower bound; datasets: {', '.join(result.exports)}"
    )
