"""Step 4, atomic claiming: one work item per planned task in the claim ledger, claimed for
its planned agent under a lease; and the undo, which releases what is still held (pure: no
Prefect)."""

from __future__ import annotations

from tasks.claims import HELD, Ledger, WorkItem
from tasks.ids import new_id
from tasks.swarm.models import SwarmRequest, WorkPlan


def with_work_items(plan: WorkPlan) -> WorkPlan:
    """The plan with a fresh `work_<ns>` id on every assignment."""
    return plan.model_copy(
        update={
            "assignments": [
                a.model_copy(update={"work_item_id": new_id("work")}) for a in plan.assignments
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


def claim_planned(ledger: Ledger, plan: WorkPlan, lease_s: float) -> WorkPlan:
    """Claim every item for its planned agent; the plan with each claim's id."""
    claimed = []
    for a in plan.assignments:
        claim = ledger.claim(a.work_item_id, a.agent_id, lease_s)
        claimed.append(a.model_copy(update={"claim_id": claim.claim_id or ""}))
    return plan.model_copy(update={"assignments": claimed})


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
