"""A drain run's steps against the ledger's queue (pure: no Prefect): take a selection closed
under dependencies, turn it into the tasks the swarm plans, hand each claim to its planned agent
keeping its fencing token, give back what is still held when the run rolls back, and measure
what the run did to the queue."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from tasks.claims import HELD, Claim, Ledger
from tasks.swarm.claiming import resume_into
from tasks.swarm.models import (
    DrainSummary,
    ExecutionRecord,
    ResumeReport,
    SwarmRequest,
    SwarmTask,
    TakenWork,
    WorkPlan,
)

MAX_ERRORS_SHOWN = 20  # last errors kept in the summary (the ledger keeps every one)


def task_of(claim: Claim, taken: set[str], timeout_s: float) -> SwarmTask:
    """The task the swarm plans for a taken item: its id is the work item id, its dependencies
    those taken with it (the others are completed), one attempt per drain (the ledger's
    `max_attempts` is the retry policy across drains). Built without re-validation: the item
    was validated when it was added."""
    return SwarmTask.model_construct(
        id=claim.work_item_id,
        type=claim.work_type,
        priority=claim.priority,
        payload=claim.payload,
        dependencies=[d for d in claim.dependencies if d in taken],
        estimated_duration_ms=float(max(claim.estimated_duration, 1)),
        description=claim.description,
        timeout_s=timeout_s,
        retries=0,
    )


def take(
    ledger: Ledger,
    request: SwarmRequest,
    run_id: str,
    resuming: bool = False,
    earlier_agents: Collection[str] = (),
) -> TakenWork:
    """Take up to `request.queue.limit` items for run `run_id` (the holder until each is handed
    to an agent); the request of the run with the taken items as its tasks.

    A resumed run (`earlier_agents`: its dead attempt's agents, if it formed any) first looks
    for what its dead attempt took (held or finished under the run's id or those agents): if
    any, that is its batch again, each held claim taken back under its token, and nothing new
    is taken; `resumed` says what it found."""
    selection = request.queue
    assert selection is not None, "take() is for drain runs (request.queue)"
    depth, oldest = ledger.queue_depth(), ledger.oldest_pending_age_s()
    report = None
    if resuming and (held := ledger.holdings([run_id, *earlier_agents])):
        claims, report = _take_back(ledger, held, request.lease_s)
    else:
        claims = ledger.take(
            run_id,
            selection.limit,
            selection.types or request.handled_types(),
            selection.priority_at_least,
            request.lease_s,
        )
    taken = {c.work_item_id for c in claims}
    tasks = [task_of(c, taken, selection.timeout_s) for c in claims]
    return TakenWork(
        request=request.model_copy(update={"tasks": tasks}),
        claims={c.work_item_id: c.claim_id or "" for c in claims},
        dependencies={c.work_item_id: list(c.dependencies) for c in claims},
        depth_before=depth,
        oldest_pending_age_s=oldest,
        resumed=report,
        unestimated=sum(c.estimated_duration == 0 for c in claims),
    )


def _take_back(
    ledger: Ledger, held: list[Claim], lease_s: float
) -> tuple[list[Claim], ResumeReport]:
    """The dead attempt's batch: each held claim renewed under its token (fenced), each finished
    one as it is; one lost since the read is left out (its new holder has it)."""
    report = ResumeReport(total=len(held))
    backs = [resume_into(ledger, c.work_item_id, c.claim_id or "", lease_s, report) for c in held]
    return [b for b in backs if b is not None], report


def dependency_items(batch: TakenWork | None, task: SwarmTask, items: Mapping[str, str]):
    """task id -> work item id of every dependency whose result the task gets as input: in a
    drain, all of the item's dependencies (those outside the selection are completed)."""
    if batch is None:
        return {d: items[d] for d in task.dependencies}
    return {d: items.get(d, d) for d in batch.dependencies[task.id]}


def assign(ledger: Ledger, plan: WorkPlan, batch: TakenWork) -> WorkPlan:
    """Hand each taken claim to the agent the plan chose, keeping its token."""
    assigned, finished = [], set(batch.resumed.finished if batch.resumed else ())
    for a in plan.assignments:
        token = batch.claims[a.task_id]
        if a.task_id not in finished:  # one the dead attempt finished stays as it is
            token = ledger.assign(a.task_id, token, a.agent_id).claim_id or ""
        update = {"work_item_id": a.task_id, "claim_id": token, "from_queue": True}
        assigned.append(a.model_copy(update=update))
    return plan.model_copy(update={"assignments": assigned})


def release_held(ledger: Ledger, claims: Mapping[str, str]) -> int:
    """Give back every taken item still held under its token (work_item_id -> claim id): it is
    pending again with no attempt counted. How many were."""
    released = 0
    for work_item_id, claim_id in claims.items():
        current = ledger.get(work_item_id)
        if current.status in HELD and current.claim_id == claim_id:
            ledger.release(work_item_id, claim_id)
            released += 1
    return released


def summarize(ledger: Ledger, batch: TakenWork, executions: list[ExecutionRecord]) -> DrainSummary:
    """What the run did to the queue, read back from the ledger after the run."""
    statuses = ledger.statuses(batch.claims)
    counts = ledger.counts()  # one pass over the queue for the depth and the dead letters
    unfinished = [w for w, s in statuses.items() if s != "completed"]
    errors = {}
    for wid in unfinished[:MAX_ERRORS_SHOWN]:
        if (error := ledger.get(wid).last_error) is not None:
            errors[wid] = error
    return DrainSummary(
        depth_before=batch.depth_before,
        depth_after=counts.get("pending", 0),
        taken=len(batch.claims),
        completed=sum(s == "completed" for s in statuses.values()),
        failed=sum(s == "failed" for s in statuses.values()),
        returned=sum(s == "pending" for s in statuses.values()),
        oldest_pending_age_s=ledger.oldest_pending_age_s(),
        blocked=ledger.blocked(),
        last_errors=errors,
        dead_letters=counts.get("failed", 0),
        unestimated=batch.unestimated,
    )
