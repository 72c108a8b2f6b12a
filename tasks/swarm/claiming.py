"""Step 4, atomic claiming: one work item per planned task in the claim ledger, claimed for
its planned agent under a lease; a resumed run's take-back of what its dead attempt held; and
the undo, which releases what is still held (pure: no Prefect).

Work item ids are the run's and the task's (`work_<run id>_<task id>`), so a resumed run (same
flow-run id) finds the items its dead attempt added instead of adding new ones.
"""

from __future__ import annotations

from collections.abc import Collection

from tasks.claims import HELD, Claim, Ledger, WorkItem
from tasks.errors import CoordinationConflict
from tasks.swarm.models import Assignment, ResumeReport, SwarmRequest, WorkPlan


def work_item_id(run_id: str, task_id: str) -> str:
    return f"work_{run_id}_{task_id}"


def with_work_items(plan: WorkPlan, run_id: str) -> WorkPlan:
    """The plan with the run's work item id on every assignment."""
    return plan.model_copy(
        update={
            "assignments": [
                a.model_copy(update={"work_item_id": work_item_id(run_id, a.task_id)})
                for a in plan.assignments
            ]
        }
    )


def work_items(request: SwarmRequest, plan: WorkPlan, run_id: str) -> list[WorkItem]:
    tasks = {t.id: t for t in request.tasks}
    return [
        WorkItem(
            work_item_id=a.work_item_id,
            work_type=tasks[a.task_id].type,
            priority=tasks[a.task_id].priority,
            description=tasks[a.task_id].description or f"{a.task_id} ({run_id})",
            estimated_duration=round(tasks[a.task_id].estimated_duration_ms),
            team="swarm",
            payload={"task_id": a.task_id, "run_id": run_id},
            max_attempts=1,  # retried inside the run (task.retries), never by a later drain
        )
        for a in plan.assignments
    ]


def add_missing(ledger: Ledger, request: SwarmRequest, plan: WorkPlan, run_id: str) -> set[str]:
    """Add the plan's work items the ledger does not have yet; the ids it already had (added by
    a dead attempt of this run)."""
    items = work_items(request, plan, run_id)
    found = set(ledger.statuses(i.work_item_id for i in items))
    ledger.add([i for i in items if i.work_item_id not in found])
    return found


def claim_for_run(
    ledger: Ledger, request: SwarmRequest, plan: WorkPlan, run_id: str
) -> tuple[WorkPlan, ResumeReport | None]:
    """Add the run's items (those not there yet) and claim them for their planned agents,
    taking back what this run's agents hold; the report when a dead attempt had added some."""
    found = add_missing(ledger, request, plan, run_id)
    ours = {a.agent_id for a in plan.assignments}
    plan, report = claim_planned(ledger, plan, request.lease_s, found, ours)
    return plan, report if found else None


def claim_planned(
    ledger: Ledger,
    plan: WorkPlan,
    lease_s: float,
    found: Collection[str] = (),
    ours: Collection[str] = (),
) -> tuple[WorkPlan, ResumeReport]:
    """Claim every item for its planned agent; an item already there (`found`) is taken back
    instead when one of this run's agents (`ours`) holds it. The plan with each claim's id
    (empty for an item lost to another holder), and what the take-back found."""
    report, claimed = ResumeReport(total=len(plan.assignments)), []
    for a in plan.assignments:
        if a.work_item_id in found:
            token = take_back(ledger, a, lease_s, ours, report)
        else:
            token = ledger.claim(a.work_item_id, a.agent_id, lease_s).claim_id
            report.fresh += 1
        claimed.append(a.model_copy(update={"claim_id": token or ""}))
    return plan.model_copy(update={"assignments": claimed}), report


def take_back(
    ledger: Ledger, a: Assignment, lease_s: float, ours: Collection[str], report: ResumeReport
) -> str | None:
    """The claim on an item a dead attempt of this run added: under its token when one of the
    run's agents holds (or finished) it, a new one when it is pending, None when it was lost."""
    wid, current = a.work_item_id, ledger.get(a.work_item_id)
    if current.claim_id and current.agent_id in ours:
        back = resume_into(ledger, wid, current.claim_id, lease_s, report)
        if back is not None and back.status in HELD and back.agent_id != a.agent_id:
            ledger.assign(wid, current.claim_id, a.agent_id)
        return back.claim_id if back is not None else None
    if current.status == "pending":  # added, never claimed (or given back)
        report.fresh += 1
        return ledger.claim(wid, a.agent_id, lease_s).claim_id
    report.lost[wid] = f"{current.status} under claim {current.claim_id} by {current.agent_id}"
    return None


def resume_into(
    ledger: Ledger, work_item_id: str, claim_id: str, lease_s: float, report: ResumeReport
) -> Claim | None:
    """`ledger.resume_claim` for a resumed run, noted in `report`: taken back (still held under
    the dead attempt's token, fenced), finished under it, or lost to another holder since the
    caller read it (None)."""
    try:
        back = ledger.resume_claim(work_item_id, claim_id, lease_s)
    except CoordinationConflict as exc:
        report.lost[work_item_id] = str(exc)
        return None
    if back.status in HELD:
        report.taken_back.append(work_item_id)
    else:
        report.finished[work_item_id] = back.status
    return back


def release_unfinished(ledger: Ledger, claims: list[tuple[str, str]]) -> int:
    """Give back every (work_item_id, agent_id) claim that agent still holds; how many were."""
    released = 0
    for work_item_id, agent_id in claims:
        current = ledger.get(work_item_id)
        if current.status in HELD and current.agent_id == agent_id and current.claim_id:
            ledger.release(work_item_id, current.claim_id)
            released += 1
    ledger.snapshot()
    return released
