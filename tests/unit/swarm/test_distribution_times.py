"""The swarm's numbers on one time base: the plan's makespan, critical path and lower bound
are all estimated durations divided by agent speed (critical path <= bound <= makespan with
agents faster than 1), and the summary quotes those numbers beside the measured ones, each
labelled; a drain whose items carry no estimates quotes no planned times."""

from __future__ import annotations

from flows.swarm_coordination import load_sample
from tasks.swarm import agents as registry
from tasks.swarm.distribution import PlanAgent, PlanTask, plan, plan_work
from tasks.swarm.models import (
    DrainSummary,
    ExecutionRecord,
    SwarmResult,
    TelemetrySummary,
    WorkPlan,
)
from tasks.swarm.priority import heuristic
from tasks.swarm.story import time_lines
from tasks.swarm.summary import markdown_report


def _sample_plan() -> tuple[WorkPlan, object, list]:
    request = load_sample()
    analysis = heuristic(request.tasks)
    agents = registry.form_agents(registry.agent_specs(request, analysis))
    return plan_work(request, analysis, agents), analysis, agents


def test_the_sample_plans_critical_path_bound_and_makespan_share_one_base():
    work, _, agents = _sample_plan()
    assert max(a.speed for a in agents) > 1  # the sample has a faster agent: bases can differ
    assert work.critical_path_ms <= work.lower_bound_ms <= work.makespan_ms


def test_a_chain_on_a_fast_agent_is_planned_and_bounded_at_that_speed():
    chain = [PlanTask("a", 1200), PlanTask("b", 1800, ("a",))]
    schedule = plan(chain, [PlanAgent("fast", speed=1.5), PlanAgent("slow")], "speed")
    assert schedule.makespan == 2000  # 3000 ms of work at speed 1.5
    assert schedule.critical_path == 2000 == schedule.lower_bound
    assert schedule.total_work == 3000  # the work to share out, at speed 1


def _result(work: WorkPlan, analysis, agents, **queue) -> SwarmResult:
    records = [
        ExecutionRecord(
            task_id=a.task_id,
            work_item_id=a.task_id,
            agent_id=a.agent_id,
            status="completed",
            attempts=1,
            duration_ms=100.0 + i,
            started_at="",
            finished_at="",
        )
        for i, a in enumerate(work.assignments)
    ]
    telemetry = TelemetrySummary(
        trace_id=None, spans=len(records), timeline=[], utilisation=[], bottlenecks=[],
        mean_duration_ms=100.0, recommendations=[], measured_makespan_ms=12_400.0,
        handler_startup_ms=3_700.0,
    )  # fmt: skip
    drain = None
    if queue:
        drain = DrainSummary(
            depth_before=len(records), depth_after=0, taken=len(records),
            completed=len(records), failed=0, returned=0, oldest_pending_age_s=None, **queue,
        )  # fmt: skip
    return SwarmResult(
        run_id="run-1", strategy=work.strategy, analysis=analysis, agents=agents, plan=work,
        executions=records, success_rate=1.0, telemetry=telemetry, queue=drain,
    )  # fmt: skip


def test_the_summary_quotes_planned_and_measured_numbers_apart():
    work, analysis, agents = _sample_plan()
    planned, measured, startup = time_lines(_result(work, analysis, agents))
    for number in (work.makespan_ms, work.lower_bound_ms, work.critical_path_ms):
        assert f"{number:.0f} ms" in planned
    assert "12400 ms" in measured and "12400" not in planned
    task_time = sum(100.0 + i for i in range(len(work.assignments)))
    assert f"{task_time:.0f} ms" in measured
    assert "3700 ms" in startup and "3700" not in measured  # start-up is in no task's time
    assert all(
        line in markdown_report(_result(work, analysis, agents))
        for line in time_lines(_result(work, analysis, agents), "- ")
    )


def test_a_drain_without_estimates_quotes_measured_times_and_no_planned_ones():
    work, analysis, agents = _sample_plan()
    taken = len(work.assignments)
    planned, measured, _ = time_lines(_result(work, analysis, agents, unestimated=taken))
    assert f"{work.makespan_ms:.0f} ms" not in planned and str(taken) in planned
    assert "12400 ms" in measured
