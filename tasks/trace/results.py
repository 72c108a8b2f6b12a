"""What a trace run's result says: the execution path, the dashboard event's payload and the
coordination-log entry. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tasks.trace.models import PathEntry, SystemResult, TraceRunResult


def path_of(results: Mapping[str, SystemResult]) -> list[PathEntry]:
    """The execution path in completion order, each system marked ok or simulated."""
    ordered = sorted(results.values(), key=lambda r: r.finished_at)
    return [
        PathEntry(
            system=r.name,
            status=r.status,
            execution_id=r.execution_id,
            reason=r.reason,
            duration_ms=r.duration_ms,
        )
        for r in ordered
    ]


def dashboard_payload(result: TraceRunResult) -> dict[str, Any]:
    """The `reactor.trace.completed` event's payload (and the broadcast body)."""
    return {
        "trace_id": result.trace_id,
        "correlation_id": result.correlation_id,
        "path": [p.model_dump() for p in result.path],
        "critical_path": result.analysis.critical_path,
        "bottlenecks": result.analysis.bottlenecks,
        "orchestration_ms": result.orchestration_ms,
    }


def coordination_entry(result: TraceRunResult) -> dict[str, Any]:
    return {
        "scenario": "trace",
        "run_id": result.run_id,
        "workflow_id": result.workflow_id,
        "trace_id": result.trace_id,
        "correlation_id": result.correlation_id,
        "systems": {p.system: p.status for p in result.path},
        "bottlenecks": result.analysis.bottlenecks,
        "orchestration_ms": result.orchestration_ms,
    }
