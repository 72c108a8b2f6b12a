"""Step 6, telemetry aggregation from the spans a run actually wrote: timeline, per-agent
utilisation, bottlenecks (a handler's own time > 2x the mean) and recommendations that keep a
task's own time apart from time spent around it (pure: no Prefect)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tasks.ids import id_timestamp_ns
from tasks.settings import Settings
from tasks.span_log import read_spans, spans_path
from tasks.swarm import agents as registry
from tasks.swarm.execution import SPAN_NAME, SUBFLOW_ATTRIBUTE
from tasks.swarm.handlers import HANDLER_MS_ATTRIBUTE
from tasks.swarm.models import Agent, AgentUtilisation, TelemetrySummary


def _ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


# time outside a task's handler worth a recommendation: more than its handler's own time and
# at least this much (ledger writes and the transfer of a call cost milliseconds, more on a
# loaded machine; a worker start-up costs seconds)
OVERHEAD_FLOOR_MS = 500.0


def summarise_run(
    settings: Settings,
    run_id: str,
    agents: list[Agent],
    planned_ms: float,
    handler_startup_ms: float | None = None,
) -> TelemetrySummary:
    """The run's agents set idle, then its summary from the spans written since they were
    formed (their ids carry the time): the span log is read from its end, not whole."""
    registry.set_status([a.agent_id for a in agents], "idle", settings)
    formed = min(id_timestamp_ns(a.agent_id) for a in agents)
    spans = read_spans(spans_path(settings), since_ns=formed)
    return aggregate(spans, run_id, agents, planned_ms, handler_startup_ms)


def aggregate(
    spans: list[dict[str, Any]],
    run_id: str,
    agents: list[Agent],
    planned_ms: float,
    handler_startup_ms: float | None = None,
) -> TelemetrySummary:
    """Timeline, per-agent utilisation, bottlenecks (a handler's own time > 2x the mean) and
    recommendations from this run's `swarm.execute` span records. A row's `handler_ms` is the
    handler's own time where it ran (the span's duration when it was not measured apart)."""
    ours = [
        s
        for s in spans
        if s["operation_name"] == SPAN_NAME
        and s.get("span_attributes", {}).get("swarm.run_id") == run_id
    ]
    ours.sort(key=lambda s: s["start_time"])
    # one row per item: an item a resumed run ran again (its dead attempt was killed before the
    # completion was recorded) has its dead attempt's span too; the last one is the one that
    # counted
    last = {s["span_attributes"]["swarm.work_item_id"]: s for s in ours}
    ours = sorted(last.values(), key=lambda s: s["start_time"])
    timeline = [
        {
            "task_id": s["span_attributes"]["swarm.task_id"],
            "work_item_id": s["span_attributes"]["swarm.work_item_id"],
            "agent_id": s["span_attributes"]["swarm.agent_id"],
            "work_type": s["span_attributes"]["swarm.work_type"],
            "trace_id": s["trace_id"],
            "span_id": s["span_id"],
            "start_time": s["start_time"],
            "end_time": s["end_time"],
            "duration_ms": float(s["duration_ms"]),
            "status": s["status"],
            "subflow_run_id": s["span_attributes"].get(SUBFLOW_ATTRIBUTE),
            "handler_ms": float(s["span_attributes"].get(HANDLER_MS_ATTRIBUTE, s["duration_ms"])),
        }
        for s in ours
    ]
    mean = sum(r["duration_ms"] for r in timeline) / len(timeline) if timeline else 0.0
    own_mean = sum(r["handler_ms"] for r in timeline) / len(timeline) if timeline else 0.0
    bottlenecks = [r["task_id"] for r in timeline if own_mean and r["handler_ms"] > 2 * own_mean]
    for r in timeline:
        r["bottleneck"] = r["task_id"] in bottlenecks
    window_ms = (
        (max(_ts(r["end_time"]) for r in timeline) - min(_ts(r["start_time"]) for r in timeline))
        * 1000
        if timeline
        else 0.0
    )
    utilisation = []
    for a in agents:
        mine = [r for r in timeline if r["agent_id"] == a.agent_id]
        busy = sum(r["duration_ms"] for r in mine)
        share = busy / (window_ms * a.concurrency) if window_ms else 0.0
        utilisation.append(
            AgentUtilisation(
                agent_id=a.agent_id, busy_ms=round(busy, 3), tasks=len(mine),
                utilisation=round(min(1.0, share), 4),
            )
        )  # fmt: skip
    return TelemetrySummary(
        trace_id=timeline[0]["trace_id"] if timeline else None,
        spans=len(timeline),
        timeline=timeline,
        utilisation=utilisation,
        bottlenecks=bottlenecks,
        mean_duration_ms=round(mean, 3),
        recommendations=recommendations(timeline, utilisation, bottlenecks, window_ms, planned_ms),
        measured_makespan_ms=round(window_ms, 3),
        handler_startup_ms=None if handler_startup_ms is None else round(handler_startup_ms, 3),
    )


def recommendations(
    timeline: list[dict[str, Any]],
    utilisation: list[AgentUtilisation],
    bottlenecks: list[str],
    window_ms: float,
    planned_ms: float,
) -> list[str]:
    out: list[str] = []
    rows = {r["task_id"]: r for r in timeline}
    own_mean = sum(r["handler_ms"] for r in timeline) / len(timeline) if timeline else 0.0
    for task_id in bottlenecks:
        out.append(
            f"split or speed up {task_id}: its handler's own time, "
            f"{rows[task_id]['handler_ms']:.0f} ms, is more than twice the mean ({own_mean:.0f} ms)"
        )
    for r in timeline:
        outside = r["duration_ms"] - r["handler_ms"]
        if outside > max(r["handler_ms"], OVERHEAD_FLOOR_MS):
            out.append(
                f"{r['task_id']}: {outside:.0f} of its {r['duration_ms']:.0f} ms were spent "
                "outside its handler (waiting for or starting a worker process, importing the "
                "handler, failed attempts and their back-off), not on the task itself"
            )
    failed = [r["task_id"] for r in timeline if r["status"] != "ok"]
    if failed:
        out.append(f"investigate failed/timed-out tasks: {', '.join(failed)}")
    idle = [u.agent_id for u in utilisation if u.tasks == 0]
    if idle:
        out.append(f"{len(idle)} agent(s) got no work: form fewer agents for this task set")
    used = [u.utilisation for u in utilisation if u.tasks]
    if len(used) > 1 and min(used) > 0 and max(used) / min(used) > 2:
        out.append(
            f"utilisation ranges {min(used):.0%}-{max(used):.0%}: rebalance or give the "
            "busiest agent more concurrency"
        )
    if used and max(used) < 0.5 and len(used) > 1:
        out.append("agents were mostly idle (dependencies serialise the work): use fewer agents")
    if not out:
        out.append("no bottleneck found: the distribution kept every agent busy")
    return out
