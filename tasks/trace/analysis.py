"""Cross-system performance analysis from the spans a run wrote: per-system latency, per-hop
latency, the critical path, bottlenecks and recommendations. Pure functions over the span
records of `tasks/span_log.py` (`span_record`); the span layout is in spans.py."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from tasks.graph import critical_path
from tasks.trace.models import HopLatency, SystemLatency, TraceAnalysis
from tasks.trace.spans import KIND_ATTR, STATUS_ATTR, SYSTEM_ATTR

# A bottleneck is a system on the critical path taking at least this share of the slowest one.
BOTTLENECK_SHARE = 0.7
ORCHESTRATOR = "orchestrator"  # the source of the hop into a system with no dependencies


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _kind(span: Mapping[str, Any]) -> str | None:
    return span["span_attributes"].get(KIND_ATTR)


def _status(system_span: Mapping[str, Any]) -> str:
    return system_span["span_attributes"].get(STATUS_ATTR, "error")


def _percentile(values: Sequence[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


def analyze_spans(
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
                status=_status(systems[name]),
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
    # a simulated system's time is its failed health check or calls, not work: never a
    # bottleneck, nor the yardstick of one
    real = {n: ms for n, ms in step.items() if _status(systems[n]) != "simulated"}
    threshold = BOTTLENECK_SHARE * max(real.values()) if real else 0.0
    bottlenecks = [n for n in path if n in real and real[n] >= threshold]
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
    analysis.recommendations = trace_recommendations(analysis)
    return analysis


def trace_recommendations(analysis: TraceAnalysis) -> list[str]:
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


def simulated_failure(
    simulated: Sequence[str], total: int, max_share: float | None = None
) -> str | None:
    """Why a run whose systems in `simulated` (of `total`) answered with a fallback must end
    Failed, or None: all of them simulated, or more than `max_share` of them."""
    if not simulated or total <= 0:
        return None
    share = len(simulated) / total
    if len(simulated) < total and (max_share is None or share <= max_share):
        return None
    rule = (
        "at least one real answer"
        if max_share is None or len(simulated) == total
        else f"at most {max_share:.0%} simulated (max_simulated_share)"
    )
    return (
        f"{len(simulated)} of {total} systems were simulated (fallback): "
        f"{', '.join(sorted(simulated))}; a trace check needs {rule}"
    )
