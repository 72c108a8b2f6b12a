"""The trace scenario's Prefect tasks: one per system call (a real HTTP round-trip), the
analysis, the dataset export and the dashboard update. Their logs tell each system's story
(outcome and latency, every retry, every fallback with its reason); the logic lives in the
Prefect-free modules beside this one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace import TracerProvider
from prefect import get_run_logger, task
from prefect.cache_policies import INPUTS, NO_CACHE, RUN_ID, TASK_SOURCE

from tasks.coordination_log import append_entries, idempotency_key
from tasks.errors import ServiceUnhealthy
from tasks.events import emit
from tasks.export import export_dataset
from tasks.settings import Settings, get_settings
from tasks.span_log import read_spans
from tasks.telemetry import configure_telemetry
from tasks.trace.analysis import analyze_spans
from tasks.trace.calls import execute_system
from tasks.trace.context import new_identity, parent_of
from tasks.trace.datasets import HOPS_DATASET, HopRow
from tasks.trace.models import (
    Attempt,
    CallContext,
    SystemResult,
    SystemSpec,
    TraceAnalysis,
    TraceIdentity,
    TraceRunResult,
)
from tasks.trace.publish import publish_artifacts
from tasks.trace.results import coordination_entry, dashboard_payload

# a retry of the same run loads the calls that answered; the carrier (the attempt's root span)
# is left out of the key, the run id, the system and its upstream answers are in it
CALL_CACHE = RUN_ID + TASK_SOURCE + (INPUTS - "ctx")


@task(task_run_name="trace-identity", cache_policy=RUN_ID + TASK_SOURCE + (INPUTS - "parent"))
def trace_identity(workflow_id: str, parent: str | None = None) -> TraceIdentity:
    """The run's trace id and correlation id, the same for every attempt of the run: derived
    from `parent` (the enclosing span's traceparent) when the run has one, else fresh. The
    parent is left out of the cache key, so a resumed attempt keeps the first one's ids."""
    return new_identity(parent_of(parent))


@task(task_run_name="call-{spec.name}", cache_policy=CALL_CACHE)
def call_system(
    spec: SystemSpec, ctx: CallContext, upstream: dict[str, SystemResult]
) -> SystemResult:
    """Health check + call with retries (each attempt its own span) + labelled fallback.
    Retries happen inside, not as Prefect task retries, so every attempt is a span of its own
    and the fallback sees the final failure."""
    if not isinstance(otel_trace.get_tracer_provider(), TracerProvider):
        configure_telemetry()  # a fresh worker process (Dask runner): spans must reach the JSONL
    logger = get_run_logger()

    def log_retry(attempt: Attempt, delay_s: float) -> None:
        logger.warning(
            "%s: attempt %d failed (%s); retrying in %.2f s",
            spec.name,
            attempt.attempt,
            attempt.error,
            delay_s,
        )

    try:
        result = execute_system(spec, ctx, upstream, on_retry=log_retry)
    except ServiceUnhealthy as exc:
        logger.error("%s failed and fallback is off: %s", spec.name, exc)
        raise
    if result.simulated:
        logger.warning(
            "%s: fallback, simulated result %s because %s",
            spec.name,
            result.execution_id,
            result.reason,
        )
    else:
        logger.info(
            "%s ok in %.0f ms (%d attempt(s)), execution %s",
            spec.name,
            result.duration_ms,
            len(result.attempts),
            result.execution_id,
        )
    return result


@task(task_run_name="analyze-{workflow_id}", cache_policy=NO_CACHE)
def analyze_trace(
    workflow_id: str, trace_id: str, graph: dict[str, list[str]], spans_file: Path
) -> TraceAnalysis:
    """Read this trace's spans back from the JSONL telemetry file and analyze them."""
    return analyze_spans(trace_id, read_spans(Path(spans_file), trace_id), graph)


@task(task_run_name="export-trace-hops-{run_id}", cache_policy=NO_CACHE)
def export_hops(
    rows: list[dict[str, Any]], run_id: str, settings: Settings | None = None
) -> list[str]:
    settings = settings or get_settings()
    result = export_dataset(rows, HOPS_DATASET, run_id, HopRow, root=settings.exports_dir)
    return [str(f.path) for f in result.files]


@task(task_run_name="dashboard-{result.workflow_id}", cache_policy=NO_CACHE)
def update_dashboard(
    result: TraceRunResult, rows: list[dict[str, Any]], settings: Settings | None = None
) -> bool | None:
    """Artifacts, the `reactor.trace.completed` event (+ optional HTTP broadcast) and the
    coordination-log entry. Returns whether the broadcast was delivered (None: not configured)."""
    settings = settings or get_settings()
    publish_artifacts(result, rows)
    broadcast = emit("trace", "completed", result.workflow_id, dashboard_payload(result), settings)
    # keyed by run: a resumed run killed after this append does not log the run twice
    entry = {
        **coordination_entry(result),
        "idempotency_key": idempotency_key("trace", result.run_id),
    }
    append_entries([entry], settings)
    return None if broadcast is None else broadcast.delivered
