"""Multi-system trace orchestrator (docs/trace.md).

One W3C trace across real HTTP systems: a root span and `coord_<ns>` correlation id with
baggage; every system called in dependency order (independent ones concurrently) with its own
client span, traceparent/tracestate/baggage/X-Correlation-ID and the upstream results; a down
system becomes a *labelled* simulated result when fallback is on; then an analysis built from
the spans the run wrote, the `trace_hops` dataset, a dashboard update (artifacts, event,
optional broadcast) and a coordination-log entry.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from prefect import get_run_logger
from prefect.futures import PrefectFuture

from tasks.errors import ServiceUnhealthy
from tasks.events import emit
from tasks.graph import batches
from tasks.runtime import current_run_id, reactor_flow
from tasks.settings import get_settings
from tasks.span_log import spans_path
from tasks.trace.analysis import simulated_failure
from tasks.trace.context import enclosing_traceparent, open_trace
from tasks.trace.datasets import hop_rows
from tasks.trace.models import SystemResult, TraceRequest, TraceRunResult
from tasks.trace.prefect_tasks import (
    analyze_trace,
    call_system,
    export_hops,
    trace_identity,
    update_dashboard,
)
from tasks.trace.publish import wait_with_progress
from tasks.trace.results import path_of

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "trace" / "systems.json"


@reactor_flow("trace-orchestration", resumable=True, flow_run_name="trace-{request.workflow_id}")
async def trace_orchestration(request: TraceRequest) -> TraceRunResult:
    logger = get_run_logger()
    settings = get_settings()
    run_id = current_run_id()
    order = batches(request.graph, "system")
    logger.info(
        "trace %s: %d systems in, in dependency order %s",
        request.workflow_id,
        len(request.systems),
        " | ".join(", ".join(batch) for batch in order),
    )

    # 1. Trace initialisation: root span, correlation id, baggage, our tracestate entry.
    # (a run inside an enclosing trace, e.g. a swarm drain's, continues it; a resumed run gets
    # its first attempt's trace id and correlation id back)
    identity = trace_identity(request.workflow_id, enclosing_traceparent())
    with open_trace(request, identity) as trace:
        # 2. Every system, submitted up front in dependency order with its upstream futures as
        # arguments: each starts once its own dependencies finished, and the bounded pool cannot
        # deadlock (measured: docs/trace.md, "Decisions and their measured reasons").
        calls: dict[str, PrefectFuture[SystemResult]] = {}
        for name in (n for batch in order for n in batch):
            upstream = {dep: calls[dep] for dep in request.graph[name]}
            calls[name] = call_system.submit(
                request.system(name), trace.call_context(request), upstream
            )
        try:  # waited for in a worker thread, so the flow's event loop stays free meanwhile
            results = await asyncio.to_thread(
                wait_with_progress, calls, f"trace {request.workflow_id}: systems called"
            )
        except ServiceUnhealthy as exc:
            logger.error("trace %s failed: %s", request.workflow_id, exc)
            emit("trace", "failed", request.workflow_id, {"error": str(exc)}, settings)
            raise
        orchestration_ms = trace.elapsed_ms()
    simulated = [r.name for r in results.values() if r.simulated]
    logger.info(
        "all %d systems answered in %.0f ms; simulated (fallback): %s",
        len(results),
        orchestration_ms,
        ", ".join(simulated) or "none",
    )

    # 3. Analysis from the span timestamps this run wrote.
    analysis = analyze_trace(
        request.workflow_id, trace.trace_id, request.graph, spans_path(settings)
    )
    logger.info(
        "critical path %s (%.0f ms); bottlenecks: %s",
        " -> ".join(analysis.critical_path),
        analysis.critical_path_ms,
        ", ".join(analysis.bottlenecks) or "none",
    )

    # 4. Dataset, dashboard (artifacts + event + optional broadcast) and coordination log.
    rows = hop_rows(run_id, request.workflow_id, trace.correlation_id, analysis, results)
    exports = export_hops(rows, run_id, settings)
    logger.info("dataset trace_hops: %d rows to %s", len(rows), ", ".join(exports))
    # a check whose systems answered with placeholders checked nothing: it ends Failed (so
    # a failed-run automation fires), its dataset written
    if failure := simulated_failure(simulated, len(results), request.max_simulated_share):
        logger.error("trace %s failed: %s", request.workflow_id, failure)
        emit("trace", "failed", request.workflow_id, {"error": failure}, settings)
        raise ServiceUnhealthy(f"trace {request.workflow_id}: {failure}")
    result = TraceRunResult(
        workflow_id=request.workflow_id,
        run_id=run_id,
        trace_id=trace.trace_id,
        correlation_id=trace.correlation_id,
        baggage=trace.baggage,
        path=path_of(results),
        results=results,
        analysis=analysis,
        orchestration_ms=orchestration_ms,
        exports=exports,
    )
    result.broadcast_delivered = update_dashboard(result, rows, settings)
    return result


def run_sample() -> TraceRunResult:
    """Run the flow on the bundled sample against in-process stand-ins."""
    from tasks.trace.sample import run_with_standins

    return run_with_standins(trace_orchestration, SAMPLE)


if __name__ == "__main__":
    print(run_sample().model_dump_json(indent=2))
