"""The drain run's @task wrappers over `draining` and `enqueue`: the take (undo: give back what
is still held), the hand-over to agents, the queue summary; and the producers' enqueue task.
Logs, events and the UI summary an operator reads. Imports Prefect (edge module)."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.claims import WorkItem, open_ledger
from tasks.compensation import compensated, remember
from tasks.events import emit
from tasks.settings import get_settings
from tasks.swarm.agents import agents_of_run
from tasks.swarm.models import DrainSummary, ExecutionRecord, SwarmRequest, TakenWork, WorkPlan
from tasks.swarm.queue import draining, enqueue
from tasks.swarm.story import claim_line, drain_line, resume_line, take_line

_TASK = {"cache_policy": NO_CACHE, "persist_result": False}


@task(task_run_name="take-from-queue", **_TASK)
def take_work(request: SwarmRequest, run_id: str, resuming: bool = False) -> TakenWork:
    """Step 0 of a drain run: take the selection from the ledger's queue for this run; a
    resumed run takes back what its dead attempt took (same tokens) instead."""
    settings, logger = get_settings(), get_run_logger()
    earlier = agents_of_run(run_id, settings).values() if resuming else ()
    with open_ledger(settings) as ledger:
        batch = draining.take(ledger, request, run_id, resuming, earlier)
    remember(taken=batch.claims)
    if batch.resumed is not None:
        logger.info(resume_line(batch.resumed))
    logger.info(take_line(request, batch))
    emit("swarm", "taken", run_id, {"taken": len(batch.claims), "depth": batch.depth_before})
    return batch


@take_work.on_rollback
def _give_back(txn) -> None:
    taken = txn.get("taken")
    with open_ledger(get_settings()) as ledger:
        released = draining.release_held(ledger, taken)
    compensated(f"gave back {released} taken item(s) of {len(taken)} to the queue")


@task(task_run_name="assign-taken", **_TASK)
def assign_work(plan: WorkPlan, batch: TakenWork, lease_s: float) -> WorkPlan:
    """Step 4 of a drain run: each taken item to the agent the plan chose (same token)."""
    with open_ledger(get_settings()) as ledger:
        plan = draining.assign(ledger, plan, batch)
    logger = get_run_logger()
    for a in plan.assignments:
        logger.info(claim_line(a, lease_s))
    return plan


@task(task_run_name="summarize-drain", **_TASK)
def summarize_drain(batch: TakenWork, executions: list[ExecutionRecord], run_id: str):
    """What the run did to the queue (depth before/after, taken, completed, failed, returned,
    oldest pending age, blocked items), read back from the ledger."""
    with open_ledger(get_settings()) as ledger:
        summary: DrainSummary = draining.summarize(ledger, batch, executions)
    logger = get_run_logger()
    logger.info(drain_line(summary))
    for wid, roots in list(summary.blocked.items())[:20]:
        logger.warning("%s is blocked: it depends on failed %s", wid, ", ".join(roots))
    if summary.dead_letters:
        logger.warning(
            "%d item(s) failed for good in the queue (out of attempts; `reactor claims blocked` "
            "lists them with their last error)",
            summary.dead_letters,
        )
    emit("swarm", "drained", run_id, summary.model_dump(exclude={"blocked", "last_errors"}))
    return summary


@task(task_run_name="enqueue-{source}", **_TASK)
def enqueue_items(items: list[WorkItem | dict[str, Any]], source: str) -> list[str]:
    """Add the items to the queue, all or none; their ids."""
    added = enqueue.enqueue(items, get_settings())
    types = sorted({c.work_type for c in added})
    get_run_logger().info("enqueued %d item(s) from %s (%s)", len(added), source, ", ".join(types))
    emit("swarm", "enqueued", source, {"items": [c.work_item_id for c in added][:100]})
    return [c.work_item_id for c in added]
