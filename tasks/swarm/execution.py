"""Step 5, coordinated execution of one claimed work item (pure: no Prefect).

The ledger is the shared truth between agents: an item runs only when every dependency is
`completed` there (otherwise it is skipped, naming the dependency), its lease is kept alive by a
heartbeat thread while the handler works, and it becomes `completed` only when the handler
returned and the agent still held the claim. Each completion appends to the coordination log
(work_item_id, completed_at, agent_id, result, velocity_points) and folds into the agent's
metrics in agent_status.json.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from opentelemetry.trace import Span, Status, StatusCode
from pydantic import BaseModel, Field

from tasks import agent_registry
from tasks.claims import FINISHED, HELD, Claim, Ledger
from tasks.coordination_log import append_entries, idempotency_key
from tasks.errors import CoordinationConflict
from tasks.periodic import every
from tasks.redaction import redact
from tasks.settings import Settings
from tasks.span_log import STATUS_ATTRIBUTE
from tasks.swarm.errors import SuccessRateTooLow
from tasks.swarm.handlers import HandlerOutcome, resolve, run_with_retries
from tasks.swarm.models import Assignment, ExecutionRecord, HandlerSpec, SwarmTask, WorkPlan
from tasks.telemetry import get_tracer

SPAN_NAME = "swarm.execute"
SUBFLOW_ATTRIBUTE = "swarm.subflow_run_id"
VELOCITY_POINTS = {"critical": 8, "high": 5, "medium": 3, "low": 1}
OnRetry = Callable[[int, str, float], None]


def _now() -> str:
    return datetime.now(UTC).isoformat()


def submission_order(
    plan: WorkPlan, tasks: Mapping[str, SwarmTask]
) -> list[tuple[Assignment, list[str]]]:
    """The assignments in planned start order, each with the task ids it must wait for: its
    dependencies and the task before it on the same agent slot (so an agent never runs more
    than its concurrency). This is a topological order of both relations, so submitting in it
    to a bounded thread pool cannot deadlock."""
    last_on_slot: dict[tuple[str, int], str] = {}
    order = []
    for a in sorted(plan.assignments, key=lambda a: (a.planned_start_ms, a.order)):
        after = list(tasks[a.task_id].dependencies)
        previous = last_on_slot.get((a.agent_id, a.slot))
        if previous is not None:
            after.append(previous)
        order.append((a, after))
        last_on_slot[(a.agent_id, a.slot)] = a.task_id
    return order


@dataclass
class Lease:
    """What the lease keeper found: `lost` is the ledger's refusal once the claim is gone."""

    lost: CoordinationConflict | None = None


@contextlib.contextmanager
def lease_keeper(
    ledger: Ledger, work_item_id: str, claim_id: str, lease_s: float
) -> Iterator[Lease]:
    """Heartbeat the claim every lease/3 while the block runs (a live agent keeps its lease;
    a dead one's lease expires and the item becomes reclaimable). A beat that fails (store
    unavailable, locked, timed out) is retried at the next one; only a lost claim stops the
    keeper, and the lease it yields says so."""
    lease = Lease()

    def beat() -> bool:
        try:
            ledger.heartbeat(work_item_id, claim_id, lease_s)
        except CoordinationConflict as exc:
            lease.lost = exc
            return False
        return True

    with every(lease_s / 3, beat, f"lease-{work_item_id}"):
        yield lease


class ItemJob(BaseModel):
    """One claimed work item for `execute_item`, passed whole from the flow's task."""

    task: SwarmTask
    assignment: Assignment  # the claim this run's agent holds on the task's work item
    run_id: str
    lease_s: float
    # task id -> work item id of each dependency whose result the task gets as input
    dependency_items: dict[str, str] = Field(default_factory=dict)
    handlers: dict[str, HandlerSpec] = Field(default_factory=dict)


@dataclass
class _Clock:
    """When this attempt at the job started; makes its records."""

    job: ItemJob
    started: str = field(default_factory=_now)
    t0: float = field(default_factory=time.perf_counter)

    def record(
        self, status: str, attempts: int, result: Any = None, error: str | None = None
    ) -> ExecutionRecord:
        return ExecutionRecord(
            task_id=self.job.task.id,
            work_item_id=self.job.assignment.work_item_id,
            agent_id=self.job.assignment.agent_id,
            status=status,  # type: ignore[arg-type]
            attempts=attempts,
            duration_ms=round((time.perf_counter() - self.t0) * 1000, 3),
            started_at=self.started,
            finished_at=_now(),
            result=result if isinstance(result, dict) or result is None else {"value": result},
            # the record's error reaches the run's failure, its state messages and the CLI
            error=None if error is None else redact(error),
        )


def execute_item(
    ledger: Ledger, settings: Settings, job: ItemJob, on_retry: OnRetry | None = None
) -> ExecutionRecord:
    """Run the task's handler for the agent holding the job's claim; never raises for a task
    failure (the record says what happened, with the attempts that really ran)."""
    clock, assignment = _Clock(job), job.assignment
    current = ledger.get(assignment.work_item_id)
    held = current.claim_id == assignment.claim_id and current.status in HELD
    if not assignment.claim_id or not held:
        return recovered(settings, job, current, clock)
    if blocked := _incomplete_dependencies(ledger, job):
        return _skip(ledger, job, blocked, clock)
    call = _handler_call(ledger, job)
    agent_registry.set_workload(assignment.agent_id, +1, settings)
    with get_tracer().start_as_current_span(SPAN_NAME, attributes=_span_attributes(job)) as span:
        outcome, done = _run_and_complete(ledger, settings, job, call, clock, span, on_retry)
        span.set_attribute("swarm.attempts", outcome.attempts)
        span.set_attribute("swarm.retried_errors", max(0, outcome.attempts - 1))
        if done is None:
            done = _fail(ledger, job, outcome, clock, span)
        elif subflow := (done.result or {}).get("subflow_run_id"):  # a scenario handler's
            span.set_attribute(SUBFLOW_ATTRIBUTE, subflow)
    agent_registry.set_workload(assignment.agent_id, -1, settings)
    completed = done.status == "completed"
    agent_registry.record_outcome(assignment.agent_id, done.duration_ms, completed, settings)
    return done


def _span_attributes(job: ItemJob) -> dict[str, Any]:
    return {
        "swarm.run_id": job.run_id,
        "swarm.task_id": job.task.id,
        "swarm.work_item_id": job.assignment.work_item_id,
        "swarm.agent_id": job.assignment.agent_id,
        "swarm.work_type": job.task.type,
        "swarm.priority": job.task.priority,
    }


def _incomplete_dependencies(ledger: Ledger, job: ItemJob) -> list[str]:
    """The task's dependencies whose items are not `completed` in the ledger."""
    statuses = ledger.statuses(job.dependency_items.values())
    return sorted(t for t, w in job.dependency_items.items() if statuses.get(w) != "completed")


def _skip(ledger: Ledger, job: ItemJob, blocked: list[str], clock: _Clock) -> ExecutionRecord:
    reason = f"skipped: dependency {', '.join(blocked)} did not complete"
    wid, claim_id = job.assignment.work_item_id, job.assignment.claim_id
    if job.assignment.from_queue:  # back to the queue, no attempt counted: it did not run
        ledger.release(wid, claim_id)
    else:
        ledger.fail(wid, claim_id, reason)
    return clock.record("skipped", 0, error=reason)


def _handler_call(ledger: Ledger, job: ItemJob) -> dict[str, Any]:
    """What the handler is called with: the task, and its dependencies' results as inputs."""
    task = job.task
    return {
        "task_id": task.id,
        "type": task.type,
        "priority": task.priority,
        "payload": task.payload,
        "inputs": {t: ledger.get(w).result for t, w in job.dependency_items.items()},
        "estimated_duration_ms": task.estimated_duration_ms,
        "run_id": job.run_id,
    }


def _run_and_complete(
    ledger: Ledger,
    settings: Settings,
    job: ItemJob,
    call: dict[str, Any],
    clock: _Clock,
    span: Span,
    on_retry: OnRetry | None,
) -> tuple[HandlerOutcome, ExecutionRecord | None]:
    """The handler's outcome, and the completed record when the handler returned and the item
    was completed under the claim (and logged, in one transaction on PostgreSQL); else None and
    the outcome's error says why."""
    wid, claim_id, lease_s = job.assignment.work_item_id, job.assignment.claim_id, job.lease_s
    outcome = HandlerOutcome(attempts=0)
    try:
        ref = resolve(job.task.type, job.handlers)
        ledger.progress(wid, claim_id, 10, lease_s)
        with lease_keeper(ledger, wid, claim_id, lease_s) as lease:
            outcome = run_with_retries(
                ref,
                call,
                job.task.timeout_s,
                job.task.retries,
                workers=settings.max_workers,
                on_attempt=lambda n: span.set_attribute("swarm.attempts", n),
                on_retry=on_retry,
            )
        if lease.lost is not None:  # another holder may be running it: never complete
            outcome.error = lease.lost
        if outcome.error is None:
            finished = clock.record("completed", outcome.attempts, outcome.result)
            ledger.complete(wid, claim_id, outcome.result, log_entry=_log_entry(finished, job))
            return outcome, finished
    except Exception as exc:  # no handler, or the ledger refused (the lease was lost)
        outcome.error = exc
    return outcome, None


def _fail(
    ledger: Ledger, job: ItemJob, outcome: HandlerOutcome, clock: _Clock, span: Span
) -> ExecutionRecord:
    """The item failed under its claim (unless the lease was lost); the span says why."""
    exc = outcome.error
    assert exc is not None
    error = f"{type(exc).__name__}: {exc}"
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, error))
    if isinstance(exc, TimeoutError):
        span.set_attribute(STATUS_ATTRIBUTE, "timeout")
    with contextlib.suppress(CoordinationConflict):  # lease lost: the new holder owns it
        ledger.fail(job.assignment.work_item_id, job.assignment.claim_id, error)
    return clock.record("failed", outcome.attempts, error=error)


def recovered(settings: Settings, job: ItemJob, current: Claim, clock: _Clock) -> ExecutionRecord:
    """The record of an item this attempt does not run: finished under its claim by a dead
    attempt of this run (the ledger's completion is the result, even when the kill came before
    the task's record was kept; its log entry is appended again, a no-op when it was logged),
    or lost to another holder (skipped, saying who has it)."""
    if current.claim_id != job.assignment.claim_id or current.status not in FINISHED:
        holder = f"{current.status} under claim {current.claim_id} by {current.agent_id}"
        return clock.record("skipped", 0, error=f"skipped: claim lost, the item is {holder}")
    result = current.result if current.status == "completed" else None
    done = clock.record(current.status, 0, result, error=current.last_error).model_copy(
        update={
            "resumed": True,
            "duration_ms": 0.0,
            "started_at": current.claimed_at or "",
            "finished_at": current.completed_at or "",
        }
    )
    if done.status == "completed":
        append_entries([_log_entry(done, job)], settings)
    return done


def _log_entry(done: ExecutionRecord, job: ItemJob) -> dict[str, Any]:
    return {
        "work_item_id": done.work_item_id,
        "completed_at": done.finished_at,
        "agent_id": done.agent_id,
        "result": done.result,
        "velocity_points": VELOCITY_POINTS[job.task.priority],
        "scenario": "swarm",
        "run_id": job.run_id,
        "task_id": job.task.id,
        "idempotency_key": idempotency_key("swarm", job.run_id, done.work_item_id),  # logged once
    }


def success_rate(records: list[ExecutionRecord]) -> float:
    """Completed / executed; 1.0 for a run with nothing to execute (an empty drain)."""
    return sum(r.status == "completed" for r in records) / len(records) if records else 1.0


def shortfall(records: list[ExecutionRecord], minimum: float) -> SuccessRateTooLow | None:
    """The error a run fails with when fewer than `minimum` of its tasks completed."""
    rate = success_rate(records)
    if rate >= minimum:
        return None
    failed = "; ".join(f"{r.task_id} ({r.error})" for r in records if r.status != "completed")
    return SuccessRateTooLow(  # redacted, as every ReactorError's message
        f"success rate {rate:.0%} is below min_success_rate {minimum:.0%}; not completed: {failed}"
    )
