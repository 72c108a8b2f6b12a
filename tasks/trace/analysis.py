"""Cross-system performance analysis from the spans a run wrote (SPEC §3 step 3), and the
`trace_hops` dataset rows. Pure functions over SPEC §6 span records; no Prefect."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from tasks.export import Column
from tasks.graph import critical_path
from tasks.trace.calls import KIND_ATTR, SYSTEM_ATTR
from tasks.trace.models import HopLatency, SystemLatency, SystemResult, TraceAnalysis

BOTTLENECK_SHARE = 0.7  # on the critical path and >= 0.7 x the slowest system (SPEC §3)
ORCHESTRATOR = "orchestrator"

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


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _kind(span: Mapping[str, Any]) -> str | None:
    return span["span_attributes"].get(KIND_ATTR)


def _percentile(values: Sequence[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


def analyse_spans(
    trace_id: str, spans: Sequence[Mapping[str, Any]], graph: Mapping[str, Sequence[str]]
) -> TraceAnalysis:
    """Per-system latency (p50/p95/max over attempts), per-hop latency, the critical path,
    bottlenecks and recommendations, all from span timestamps of trace `trace_id`."""
    spans = [s for s in spans if s["trace_id"] == trace_id]
    systems = {s["span_attributes"][SYSTEM_ATTR]: s for s in spans if _kind(s) == "system"}
    missing = sorted(set(graph) - set(systems))
    if missing:
        raise ValueError(f"trace {trace_id} has no system span for {missing}")
    attempts: dict[str, list[Mapping[str, Any]]] = {name: [] for name in graph}
    for s in spans:
        if _kind(s) == "attempt":
            attempts[s["span_attributes"][SYSTEM_ATTR]].append(s)
    servers = {s["parent_span_id"]: s for s in spans if _kind(s) == "server"}
    roots = [s for s in spans if _kind(s) == "root"]
    origin = (
        _epoch(roots[0]["start_time"])
        if roots
        else min(_epoch(s["start_time"]) for s in systems.values())
    )

    step = {name: float(systems[name]["duration_ms"]) for name in graph}
    latencies = []
    for name in graph:
        durations = [float(a["duration_ms"]) for a in attempts[name]]
        latencies.append(
            SystemLatency(
                name=name,
                status=systems[name]["span_attributes"].get("reactor.trace.status", "error"),
                attempts=len(durations),
                p50_ms=_percentile(durations, 50),
                p95_ms=_percentile(durations, 95),
                max_ms=round(max(durations), 3) if durations else None,
                step_ms=step[name],
            )
        )

    hops = []
    for name in graph:
        start = _epoch(systems[name]["start_time"])
        last = attempts[name][-1] if attempts[name] else None
        server = servers.get(last["span_id"]) if last else None
        for source in graph[name] or [ORCHESTRATOR]:
            ready = origin if source == ORCHESTRATOR else _epoch(systems[source]["end_time"])
            hops.append(
                HopLatency(
                    source=source,
                    system=name,
                    handoff_ms=round((start - ready) * 1000, 3),
                    call_ms=float(last["duration_ms"]) if last else None,
                    server_ms=float(server["duration_ms"]) if server else None,
                )
            )

    length, path = critical_path(graph, step)
    slowest = max(step, key=lambda n: step[n]) if step else None
    threshold = BOTTLENECK_SHARE * step[slowest] if slowest else 0.0
    bottlenecks = [n for n in path if step[n] >= threshold]
    analysis = TraceAnalysis(
        trace_id=trace_id,
        span_count=len(spans),
        systems=latencies,
        hops=hops,
        critical_path=path,
        critical_path_ms=round(length, 3),
        slowest=slowest,
        bottlenecks=bottlenecks,
        recommendations=[],
    )
    analysis.recommendations = recommendations(analysis)
    return analysis


def recommendations(analysis: TraceAnalysis) -> list[str]:
    """What to do about what the analysis found, most important first."""
    out: list[str] = []
    by_name = {s.name: s for s in analysis.systems}
    total = analysis.critical_path_ms or 1.0
    for name in analysis.bottlenecks:
        s = by_name[name]
        out.append(
            f"{name} is a bottleneck: {s.step_ms:.0f} ms, {s.step_ms / total:.0%} of the "
            f"{total:.0f} ms critical path ({' -> '.join(analysis.critical_path)}); speed it up, "
            "cache its result, or move work that does not need it off this chain"
        )
    for s in analysis.systems:
        if s.status == "simulated":
            out.append(
                f"{s.name} was simulated (fallback): results downstream of it rest on a "
                "placeholder; restore the system before trusting this run"
            )
        elif s.attempts > 1:
            out.append(f"{s.name} needed {s.attempts} attempts: check its capacity and errors")
        if s.attempts >= 3 and s.p50_ms and s.p95_ms and s.p95_ms > 2 * s.p50_ms:
            out.append(f"{s.name} latency varies (p95 {s.p95_ms:.0f} ms vs p50 {s.p50_ms:.0f} ms)")
    slow_handoffs = [h for h in analysis.hops if h.handoff_ms > 250]
    for h in slow_handoffs:
        out.append(
            f"hand-off {h.source} -> {h.system} waited {h.handoff_ms:.0f} ms: raise "
            "REACTOR_MAX_WORKERS if independent systems queue for threads"
        )
    return out or ["no action needed: no retries, fallbacks or dominant system"]


def hop_records(
    run_id: str,
    workflow_id: str,
    correlation_id: str,
    analysis: TraceAnalysis,
    results: Mapping[str, SystemResult],
) -> list[dict[str, Any]]:
    """One `trace_hops` row per hop (dependency edge into a system)."""
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
    return rows
