"""The trace run's dataset `trace_hops`, declared once as a row model (its columns and types come
from `tasks.export_schema.schema_of`): one row per hop, a dependency edge into a system. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from tasks.redaction import redact
from tasks.trace.models import SystemResult, TraceAnalysis

HOPS_DATASET = "trace_hops"
_FROM_RESULT = {"status", "simulated", "reason", "execution_id", "span_id", "started_at"}


class HopRow(BaseModel):
    """One row of `trace_hops`: the hop into `system` from `source`, with the system's outcome."""

    run_id: str
    workflow_id: str
    trace_id: str
    correlation_id: str
    source: str
    system: str
    system_type: str
    status: str
    simulated: bool
    reason: str | None
    execution_id: str
    attempts: int
    handoff_ms: float
    call_ms: float | None
    server_ms: float | None
    step_ms: float
    on_critical_path: bool
    bottleneck: bool
    span_id: str
    started_at: datetime
    traceparents: list[str]


def hop_rows(
    run_id: str,
    workflow_id: str,
    correlation_id: str,
    analysis: TraceAnalysis,
    results: Mapping[str, SystemResult],
) -> list[dict[str, Any]]:
    """One `trace_hops` row per hop (dependency edge into a system), as JSON-ready dicts (they
    are also the hop table artifact's rows), secrets redacted (a reason can quote what a remote
    system answered)."""
    latency = {s.name: s.step_ms for s in analysis.systems}
    same = {"run_id": run_id, "workflow_id": workflow_id, "correlation_id": correlation_id}
    rows = []
    for hop in analysis.hops:
        r = results[hop.system]
        row = HopRow(
            **same,
            **hop.model_dump(include={"source", "system", "handoff_ms", "call_ms", "server_ms"}),
            **r.model_dump(include=_FROM_RESULT),
            trace_id=analysis.trace_id,
            system_type=r.type,
            attempts=len(r.attempts),
            step_ms=latency[hop.system],
            on_critical_path=hop.system in analysis.critical_path,
            bottleneck=hop.system in analysis.bottlenecks,
            traceparents=[a.traceparent for a in r.attempts],
        )
        rows.append(row.model_dump(mode="json"))
    return redact(rows)
