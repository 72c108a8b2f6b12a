"""Step 5, coordinated execution of one claimed work item (pure: no Prefect).

The ledger is the shared truth between agents: an item runs only when every dependency is
`completed` there (otherwise it is skipped, naming the dependency), its lease is kept alive by a
heartbeat thread while the handler works, and it becomes `completed` only when the handler
returned and the agent still held the claim. Each completion appends to coordination_log.json
(seed fields) and folds into the agent's metrics in agent_status.json.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from opentelemetry.trace import Status, StatusCode

from tasks.claims import ClaimLedger
from tasks.coordination_log import append_entries
from tasks.errors import CoordinationConflict
from tasks.settings import Settings
from tasks.swarm import agents as agent_registry
from tasks.swarm.handlers import resolve, run_with_retries
from tasks.swarm.models import Assignment, ExecutionRecord, HandlerSpec, SwarmTask
from tasks.telemetry import STATUS_ATTRIBUTE, get_tracer

SPAN_NAME = "swarm.execute"
VELOCITY_POINTS = {"critical": 8, "high": 5, "medium": 3, "low": 1}


def _now() -> str:
    return datetime.now(UTC).isoformat()


@contextlib.contextmanager
def lease_keeper(
    ledger: ClaimLedger, work_item_id: str, agent_id: str, lease_s: float
) -> Iterator[None]:
    """Heartbeat the claim every lease/3 while the block runs (a live agent keeps its lease;
    a dead one's lease expires and the item becomes reclaimable)."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(lease_s / 3):
            try:
                ledger.heartbeat(work_item_id, agent_id, lease_s)
            except CoordinationConflict:
                return

    thread = threading.Thread(target=beat, name=f"lease-{work_item_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def execute_item(
    ledger: ClaimLedger,
    settings: Settings,
    task: SwarmTask,
    assignment: Assignment,
    dependency_items: dict[str, str],
    handlers: dict[str, HandlerSpec],
    run_id: str,
    lease_s: float,
) -> ExecutionRecord:
    """Run the task's handler for the agent holding `assignment`'s claim; never raises for a
    task failure (the record says what happened)."""
    wid, agent_id = assignment.work_item_id, assignment.agent_id
    started, t0 = _now(), time.perf_counter()
    coordination_dir = settings.coordination_dir

    def record(status: str, attempts: int, result: Any = None, error: str | None = None):
        return ExecutionRecord(
            task_id=task.id,
            work_item_id=wid,
            agent_id=agent_id,
            status=status,  # type: ignore[arg-type]
            attempts=attempts,
            duration_ms=round((time.perf_counter() - t0) * 1000, 3),
            started_at=started,
            finished_at=_now(),
            result=result if isinstance(result, dict) or result is None else {"value": result},
            error=error,
        )

    statuses = ledger.statuses(dependency_items.values())
    blocked = sorted(t for t, w in dependency_items.items() if statuses.get(w) != "completed")
    if blocked:
        reason = f"skipped: dependency {', '.join(blocked)} did not complete"
        ledger.fail(wid, agent_id, reason)
        return record("skipped", 0, error=reason)
    inputs = {t: ledger.get(w).result for t, w in dependency_items.items()}
    call = {
        "task_id": task.id,
        "type": task.type,
        "priority": task.priority,
        "payload": task.payload,
        "inputs": inputs,
        "estimated_duration_ms": task.estimated_duration_ms,
        "run_id": run_id,
    }
    attributes = {
        "swarm.run_id": run_id,
        "swarm.task_id": task.id,
        "swarm.work_item_id": wid,
        "swarm.agent_id": agent_id,
        "swarm.work_type": task.type,
        "swarm.priority": task.priority,
    }
    agent_registry.set_workload(agent_id, +1, coordination_dir)
    outcome: ExecutionRecord
    with get_tracer().start_as_current_span(SPAN_NAME, attributes=attributes) as span:
        try:
            handler = resolve(task.type, handlers, task.timeout_s)
            ledger.progress(wid, agent_id, 10, lease_s)
            with lease_keeper(ledger, wid, agent_id, lease_s):
                result, attempts, errors = run_with_retries(
                    handler,
                    call,
                    task.timeout_s,
                    task.retries,
                    on_attempt=lambda n: span.set_attribute("swarm.attempts", n),
                )
            ledger.complete(wid, agent_id, result)
            outcome = record("completed", attempts, result)
            span.set_attribute("swarm.retried_errors", len(errors))
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, error))
            if isinstance(exc, TimeoutError):
                span.set_attribute(STATUS_ATTRIBUTE, "timeout")
            with contextlib.suppress(CoordinationConflict):  # lease lost: the new holder owns it
                ledger.fail(wid, agent_id, error)
            outcome = record("failed", task.retries + 1, error=error)
    agent_registry.set_workload(agent_id, -1, coordination_dir)
    agent_registry.record_outcome(
        agent_id, outcome.duration_ms, outcome.status == "completed", coordination_dir
    )
    if outcome.status == "completed":
        append_entries(
            [
                {
                    "work_item_id": wid,
                    "completed_at": outcome.finished_at,
                    "agent_id": agent_id,
                    "result": outcome.result,
                    "velocity_points": VELOCITY_POINTS[task.priority],
                    "scenario": "swarm",
                    "run_id": run_id,
                    "task_id": task.id,
                }
            ],
            settings,
        )
    return outcome
