"""Analysis from span records: latency percentiles, hops, critical path, bottlenecks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tasks.trace.analysis import analyze_spans

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TRACE = "a" * 32


def span(span_id, parent, kind, system=None, start_ms=0.0, ms=1.0, **attrs):
    start = T0 + timedelta(milliseconds=start_ms)
    attributes = {"reactor.trace.kind": kind, **attrs}
    if system:
        attributes["reactor.trace.system"] = system
    return {
        "trace_id": TRACE,
        "span_id": span_id,
        "parent_span_id": parent,
        "start_time": start.isoformat(),
        "end_time": (start + timedelta(milliseconds=ms)).isoformat(),
        "duration_ms": ms,
        "span_attributes": attributes,
    }


def step(name, start, ms, attempts, status="ok"):
    sid = f"sys-{name}"
    out = [span(sid, "root", "system", name, start, ms, **{"reactor.trace.status": status})]
    t = start
    for i, a in enumerate(attempts):
        out.append(span(f"att-{name}-{i}", sid, "attempt", name, t, a))
        t += a
    return out


GRAPH = {"a": [], "b": ["a"], "c": ["b"], "side": []}


def spans():
    return [
        span("root", None, "root", start_ms=0, ms=700),
        *step("a", 5, 100, [100]),
        *step("b", 110, 400, [50, 60, 280]),
        *step("c", 515, 150, [150]),
        *step("side", 5, 200, [200]),
        span("srv", "att-c-0", "server", start_ms=516, ms=140),
        {**span("other", None, "root"), "trace_id": "b" * 32},  # another trace: ignored
    ]


def test_bottleneck_is_the_slow_system_on_the_critical_path():
    a = analyze_spans(TRACE, spans(), GRAPH)
    assert a.critical_path == ["a", "b", "c"]
    assert a.critical_path_ms == 650
    assert a.slowest == "b" and a.bottlenecks == ["b"]
    assert a.recommendations[0].startswith("b is a bottleneck: 400 ms, 62% of the 650 ms")


def test_per_system_latency_is_over_attempts():
    a = analyze_spans(TRACE, spans(), GRAPH)
    b = next(s for s in a.systems if s.name == "b")
    assert (b.attempts, b.p50_ms, b.max_ms, b.step_ms) == (3, 60.0, 280.0, 400.0)
    assert b.p95_ms == 258.0  # linear interpolation between 60 and 280
    assert any("b needed 3 attempts" in r for r in a.recommendations)


def test_hops_measure_handoff_and_call_and_server_time():
    a = analyze_spans(TRACE, spans(), GRAPH)
    hops = {(h.source, h.system): h for h in a.hops}
    assert set(hops) == {("orchestrator", "a"), ("a", "b"), ("b", "c"), ("orchestrator", "side")}
    assert hops[("a", "b")].handoff_ms == 5.0  # a ended at 105, b started at 110
    assert hops[("b", "c")].call_ms == 150.0 and hops[("b", "c")].server_ms == 140.0
    assert hops[("orchestrator", "a")].server_ms is None


def test_two_systems_near_the_slowest_on_the_path_are_both_bottlenecks():
    records = [
        span("root", None, "root", ms=900),
        *step("a", 0, 300, [300]),
        *step("b", 300, 400, [400]),
        *step("c", 700, 50, [50]),
    ]
    a = analyze_spans(TRACE, records, {"a": [], "b": ["a"], "c": ["b"]})
    assert a.bottlenecks == ["a", "b"]  # 300 >= 0.7 * 400


def test_simulated_system_gets_a_recommendation():
    records = [span("root", None, "root", ms=10), *step("a", 0, 5, [], status="simulated")]
    a = analyze_spans(TRACE, records, {"a": []})
    assert a.systems[0].p50_ms is None
    assert any(r.startswith("a was simulated") for r in a.recommendations)


def test_missing_system_span_is_an_error():
    import pytest

    with pytest.raises(ValueError, match=r"no system span for \['ghost'\]"):
        analyze_spans(TRACE, spans(), {**GRAPH, "ghost": []})


def test_a_simulated_system_is_never_a_bottleneck_nor_the_yardstick():
    # `a` spent 3 s failing its health check before its fallback: the real work is b's 400 ms
    records = [
        span("root", None, "root", ms=4000),
        *step("a", 0, 3000, [], status="simulated"),
        *step("b", 3000, 400, [400]),
        *step("c", 3400, 300, [300]),
    ]
    a = analyze_spans(TRACE, records, {"a": [], "b": ["a"], "c": ["b"]})
    assert a.critical_path == ["a", "b", "c"]
    assert a.bottlenecks == ["b", "c"]  # 300 >= 0.7 * 400; `a` is not named
    assert not any(r.startswith("a is a bottleneck") for r in a.recommendations)


def test_a_check_fails_when_all_or_too_many_systems_were_simulated():
    from tasks.trace.analysis import simulated_failure

    assert simulated_failure([], 4) is None
    assert simulated_failure(["n8n"], 4) is None  # no share configured: one real answer will do
    everything = simulated_failure(["xavos", "audit", "n8n", "phoenix"], 4)
    assert everything is not None and "4 of 4" in everything
    assert "audit, n8n, phoenix, xavos" in everything
    assert simulated_failure(["n8n", "audit"], 4, max_share=0.5) is None  # 50% is allowed
    over = simulated_failure(["n8n", "audit", "xavos"], 4, max_share=0.5)
    assert over is not None and "audit, n8n, xavos" in over and "50%" in over
    assert simulated_failure(["n8n"], 4, max_share=0.0) is not None
