"""Telemetry aggregation keeps a task's own time apart from the time around it: a task whose
handler was quick but that waited seconds for its worker process is not a bottleneck and gets
a recommendation about that time, not "split or speed up"; the measured makespan is the spans'
first start to last end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tasks.swarm.aggregation import aggregate
from tasks.swarm.execution import SPAN_NAME
from tasks.swarm.handlers import HANDLER_MS_ATTRIBUTE
from tasks.swarm.models import Agent

T0 = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
AGENT = Agent(
    agent_id="agent-1", name="a", team="swarm", specializations=[], concurrency=4, speed=1.0
)


def _span(task_id: str, start_ms: float, duration_ms: float, handler_ms: float) -> dict:
    start = T0 + timedelta(milliseconds=start_ms)
    return {
        "operation_name": SPAN_NAME, "trace_id": "t" * 32, "span_id": task_id, "status": "ok",
        "start_time": start.isoformat(),
        "end_time": (start + timedelta(milliseconds=duration_ms)).isoformat(),
        "duration_ms": duration_ms,
        "span_attributes": {
            "swarm.run_id": "run-1", "swarm.task_id": task_id, "swarm.work_item_id": task_id,
            "swarm.agent_id": "agent-1", "swarm.work_type": "analysis",
            HANDLER_MS_ATTRIBUTE: handler_ms,
        },
    }  # fmt: skip


def test_worker_start_up_is_not_a_bottleneck_and_is_named_apart():
    # the sample run seen in the UI: the first three tasks waited ~4.9 s for their workers
    spans = [_span(f"first-{i}", 0, 4900, 40) for i in range(3)]
    spans += [_span(f"later-{i}", 5000 + 100 * i, 60 + i, 50 + i) for i in range(6)]
    summary = aggregate(spans, "run-1", [AGENT], planned_ms=4533)
    assert summary.bottlenecks == []
    advice = "\n".join(summary.recommendations)
    assert "split or speed up" not in advice
    for i in range(3):
        line = next(r for r in summary.recommendations if r.startswith(f"first-{i}:"))
        assert "4860" in line and "4900" in line  # outside its handler, of its whole time
    assert not any(r.startswith("later-") for r in summary.recommendations)
    assert summary.measured_makespan_ms == 5000 + 500 + 65  # first start to last end


def test_a_handler_that_is_slow_itself_is_the_bottleneck():
    spans = [_span("slow", 0, 3000, 2990)] + [_span(f"t{i}", 0, 100, 95) for i in range(5)]
    summary = aggregate(spans, "run-1", [AGENT], planned_ms=3000)
    assert summary.bottlenecks == ["slow"]
    assert any(r.startswith("split or speed up slow") for r in summary.recommendations)
