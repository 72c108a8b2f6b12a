"""The swarm flow on the bundled sample, for real: every task completed exactly once through
its handler, dependencies and per-agent concurrency honoured in the spans, coordination files in
their published shape, datasets that read back, a run log that tells the story (the undo path
is tests/flows/test_swarm_rollback.py, Claude's priorities test_swarm_priorities.py)."""

from __future__ import annotations

import asyncio
import json
import os
import re
from datetime import datetime
from pathlib import Path

import pytest

from flows.swarm_coordination import SAMPLE, load_sample, swarm_coordination
from tasks.claims import ClaimLedger
from tasks.coordination_log import read_log
from tasks.export import read_export
from tasks.span_log import read_spans, spans_path
from tasks.swarm.models import SwarmRequest, SwarmResult
from tests.flows.run_helpers import artifact_data, isolated_settings, line_with
from tests.loopback import echo_server
from tests.prefect_api import run_logs

HANDLERS = "tests.unit.swarm.sample_handlers"


def run(request: SwarmRequest) -> SwarmResult:
    return asyncio.run(swarm_coordination(request))


@pytest.fixture(scope="module")
def sample_run(prefect_server, tmp_path_factory):
    with isolated_settings(tmp_path_factory, "swarm") as settings:
        request = load_sample()
        return request, run(request), settings


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
        mine = [(ts(r["start_time"]), ts(r["end_time"])) for r in timeline.values()
                if r["agent_id"] == agent_id]  # fmt: skip
        for at, _ in mine:  # how many of its executions run at each moment one starts
            assert sum(start <= at < end for start, end in mine) <= limit
    # the spans were read back from the JSONL file and sit under Prefect's task-run spans
    records = {r["span_id"]: r for r in read_spans(spans_path(settings))}
    for r in timeline.values():
        parent = records[records[r["span_id"]]["parent_span_id"]]
        assert parent["operation_name"] == f"execute-{r['task_id']}"


def test_coordination_files_keep_their_published_shape(sample_run):
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
    result = run(request)
    assert result.success_rate == 1.0
    digests = {e.task_id: e.result["inputs"] for e in result.executions}
    assert digests["t17"] == ["t14"]  # dependency results reached the dependent's handler


def test_http_handler_gets_the_run_trace_and_a_timeout_is_recorded(reactor_env):
    with echo_server("/execute") as url:
        result = run(
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
                        "slow": {"kind": "python", "target": f"{HANDLERS}:sleeps"},
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


def test_run_log_tells_the_story(sample_run):
    request, result, _ = sample_run
    logs = run_logs(result.run_id, expect="swarm_timeline")
    assert line_with(logs, len(request.tasks), request.optimization_strategy, "80%")
    analysis = result.analysis
    assert line_with(logs, analysis.source, f"{analysis.confidence:.2f}", analysis.fallback_reason)
    for agent in result.agents:
        assert line_with(logs, agent.agent_id, agent.name)
    assert line_with(logs, result.plan.strategy, f"{result.plan.makespan_ms:.0f} ms")
    for a in result.plan.assignments:
        assert line_with(logs, a.work_item_id, a.task_id, a.agent_id)
    for e in result.executions:
        assert line_with(logs, e.task_id, e.agent_id, e.status)
    generated = [e.task_id for e in result.executions if (e.result or {}).get("synthetic_input")]
    assert generated and all(line_with(logs, t, "synthetic_input") for t in generated)
    for name, files in result.exports.items():
        assert line_with(logs, name, len(request.tasks), Path(files[0]).parent)


def test_artifacts_have_stable_keys_and_the_summary_names_synthetic_inputs(sample_run):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    _, result, _ = sample_run
    with get_client(sync_client=True) as client:
        mine = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[result.run_id])
            )
        )
    assert {a.key for a in mine if a.key} == {"swarm-summary", "swarm-assignments"}
    generated = [e.task_id for e in result.executions if (e.result or {}).get("synthetic_input")]
    assert "ingest-metrics" in generated and "ingest-logs" not in generated  # it has values
    assert line_with(artifact_data(result.run_id, "swarm-summary"), *generated)


def test_agent_ids_carry_a_unique_stamp_and_the_process(sample_run):
    _, result, _ = sample_run
    ids = [a.agent_id for a in result.agents]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"agent_\d+_[0-9a-z]+", agent_id) for agent_id in ids), ids
    # the last part is the process (base 36): the flow ran in this one
    assert {int(agent_id.rsplit("_", 1)[1], 36) for agent_id in ids} == {os.getpid()}


METRICS_PROBE = """
import asyncio, json
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
from flows.swarm_coordination import swarm_coordination
from tasks.swarm.models import SwarmRequest
request = SwarmRequest.model_validate({"tasks": [
    {"id": "a", "type": "analysis", "estimated_duration_ms": 100, "payload": {"values": [1, 2]}},
    {"id": "b", "type": "validation", "estimated_duration_ms": 100, "dependencies": ["a"]},
]})
asyncio.run(swarm_coordination(request))
counts = {}
for rm in reader.get_metrics_data().resource_metrics:
    for sm in rm.scope_metrics:
        for m in sm.metrics:
            for p in m.data.data_points:
                if not hasattr(p, "count"):  # counters and gauges: only histograms count runs
                    continue
                labels = ",".join(f"{k}={v}" for k, v in sorted(p.attributes.items()))
                counts[f"{m.name} {labels}"] = p.count
print(json.dumps(counts))
"""


def test_task_and_handler_durations_are_recorded(reactor_env):
    import os
    import subprocess
    import sys

    from prefect.settings import PREFECT_API_URL

    # a process of its own: the global MeterProvider can be set once per process
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    out = subprocess.run(
        [sys.executable, "-c", METRICS_PROBE], cwd=Path(__file__).resolve().parents[2], env=env,
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    counts = json.loads(out.stdout.strip().splitlines()[-1])
    assert counts["reactor.task.duration scenario=swarm,task=execute"] == 2
    assert counts["reactor.swarm.handler.duration outcome=completed,work_type=analysis"] == 1
    assert counts["reactor.swarm.handler.duration outcome=completed,work_type=validation"] == 1
