"""Scenario handlers: work item types that run another scenario's flow as a subflow of the swarm
run (docs/swarm.md, "Scenario handlers").

- `spr.batch`: payload = an `SPRRequest` (`paths` or `documents` plus SPR parameters), flow
  `spr-pipeline`; summary: exports written, documents processed/failed, median quality.
- `trace.check`: payload = a `TraceRequest` (`systems`; `workflow_id` defaults to
  `queue-<task id>`), flow `trace-orchestration`; summary: systems ok / simulated, trace id.
- `worktree.health`: payload = a `MonitorRequest` (one pass: `once` is forced), flow
  `worktree-health-monitor`; summary: services checked / healthy / restarted.

Unlike the other handlers, these run in the flow-run process, in the thread of the swarm task
that executes the item: a flow called there is a child run of the swarm run (Prefect links it
to the task run through a tracking task) and its spans are children of the task run's span, so
one trace covers the drain and every subflow. A subflow cannot be killed like a handler
process; it is cancelled at its deadline instead (Prefect's `timeout_seconds`, which cancels an
async flow's coroutine). The handler returns only when the subflow run is Completed; a failed
subflow raises its own error, so the item's retry policy applies.

Pure as far as imports go: the flows (and so Prefect) are imported when a handler first runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from tasks.errors import InvalidInput
from tasks.swarm.models import SCENARIO_TYPES
from tasks.swarm.worker import import_handler


def _spr_request(payload: dict[str, Any], task_id: str) -> BaseModel:
    from tasks.spr.models import SPRRequest

    return SPRRequest.model_validate(payload)


def _trace_request(payload: dict[str, Any], task_id: str) -> BaseModel:
    from tasks.trace.models import TraceRequest

    return TraceRequest.model_validate({"workflow_id": f"queue-{task_id}", **payload})


def _monitor_request(payload: dict[str, Any], task_id: str) -> BaseModel:
    from tasks.worktree.models import MonitorRequest

    return MonitorRequest.model_validate({**payload, "once": True})


def _spr_summary(result: Any) -> dict[str, Any]:
    files = result.export.files if result.export else []
    return {
        "exports_written": len(files),
        "export_dir": str(files[0].path.parent) if files else None,
        "documents_processed": result.processed,
        "documents_failed": result.failed,
        "median_quality": result.median_quality,
    }


def _trace_summary(result: Any) -> dict[str, Any]:
    simulated = sorted(n for n, r in result.results.items() if r.simulated)
    return {
        "systems_ok": sorted(n for n, r in result.results.items() if not r.simulated),
        "systems_simulated": simulated,
        "trace_id": result.trace_id,
        "exports_written": len(result.exports),
    }


def _monitor_summary(result: Any) -> dict[str, Any]:
    return {
        "services_checked": len(result.checks),
        "services_healthy": sum(c.healthy for c in result.checks),
        "services_restarted": result.restarts,
        "alerts": result.alerts,
    }


@dataclass(frozen=True)
class Scenario:
    entrypoint: str  # `module:flow`
    request: Callable[[dict[str, Any], str], BaseModel]  # (payload, task id) -> flow request
    summary: Callable[[Any], dict[str, Any]]  # flow result -> the item's short summary


SCENARIOS: dict[str, Scenario] = {
    "spr.batch": Scenario("flows.spr_pipeline:spr_pipeline", _spr_request, _spr_summary),
    "trace.check": Scenario(
        "flows.trace_orchestration:trace_orchestration", _trace_request, _trace_summary
    ),
    "worktree.health": Scenario(
        "flows.health_monitor:health_monitor", _monitor_request, _monitor_summary
    ),
}
assert set(SCENARIOS) == set(SCENARIO_TYPES)


def scenario_request(work_type: str, payload: dict[str, Any], task_id: str) -> BaseModel:
    """The flow request a scenario item's payload describes; a payload that is not one is one
    `InvalidInput` line naming the item, the field and the problem."""
    try:
        return SCENARIOS[work_type].request(payload, task_id)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        message = first["msg"].removeprefix("Value error, ")
        raise InvalidInput(
            f"work item {task_id} ({work_type}): payload.{where}: {message}"
        ) from None
    except InvalidInput as exc:
        raise InvalidInput(f"work item {task_id} ({work_type}): {exc}") from None


def run_scenario(work_type: str, call: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """Run the scenario's flow as a subflow of the current run (call this from the swarm task's
    thread); its result: `subflow_run_id`, `subflow` (the flow's name) and `summary`. Raises
    the subflow's error when it did not complete."""
    scenario = SCENARIOS[work_type]
    request = scenario_request(work_type, call["payload"], call["task_id"])
    flow = import_handler(scenario.entrypoint)
    bounded = flow.with_options(timeout_seconds=timeout_s)
    # the swarm task runs in a worker thread with no event loop: the async flow gets its own
    state = asyncio.run(bounded(request, return_state=True))
    run_id = str(state.state_details.flow_run_id)
    if not state.is_completed():
        try:
            state.result()  # raises the subflow's own error
        except TimeoutError as exc:
            raise TimeoutError(f"subflow {flow.name} run {run_id} timed out: {exc}") from None
        raise RuntimeError(f"subflow {flow.name} run {run_id} ended {state.type.value}")
    summary = scenario.summary(state.result())
    return {"subflow_run_id": run_id, "subflow": flow.name, "summary": summary}
