"""The swarm flow on the bundled sample, for real: every task completed exactly once through
its handler, dependencies and per-agent concurrency honoured in the spans, seed-shaped
coordination files, datasets that read back; a low success rate rolls back."""

from __future__ import annotations

import json
import time
from datetime import datetime

import pytest
from prefect import flow

from flows.swarm_coordination import SAMPLE, load_sample, swarm_coordination
from tasks.claims import ClaimLedger
from tasks.compensation import compensating
from tasks.coordination_log import read_log
from tasks.errors import RolledBack
from tasks.export import read_export
from tasks.swarm.models import SwarmRequest
from tasks.swarm.prefect_tasks import (
    analyse_priorities,
    claim_assignments,
    distribute_work,
    form_agents,
)
from tasks.telemetry import read_spans, spans_path
from tests.loopback import echo_server


def sleeps(call: dict) -> dict:
    time.sleep(2.0)
    return {"too": "late"}


def always_fails(call: dict) -> dict:
    raise RuntimeError(f"{call['task_id']} cannot be done")


@flow
def crash_after_claiming(request: SwarmRequest) -> None:
    analysis = analyse_priorities(request)
    with compensating("claim then crash"):
        agents = form_agents(request, analysis)
        plan = claim_assignments(request, distribute_work(request, analysis, agents), "run-x")
        raise RuntimeError(f"crashed holding {len(plan.assignments)} claims")


@pytest.fixture(scope="module")
def sample_run(prefect_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("swarm")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REACTOR_COORDINATION_DIR", str(root / "coordination"))
        mp.setenv("REACTOR_EXPORTS_DIR", str(root / "exports"))
        from tasks.settings import get_settings

        settings = get_settings()
        request = load_sample()
        return request, swarm_coordination(request), settings


def test_every_task_completes_exactly_once(sample_run):
    request, result, settings = sample_run
    assert result.success_rate == 1.0
    assert {e.status for e in result.executions} == {"completed"}
    claims = ClaimLedger(settings.coordination_dir).list()
    assert len(claims) == len(request.tasks)
    assert all(c.status == "completed" and c.claims == 1 for c in claims)
    log = [e for e in read_log(settings) if e.get("run_id") == result.run_id]
    assert sorted(e["task_id"] for e in log) == sorted(t.id for t in request.tasks)


def test_priority_source_and_plan_are_reported(sample_run):
    _, result, _ = sample_run
    assert result.analysis.source == "heuristic"
    assert "no Anthropic API key" in result.analysis.fallback_reason
    plan = result.plan
    assert plan.makespan_ms >= plan.lower_bound_ms > 0
    assert plan.ratio == pytest.approx(plan.makespan_ms / plan.lower_bound_ms, rel=1e-3)
    assert sum(a.value_first for a in plan.assignments) >= 3  # a fifth of 12, plus its deps


def test_spans_show_dependencies_and_concurrency_honoured(sample_run):
    request, result, settings = sample_run
    timeline = {r["task_id"]: r for r in result.telemetry.timeline}
    assert len(timeline) == len(request.tasks) == result.telemetry.spans

    def ts(value: str) -> float:
        return datetime.fromisoformat(value).timestamp()

    for task in request.tasks:
        for dep in task.dependencies:
            assert ts(timeline[dep]["end_time"]) <= ts(timeline[task.id]["start_time"])
    concurrency = {a.agent_id: a.concurrency for a in result.agents}
    for agent_id, limit in concurrency.items():
        mine = [r for r in timeline.values() if r["agent_id"] == agent_id]
        for r in mine:
            start, end = ts(r["start_time"]), ts(r["end_time"])
            overlapping = [
                o for o in mine if ts(o["start_time"]) < end and start < ts(o["end_time"])
            ]
            assert len(overlapping) <= limit
    # the spans were read back from the JSONL file and sit under Prefect's task-run spans
    records = {r["span_id"]: r for r in read_spans(spans_path(settings))}
    for r in timeline.values():
        parent = records[records[r["span_id"]]["parent_span_id"]]
        assert parent["operation_name"] == f"execute-{r['task_id']}"


def test_coordination_files_keep_the_seed_shape(sample_run):
    _, result, settings = sample_run
    claims = json.loads((settings.coordination_dir / "work_claims.json").read_text())
    assert {
        "work_item_id", "agent_id", "claimed_at", "estimated_duration", "work_type", "priority",
        "description", "status", "team", "telemetry",
    } <= set(claims[0])  # fmt: skip
    assert all(c["telemetry"]["trace_id"] for c in claims)
    agents = json.loads((settings.coordination_dir / "agent_status.json").read_text())
    assert {a["agent_id"] for a in agents} == {a.agent_id for a in result.agents}
    assert {a["status"] for a in agents} == {"idle"} and {
        a["current_workload"] for a in agents
    } == {0}
    completed = sum(a["performance_metrics"]["tasks_completed"] for a in agents)
    assert completed == len(result.executions)
    assert {
        "agent_id", "team", "status", "capacity", "current_workload", "specialization",
        "last_heartbeat", "performance_metrics",
    } <= set(agents[0])  # fmt: skip


def test_datasets_read_back(sample_run):
    request, result, _ = sample_run
    for name in ("swarm_assignments", "swarm_claims", "swarm_timeline"):
        files = result.exports[name]
        assert {f.rsplit(".", 1)[1] for f in files} == {"json", "jsonl", "csv", "parquet"}
        frames = [read_export(f) for f in files]
        assert all(len(f) == len(request.tasks) for f in frames)
        assert all(f.equals(frames[0]) for f in frames[1:])
    claims = read_export(result.exports["swarm_claims"][3])
    assert set(claims["status"]) == {"completed"}


def test_low_success_rate_rolls_back_agents_and_claims(reactor_env):
    request = SwarmRequest.model_validate(
        {
            "tasks": [
                {"id": "ok-1", "type": "analysis", "estimated_duration_ms": 300},
                {"id": "doomed", "type": "doomed", "estimated_duration_ms": 300, "retries": 0},
                {"id": "after", "type": "validation", "estimated_duration_ms": 300,
                 "dependencies": ["doomed"]},
            ],
            "handlers": {"doomed": {"kind": "python", "target": f"{__name__}:always_fails"}},
            "max_agents": 2,
            "min_success_rate": 0.9,
        }
    )  # fmt: skip
    with pytest.raises(RolledBack) as info:
        swarm_coordination(request)
    assert "success rate 33% is below min_success_rate 90%" in str(info.value)
    # undo runs in reverse order; every item had finished (completed or failed), so no claim
    # was still held to release
    assert info.value.compensations == [
        "released 0 unfinished claim(s) of 3",
        "deregistered 2 agent(s) from agent_status.json",
    ]
    agents = json.loads((reactor_env.coordination_dir / "agent_status.json").read_text())
    assert agents == []
    statuses = ClaimLedger(reactor_env.coordination_dir).counts()
    assert statuses == {"completed": 1, "failed": 2}  # the handler really ran; nothing held


def test_more_agent_slots_than_threads_cannot_deadlock(reactor_env):
    # 6 agents x 2 slots against the flow's 4-thread pool, with chains crossing agents: items are
    # submitted in planned start order, so every waiting item's predecessors are already running
    tasks = [
        {"id": f"t{i}", "type": "coordination", "estimated_duration_ms": 50 + 10 * i,
         "dependencies": [f"t{i - 3}"] if i >= 3 else []}
        for i in range(18)
    ]  # fmt: skip
    request = SwarmRequest.model_validate(
        {
            "tasks": tasks,
            "agents": [{"name": f"a{i}", "concurrency": 2} for i in range(6)],
            "optimization_strategy": "speed",
        }
    )
    result = swarm_coordination(request)
    assert result.success_rate == 1.0
    digests = {e.task_id: e.result["inputs"] for e in result.executions}
    assert digests["t17"] == ["t14"]  # dependency results reached the dependent's handler


def test_crash_after_claiming_releases_every_claim_and_deregisters(reactor_env):
    with pytest.raises(RolledBack, match="crashed holding 12 claims") as info:
        crash_after_claiming(load_sample())
    assert info.value.compensations == [
        "released 12 unfinished claim(s) of 12",
        "deregistered 3 agent(s) from agent_status.json",
    ]
    assert ClaimLedger(reactor_env.coordination_dir).counts() == {"pending": 12}
    assert json.loads((reactor_env.coordination_dir / "agent_status.json").read_text()) == []


def test_http_handler_gets_the_run_trace_and_a_timeout_is_recorded(reactor_env):
    with echo_server("/execute") as url:
        result = swarm_coordination(
            SwarmRequest.model_validate(
                {
                    "tasks": [
                        {"id": "remote", "type": "remote", "estimated_duration_ms": 200},
                        {"id": "slow", "type": "slow", "estimated_duration_ms": 200,
                         "timeout_s": 0.2, "retries": 0},
                        {"id": "check", "type": "validation", "estimated_duration_ms": 200,
                         "dependencies": ["remote"]},
                    ],
                    "handlers": {
                        "remote": {"kind": "http", "target": url},
                        "slow": {"kind": "python", "target": f"{__name__}:sleeps"},
                    },
                    "max_agents": 2,
                    "min_success_rate": 0.6,
                }
            )
        )  # fmt: skip
    by_task = {e.task_id: e for e in result.executions}
    timeline = {r["task_id"]: r for r in result.telemetry.timeline}
    assert by_task["remote"].status == "completed" and by_task["check"].status == "completed"
    assert by_task["remote"].result["traceparent"].split("-")[1] == timeline["remote"]["trace_id"]
    assert by_task["slow"].status == "failed" and "timed out after 0.2 s" in by_task["slow"].error
    assert timeline["slow"]["status"] == "timeout"
    assert any("slow" in r for r in result.telemetry.recommendations)
    assert result.success_rate == pytest.approx(2 / 3)


def test_cli_swarm_run_with_agents_and_strategy(reactor_env, tmp_path):
    from typer.testing import CliRunner

    from reactor.cli import app
    from tasks.swarm.models import SwarmResult

    elsewhere = tmp_path / "elsewhere"
    result = CliRunner().invoke(
        app,
        ["swarm", "run", str(SAMPLE), "--agents", "2", "--strategy", "balanced",
         "--coordination-dir", str(elsewhere), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    run = SwarmResult.model_validate_json(result.stdout)
    assert run.strategy == "balanced" and len(run.agents) == 2 and run.success_rate == 1.0
    assert ClaimLedger(elsewhere).counts() == {"completed": 12}
