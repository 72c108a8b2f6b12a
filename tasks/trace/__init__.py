"""The trace scenario's Prefect tasks (the boundary): one task per system call (a real HTTP
round-trip), the analysis, the dataset export and the dashboard update. The logic they call
lives in the Prefect-free modules beside this one."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace import TracerProvider
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture, as_completed

from tasks.artifacts import Progress, markdown_table, publish_markdown, publish_table
from tasks.coordination_log import append_entries
from tasks.events import emit
from tasks.export import export_dataset
from tasks.graph import batches
from tasks.settings import Settings, get_settings
from tasks.telemetry import configure_telemetry, read_spans
from tasks.trace.analysis import HOPS_SCHEMA, analyse_spans
from tasks.trace.calls import execute_system
from tasks.trace.context import TraceStart, open_trace
from tasks.trace.models import (
    CallContext,
    PathEntry,
    SystemResult,
    SystemSpec,
    TraceAnalysis,
    TraceRequest,
    TraceRunResult,
)

PROGRESS_EVERY_S = 0.25

__all__ = [
    "analyse_trace",
    "call_system",
    "export_hops",
    "open_trace",
    "run_systems",
    "update_dashboard",
]


@task(task_run_name="call-{spec.name}", cache_policy=NO_CACHE)
def call_system(
    spec: SystemSpec, ctx: CallContext, upstream: dict[str, SystemResult]
) -> SystemResult:
    """Health check + call with retries (each attempt its own span) + labelled fallback.
    Retries happen inside, not as Prefect task retries, so every attempt is a span of its own
    and the fallback sees the final failure."""
    if not isinstance(otel_trace.get_tracer_provider(), TracerProvider):
        configure_telemetry()  # a fresh worker process (Dask runner): spans must reach the JSONL
    return execute_system(spec, ctx, upstream)


def run_systems(request: TraceRequest, trace: TraceStart) -> dict[str, SystemResult]:
    """Every system starts as soon as its own dependencies finished; independent ones run
    concurrently, bounded by the flow's thread pool.

    All calls are submitted up front in Kahn order with their upstream futures as arguments, so
    Prefect sets up each task run while its upstream systems are still working (measured in
    bench/trace_bench.py: 20 systems at 1.20-1.25x the slowest chain, against 1.37-1.50x when
    submitting each system only after its dependencies finished). Kahn order keeps the bounded
    pool deadlock-free: a worker only ever waits on tasks submitted, so started, before its own.
    A failed system's dependents never call out; the first failure in Kahn order (a root cause,
    not a dependent's upstream error) is raised once every call has finished."""
    graph = request.graph
    futures: dict[str, PrefectFuture[SystemResult]] = {}
    for name in (n for batch in batches(graph, "system") for n in batch):
        upstream = {dep: futures[dep] for dep in graph[name]}
        futures[name] = call_system.submit(
            request.system(name), trace.call_context(request), upstream
        )
    progress = Progress(len(graph), f"trace {request.workflow_id}: systems called")
    # Each progress update is an API call on this thread; one per completion made this thread
    # lag ~100-200 ms behind the last system at 20 systems on a loaded machine (measured), so
    # updates are throttled and the final one is a single call.
    last_update = time.monotonic()
    for finished, _ in enumerate(as_completed(list(futures.values())), 1):
        if time.monotonic() - last_update >= PROGRESS_EVERY_S and finished < len(graph):
            progress.advance(finished - progress.done)
            last_update = time.monotonic()
    progress.advance(len(graph) - progress.done)
    return {name: future.result() for name, future in futures.items()}


@task(task_run_name="analyse-{workflow_id}", cache_policy=NO_CACHE)
def analyse_trace(
    workflow_id: str, trace_id: str, graph: dict[str, list[str]], spans_file: Path
) -> TraceAnalysis:
    """Read this trace's spans back from the JSONL telemetry file and analyse them."""
    return analyse_spans(trace_id, read_spans(Path(spans_file), trace_id), graph)


@task(task_run_name="export-trace-hops-{run_id}", cache_policy=NO_CACHE)
def export_hops(
    rows: list[dict[str, Any]], run_id: str, settings: Settings | None = None
) -> list[str]:
    settings = settings or get_settings()
    result = export_dataset(rows, "trace_hops", run_id, HOPS_SCHEMA, root=settings.exports_dir)
    return [str(f.path) for f in result.files]


def path_of(results: dict[str, SystemResult]) -> list[PathEntry]:
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


@task(task_run_name="dashboard-{result.workflow_id}", cache_policy=NO_CACHE)
def update_dashboard(
    result: TraceRunResult, rows: list[dict[str, Any]], settings: Settings | None = None
) -> bool | None:
    """Artifacts, the `reactor.trace.completed` event (+ optional HTTP broadcast) and the
    coordination-log entry. Returns whether the broadcast was delivered (None: not configured)."""
    settings = settings or get_settings()
    publish_table("trace-hops", rows, f"Hops of trace {result.trace_id}")
    publish_markdown("trace-summary", summary_markdown(result), f"Trace {result.workflow_id}")
    payload = {
        "trace_id": result.trace_id,
        "correlation_id": result.correlation_id,
        "path": [p.model_dump() for p in result.path],
        "critical_path": result.analysis.critical_path,
        "bottlenecks": result.analysis.bottlenecks,
        "orchestration_ms": result.orchestration_ms,
    }
    broadcast = emit("trace", "completed", result.workflow_id, payload, settings)
    append_entries(
        [
            {
                "scenario": "trace",
                "run_id": result.run_id,
                "workflow_id": result.workflow_id,
                "trace_id": result.trace_id,
                "correlation_id": result.correlation_id,
                "systems": {p.system: p.status for p in result.path},
                "bottlenecks": result.analysis.bottlenecks,
                "orchestration_ms": result.orchestration_ms,
            }
        ],
        settings,
    )
    return None if broadcast is None else broadcast.delivered
