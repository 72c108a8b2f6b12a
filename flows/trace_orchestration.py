"""Multi-system trace orchestrator (SPEC §3).

One W3C trace across real HTTP systems: a root span and `coord_<ns>` correlation id with
baggage; every system called in dependency order (independent ones concurrently) with its own
client span, traceparent/tracestate/baggage/X-Correlation-ID and the upstream results; a down
system becomes a *labelled* simulated result when fallback is on; then an analysis built from
the spans the run wrote, a dashboard update, a coordination-log entry and the `trace_hops`
dataset.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from tasks.errors import ServiceUnhealthy
from tasks.events import emit
from tasks.runtime import current_run_id, task_runner
from tasks.settings import get_settings
from tasks.telemetry import configure_telemetry, spans_path
from tasks.trace import (
    analyse_trace,
    export_hops,
    open_trace,
    path_of,
    run_systems,
    update_dashboard,
)
from tasks.trace.analysis import hop_records
from tasks.trace.models import TraceRequest, TraceRunResult

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "trace" / "systems.json"


@flow(
    name="trace-orchestration",
    flow_run_name="trace-{request.workflow_id}",
    task_runner=task_runner(),
)
def trace_orchestration(request: TraceRequest) -> TraceRunResult:
    settings = get_settings()
    configure_telemetry(settings)
    run_id = current_run_id()

    # 1. Trace initialisation: root span, correlation id, baggage. 2. Systems in dependency order.
    with open_trace(request) as trace:
        try:
            results = run_systems(request, trace)
        except ServiceUnhealthy as exc:
            emit("trace", "failed", request.workflow_id, {"error": str(exc)}, settings)
            raise
        orchestration_ms = trace.elapsed_ms()

    # 3. Analysis from the span timestamps this run wrote.
    analysis = analyse_trace(
        request.workflow_id, trace.trace_id, request.graph, spans_path(settings)
    )

    # 4. Dataset, dashboard (artifacts + event + optional broadcast) and coordination log.
    rows = hop_records(run_id, request.workflow_id, trace.correlation_id, analysis, results)
    exports = export_hops(rows, run_id, settings)
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
