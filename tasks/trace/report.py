"""What a trace run reports: the `trace_hops` dataset (schema and rows), the execution path,
the UI artifacts (`trace-hops` table, `trace-summary` markdown, a progress bar while the
systems are called), the dashboard event payload and the coordination-log entry."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from prefect.futures import PrefectFuture, as_completed

from tasks.artifacts import Progress, markdown_table, publish_markdown, publish_table
from tasks.export import Column
from tasks.redaction import redact
from tasks.trace.models import PathEntry, SystemResult, TraceAnalysis, TraceRunResult

HOPS_DATASET = "trace_hops"
HOPS_ARTIFACT = "trace-hops"
SUMMARY_ARTIFACT = "trace-summary"
PROGRESS_EVERY_S = 0.25

HOPS_SCHEMA: dict[str, Column] = {
    "run_id": Column.str,
    "workflow_id": Column.str,
    "trace_id": Column.str,
    "correlation_id": Column.str,
    "source": Column.str,
    "system": Column.str,
    "system_type": Column.str,
    "status": Column.str,
    "simulated": Column.bool,
    "reason": Column.str,
    "execution_id": Column.str,
    "attempts": Column.int,
    "handoff_ms": Column.float,
    "call_ms": Column.float,
    "server_ms": Column.float,
    "step_ms": Column.float,
    "on_critical_path": Column.bool,
    "bottleneck": Column.bool,
    "span_id": Column.str,
    "started_at": Column.timestamp,
    "traceparents": Column.json,
}


def hop_rows(
    run_id: str,
    workflow_id: str,
    correlation_id: str,
    analysis: TraceAnalysis,
    results: Mapping[str, SystemResult],
) -> list[dict[str, Any]]:
    """One `trace_hops` row per hop (dependency edge into a system), secrets redacted (a
    reason can quote what a remote system answered)."""
    latency = {s.name: s for s in analysis.systems}
    rows = []
    for hop in analysis.hops:
        r = results[hop.system]
        rows.append(
            {
                "run_id": run_id,
                "workflow_id": workflow_id,
                "trace_id": analysis.trace_id,
                "correlation_id": correlation_id,
                "source": hop.source,
                "system": hop.system,
                "system_type": r.type,
                "status": r.status,
                "simulated": r.simulated,
                "reason": r.reason,
                "execution_id": r.execution_id,
                "attempts": len(r.attempts),
                "handoff_ms": hop.handoff_ms,
                "call_ms": hop.call_ms,
                "server_ms": hop.server_ms,
                "step_ms": latency[hop.system].step_ms,
                "on_critical_path": hop.system in analysis.critical_path,
                "bottleneck": hop.system in analysis.bottlenecks,
                "span_id": r.span_id,
                "started_at": r.started_at,
                "traceparents": [a.traceparent for a in r.attempts],
            }
        )
    return redact(rows)


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


def summary_markdown(result: TraceRunResult) -> str:
    a = result.analysis
    rows = [s.model_dump() for s in a.systems]
    simulated = [p.system for p in result.path if p.status == "simulated"]
    return (
        f"# Trace `{result.workflow_id}`\n\n"
        f"- trace id `{result.trace_id}`, correlation id `{result.correlation_id}`\n"
        f"- orchestration {result.orchestration_ms:.0f} ms; critical path "
        f"{' -> '.join(a.critical_path)} ({a.critical_path_ms:.0f} ms)\n"
        f"- bottlenecks: {', '.join(a.bottlenecks) or 'none'}; "
        f"simulated: {', '.join(simulated) or 'none'}\n\n"
        + markdown_table(
            rows, ["name", "status", "attempts", "p50_ms", "p95_ms", "max_ms", "step_ms"]
        )
        + "\n## Recommendations\n\n"
        + "".join(f"- {r}\n" for r in a.recommendations)
    )


def publish_artifacts(result: TraceRunResult, rows: list[dict[str, Any]]) -> None:
    """The hop table and the summary, under keys that stay the same across runs."""
    publish_table(HOPS_ARTIFACT, rows, f"Hops of trace {result.trace_id}")
    publish_markdown(SUMMARY_ARTIFACT, summary_markdown(result), f"Trace {result.workflow_id}")


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


def wait_with_progress(
    calls: Mapping[str, PrefectFuture[SystemResult]], description: str
) -> dict[str, SystemResult]:
    """Wait for every call, advancing a progress artifact as they finish; then the results in
    the calls' (dependency) order, so the first failure raised is a root cause, not a
    dependent's upstream error.

    Each progress update is an API call on the waiting thread; one per completion made that
    thread lag ~100-200 ms behind the last system at 20 systems on a loaded machine
    (measured with bench/trace_bench.py), so updates are throttled and the last is one call."""
    progress = Progress(len(calls), description)
    last_update = time.monotonic()
    for finished, _ in enumerate(as_completed(list(calls.values())), 1):
        if time.monotonic() - last_update >= PROGRESS_EVERY_S and finished < len(calls):
            progress.advance(finished - progress.done)
            last_update = time.monotonic()
    progress.advance(len(calls) - progress.done)
    return {name: future.result() for name, future in calls.items()}
