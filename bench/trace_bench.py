"""Trace orchestration benchmark.

1. Orchestration efficiency: 3 and 20 systems on the loopback stand-ins with known injected
   latencies (one injected bottleneck each). Ratio = orchestration wall time (root span: trace
   initialisation + every system call, health checks included) / the injected latency of the
   slowest dependency chain (the lower bound for any orchestrator). Targets: <= 1.15 at 3
   systems, <= 1.3 at 20. Each run must name the injected bottleneck. Stand-ins run both in a
   child process (like real systems) and in this process's threads (as in the tests).
   `cpu_ms` is this process's CPU time during the call (load-independent; it includes the
   stand-ins' work when they run in a thread). `flow_ms` is the whole flow call, printed
   beside an empty flow's cost measured in the same run (Prefect's fixed flow-run overhead).
2. Per-call propagation overhead: the same POST to a stand-in with and without trace
   propagation (CLIENT span + traceparent/tracestate/baggage/X-Correlation-ID), interleaved in
   this run; the difference of the medians in microseconds.

Run: .venv/bin/python bench/trace_bench.py [--runs N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("REACTOR_MAX_WORKERS", "8")  # I/O-bound calls; the 20-system DAG is 5 wide
_tmp = tempfile.mkdtemp(prefix="trace-bench-")
os.environ["REACTOR_COORDINATION_DIR"] = f"{_tmp}/coordination"
os.environ["REACTOR_EXPORTS_DIR"] = f"{_tmp}/exports"

from tasks.graph import critical_path  # noqa: E402
from tasks.trace.models import TraceRequest  # noqa: E402
from tasks.trace.standins import (  # noqa: E402
    Behaviour,
    StandinConfig,
    run_standins,
    run_standins_process,
)

TYPES = ("phoenix", "n8n", "xavos", "generic")


def three_systems() -> tuple[dict[str, list[str]], dict[str, float], str]:
    graph = {"phoenix": [], "n8n": ["phoenix"], "xavos": ["n8n"]}
    latency = {"phoenix": 150.0, "n8n": 450.0, "xavos": 200.0}
    return graph, latency, "n8n"


def twenty_systems() -> tuple[dict[str, list[str]], dict[str, float], str]:
    """5 layers x 4 systems; each depends on one or two systems of the layer before; known
    latencies 40-110 ms, one 400 ms bottleneck in layer 2."""
    graph: dict[str, list[str]] = {}
    latency: dict[str, float] = {}
    for layer in range(5):
        for i in range(4):
            name = f"s{layer}{i}"
            deps = [] if layer == 0 else sorted({f"s{layer - 1}{i}", f"s{layer - 1}{(i + 1) % 4}"})
            graph[name] = deps if i % 2 == 0 or layer == 0 else deps[:1]
            latency[name] = 40.0 + ((layer * 4 + i) * 37) % 71
    latency["s21"] = 400.0
    return graph, latency, "s21"


def request_for(graph, base_url: str, name: str) -> TraceRequest:
    systems = [
        {
            "name": n,
            "type": TYPES[k % 4],
            "url": f"{base_url}/{n}",
            "timeout_s": 5.0,
            "retries": 1,
            "depends_on": deps,
        }
        for k, (n, deps) in enumerate(graph.items())
    ]
    return TraceRequest.model_validate(
        {"workflow_id": name, "systems": systems, "baggage": {"bench": name}}
    )


def orchestration_rows(flow, runs: int) -> list[dict]:
    rows = []
    cases = (("3 systems", three_systems, 1.15), ("20 systems", twenty_systems, 1.3))
    for label, build, target in cases:
        graph, latency, bottleneck = build()
        chain_ms, chain = critical_path(graph, latency)
        config = StandinConfig(instances={n: Behaviour(latency_ms=ms) for n, ms in latency.items()})
        # stand-ins in a child process (like real systems), and in this process's threads
        # (sharing the orchestrator's GIL, as in the tests) for comparison
        for where, serve in (("process", run_standins_process), ("thread", run_standins)):
            with serve(config) as standins:
                request = request_for(graph, standins.base_url, f"bench-{len(graph)}")
                asyncio.run(flow(request))  # warm-up: a process's first task runs pay imports
                for run in range(runs):
                    start, cpu = time.perf_counter(), time.process_time()
                    result = asyncio.run(flow(request))
                    flow_s, cpu_s = time.perf_counter() - start, time.process_time() - cpu
                    rows.append(
                        {
                            "case": label,
                            "standins": where,
                            "run": run + 1,
                            "chain_ms": chain_ms,
                            "orchestration_ms": result.orchestration_ms,
                            "ratio": result.orchestration_ms / chain_ms,
                            "flow_ms": flow_s * 1000,
                            "cpu_ms": cpu_s * 1000,
                            "target": target,
                            "bottleneck_named": bottleneck in result.analysis.bottlenecks,
                            "found": ",".join(result.analysis.bottlenecks),
                            "chain": " -> ".join(chain),
                        }
                    )
    return rows


def propagation_overhead(calls: int = 400) -> dict[str, float]:
    """Median µs of a POST with vs without propagation, interleaved against one stand-in."""
    from opentelemetry.trace import SpanKind

    from tasks.telemetry import configure_telemetry, get_tracer
    from tasks.trace.calls import shared_client
    from tasks.tracing import inject_headers, with_baggage, with_tracestate

    configure_telemetry()
    tracer = get_tracer()
    client = shared_client()
    plain, traced = [], []
    with run_standins() as standins:
        url = standins.url("p") + "/api/reactor/execute"
        body = {"workflow_id": "bench", "payload": {}}
        with tracer.start_as_current_span("bench root"):
            ctx = with_tracestate("reactor", "coord_1", with_baggage({"workflow.id": "bench"}))
            for _ in range(20):  # warm the connection pool
                client.post(url, json=body)
            for _ in range(calls):
                t = time.perf_counter()
                client.post(url, json=body, headers={"X-Correlation-ID": "coord_1"})
                plain.append(time.perf_counter() - t)
                t = time.perf_counter()
                with tracer.start_as_current_span("POST p", context=ctx, kind=SpanKind.CLIENT):
                    headers = dict(inject_headers())
                    headers["X-Correlation-ID"] = "coord_1"
                    client.post(url, json=body, headers=headers)
                traced.append(time.perf_counter() - t)
        inject_only = []
        with tracer.start_as_current_span("bench inject", context=ctx):
            for _ in range(2000):
                t = time.perf_counter()
                inject_headers()
                inject_only.append(time.perf_counter() - t)
    p, q = statistics.median(plain) * 1e6, statistics.median(traced) * 1e6
    return {
        "plain_us": p,
        "traced_us": q,
        "overhead_us": q - p,
        "ratio": q / p,
        "inject_us": statistics.median(inject_only) * 1e6,
    }


def empty_flow_ms(runs: int) -> float:
    """What any async flow call costs on this Prefect server: flow_ms below includes it."""
    from prefect import flow

    @flow(name="trace-bench-empty")
    async def empty() -> None:
        return None

    asyncio.run(empty())
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        asyncio.run(empty())
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    from prefect.testing.utilities import prefect_test_harness

    from flows.trace_orchestration import trace_orchestration

    load_before = os.getloadavg()[0]
    with prefect_test_harness(server_startup_timeout=120):
        rows = orchestration_rows(trace_orchestration, args.runs)
        empty = empty_flow_ms(args.runs)
    print(
        f"max_workers={os.environ['REACTOR_MAX_WORKERS']} cpus={os.cpu_count()} "
        f"load average before/after: {load_before:.1f}/{os.getloadavg()[0]:.1f}"
    )
    print(f"baseline: an empty async Prefect flow call takes {empty:.0f} ms here (median)")
    print(
        f"{'case':<11} {'standins':<8} {'run':>3} {'chain_ms':>9} {'orch_ms':>9} {'ratio':>6} "
        f"{'target':>6} {'flow_ms':>8} {'cpu_ms':>7}  bottlenecks found"
    )
    ok = True
    for r in rows:
        print(
            f"{r['case']:<11} {r['standins']:<8} {r['run']:>3} {r['chain_ms']:>9.0f} "
            f"{r['orchestration_ms']:>9.0f} {r['ratio']:>6.3f} {r['target']:>6.2f} "
            f"{r['flow_ms']:>8.0f} {r['cpu_ms']:>7.0f}  "
            f"{r['found'] or '-'} ({'named' if r['bottleneck_named'] else 'MISSED'})"
        )
        ok &= r["bottleneck_named"]
    for case in ("3 systems", "20 systems"):
        for where in ("process", "thread"):
            ratios = [r["ratio"] for r in rows if r["case"] == case and r["standins"] == where]
            target = next(r["target"] for r in rows if r["case"] == case)
            verdict = "meets" if statistics.median(ratios) <= target else "MISSES"
            print(
                f"{case}, stand-ins in a {where}: median ratio {statistics.median(ratios):.3f} "
                f"(best {min(ratios):.3f}) {verdict} target {target}"
            )
    prop = propagation_overhead()
    print(
        f"propagation per call: plain POST {prop['plain_us']:.0f} us, traced POST "
        f"{prop['traced_us']:.0f} us, overhead {prop['overhead_us']:.0f} us "
        f"(ratio {prop['ratio']:.3f}); inject_headers alone {prop['inject_us']:.1f} us"
    )
    print("injected bottleneck named in every run" if ok else "injected bottleneck MISSED in a run")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
