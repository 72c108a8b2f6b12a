"""The trace run's Prefect edge: the UI artifacts (the `trace-hops` table, the `trace-summary`
markdown, a progress bar while the systems are called). Imports Prefect (edge module)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from prefect.futures import PrefectFuture, as_completed

from tasks.artifacts import Progress, markdown_table, publish_markdown, publish_table
from tasks.trace.models import SystemResult, TraceRunResult

HOPS_ARTIFACT = "trace-hops"
SUMMARY_ARTIFACT = "trace-summary"
PROGRESS_EVERY_S = 0.25


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
