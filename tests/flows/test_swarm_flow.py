"""The swarm flow on the bundled sample, for real: every task completed exactly once through
its handler, dependencies and per-agent concurrency honoured in the spans, coordination files in
their published shape, datasets that read back, a run log that tells the story; a low success
rate rolls back, says what it undid and raises the alert event."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from datetime import datetime
from pathlib import Path

import httpx2
import pytest
from prefect import flow

from flows.swarm_coordination import SAMPLE, load_sample, swarm_coordination
from tasks.claims import SqliteLedger
from tasks.compensation import compensating
from tasks.coordination_log import read_log
from tasks.errors import RolledBack
from tasks.export import read_export
from tasks.swarm.errors import SwarmRolledBack
from tasks.swarm.models import SwarmRequest, SwarmResult
from tasks.swarm.prefect_tasks import (
    analyze_priorities,
    claim_assignments,
    distribute_work,
    form_agents,
)
from tasks.telemetry import read_spans, spans_path
from tests.loopback import echo_server
from tests.prefect_api import run_logs

HANDLERS = "tests.unit.swarm.sample_handlers"


def run(request: SwarmRequest) -> SwarmResult:
    return asyncio.run(swarm_coordination(request))


@flow
async def crash_after_claiming(request: SwarmRequest) -> None:
    analysis = analyze_priorities(request)
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
        return request, run(request), settings


def test_every_task_completes_exactly_once(sample_run):
    request, result, settings = sample_run
    assert result.success_rate == 1.0
    assert {e.status for e in result.executions} == {"completed"}
    claims = SqliteLedger(settings.coordination_dir).list()
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


LOW_SUCCESS = {
    "tasks": [
        {"id": "ok-1", "type": "analysis", "estimated_duration_ms": 300},
        {"id": "doomed", "type": "doomed", "estimated_duration_ms": 300, "retries": 1},
        {"id": "after", "type": "validation", "estimated_duration_ms": 300,
         "dependencies": ["doomed"]},
    ],
    "handlers": {"doomed": {"kind": "python", "target": f"{HANDLERS}:always_fails"}},
    "max_agents": 2,
    "min_success_rate": 0.9,
}  # fmt: skip


@pytest.fixture(scope="module")
def rolled_back_run(prefect_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("swarm-rolled-back")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REACTOR_COORDINATION_DIR", str(root / "coordination"))
        mp.setenv("REACTOR_EXPORTS_DIR", str(root / "exports"))
        from tasks.settings import get_settings

        with pytest.raises(SwarmRolledBack) as info:
            run(SwarmRequest.model_validate(LOW_SUCCESS))
        return info.value, get_settings()


UNDONE = ["released 0 unfinished claim(s) of 3", "deregistered 2 agent(s) from agent_status.json"]


def test_low_success_rate_rolls_back_agents_and_claims(rolled_back_run):
    error, settings = rolled_back_run
    assert "success rate 33% is below min_success_rate 90%" in str(error)
    # undo runs in reverse order; every item had finished (completed or failed), so no claim
    # was still held to release
    assert error.compensations == UNDONE
    agents = json.loads((settings.coordination_dir / "agent_status.json").read_text())
    assert agents == []
    statuses = SqliteLedger(settings.coordination_dir).counts()
    assert statuses == {"completed": 1, "failed": 2}  # the handler really ran; nothing held


def test_a_rolled_back_result_lists_what_was_undone_and_the_true_attempts(rolled_back_run):
    result = rolled_back_run[0].result
    assert result.compensations == UNDONE
    attempts = {e.task_id: (e.status, e.attempts) for e in result.executions}
    assert attempts == {"ok-1": ("completed", 1), "doomed": ("failed", 2), "after": ("skipped", 0)}


def _summary(flow_run_id: str) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["swarm-summary"]))
        )
    (mine,) = [a for a in artifacts if str(a.flow_run_id) == flow_run_id]
    return mine.data


def test_a_rolled_back_run_summary_lists_the_compensations(rolled_back_run):
    summary = _summary(rolled_back_run[0].result.run_id)
    assert "**rolled back**: swarm coordination failed: success rate 33%" in summary
    assert "## Compensations" in summary
    assert all(f"- {c}" in summary for c in UNDONE)


def test_below_min_success_rate_emits_the_alert_event(rolled_back_run):
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    run_id = rolled_back_run[0].result.run_id
    wanted = EventFilter(
        event=EventNameFilter(name=["reactor.swarm.below_min_success_rate"]),
        resource=EventResourceFilter(id=[f"reactor.swarm.{run_id}"]),
    )
    deadline = time.monotonic() + 20  # the server persists events asynchronously
    with get_client(sync_client=True) as client:
        while not (events := client.read_events(filter=wanted, limit=10).events):
            assert time.monotonic() < deadline, "no reactor.swarm.below_min_success_rate event"
            time.sleep(0.5)
    (event,) = events
    assert event.payload["success_rate"] == pytest.approx(1 / 3)
    assert event.payload["min_success_rate"] == 0.9
    assert event.payload["not_completed"] == ["doomed", "after"]


def test_a_rolled_back_run_logs_each_retry_and_compensation(rolled_back_run):
    logs = run_logs(rolled_back_run[0].result.run_id, expect="compensation: deregistered")
    assert re.search(r"doomed on agent_\w+: attempt 1: RuntimeError: doomed cannot be done; "
                     r"retrying in [\d.]+ s", logs)  # fmt: skip
    assert "doomed on agent_" in logs and "failed after 2 attempt(s)" in logs
    assert "after on agent_" in logs and "skipped after 0 attempt(s)" in logs
    for c in UNDONE:
        assert f"compensation: {c}" in logs
    assert "rolled back: swarm coordination failed: success rate 33%" in logs


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


def test_crash_after_claiming_releases_every_claim_and_deregisters(reactor_env):
    with pytest.raises(RolledBack, match="crashed holding 12 claims") as info:
        asyncio.run(crash_after_claiming(load_sample()))
    assert info.value.compensations == [
        "released 12 unfinished claim(s) of 12",
        "deregistered 3 agent(s) from agent_status.json",
    ]
    assert SqliteLedger(reactor_env.coordination_dir).counts() == {"pending": 12}
    assert json.loads((reactor_env.coordination_dir / "agent_status.json").read_text()) == []


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
    assert SqliteLedger(elsewhere).counts() == {"completed": 12}


def test_run_log_tells_the_story(sample_run):
    request, result, _ = sample_run
    logs = run_logs(result.run_id, expect="dataset swarm_timeline")
    assert "12 task(s) in (" in logs and "strategy 8020, min success rate 80%" in logs
    assert "priorities from heuristic (confidence 0.60); fallback: no Anthropic API key" in logs
    for agent in result.agents:
        assert f"agent {agent.agent_id} formed: {agent.name}" in logs
    assert f"plan 8020: makespan {result.plan.makespan_ms:.0f} ms vs lower bound" in logs
    for a in result.plan.assignments:
        assert f"claimed {a.work_item_id} ({a.task_id}) for {a.agent_id}" in logs
    for e in result.executions:
        assert f"{e.task_id} on {e.agent_id}: completed" in logs
    assert "completed on a generated input (synthetic_input) after 1 attempt(s)" in logs
    for name, files in result.exports.items():
        assert f"dataset {name}: {len(request.tasks)} row(s) -> {Path(files[0]).parent}" in logs


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
    assert (
        f"(`synthetic_input: true`, the payload had no data): {', '.join(generated)}"
        in _summary(result.run_id)
    )


def test_agent_ids_are_what_the_readme_says(sample_run):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "`agent_<ns>_<pid>` IDs" in readme
    _, result, _ = sample_run
    assert all(re.fullmatch(r"agent_\d+_[0-9a-z]+", a.agent_id) for a in result.agents)


CLAUDE_SEEN: list = []


def _claude_answers(request: httpx2.Request) -> httpx2.Response:
    CLAUDE_SEEN.append(request)
    facts = json.loads(json.loads(request.content)["messages"][0]["content"].split("\n", 1)[1])
    if facts[0]["description"].startswith("overloaded"):
        error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        return httpx2.Response(529, headers={"retry-after": "0"}, json=error)
    answer = {
        "scores": [{"task_id": f["task_id"], "score": 50, "reasoning": "ok"} for f in facts],
        "confidence": 0.9, "recommended_agents": 1, "reasoning": "fine",
    }  # fmt: skip
    return httpx2.Response(200, json={
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test",
        "content": [
            {"type": "tool_use", "id": "tu_1", "name": "record_priorities", "input": answer}
        ],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5},
    })  # fmt: skip


@flow
async def priorities_only(request: SwarmRequest):
    return analyze_priorities(
        request, httpx2.Client(transport=httpx2.MockTransport(_claude_answers))
    )


def _unique_request(description: str) -> SwarmRequest:
    tag = uuid.uuid4().hex[:8]  # a previous session's cache never answers
    return SwarmRequest.model_validate(
        {"tasks": [{"id": f"t-{tag}", "type": "analysis", "estimated_duration_ms": 100,
                    "description": f"{description} {tag}"}]}
    )  # fmt: skip


@pytest.fixture
def claude_key(reactor_env, monkeypatch):
    monkeypatch.setenv("REACTOR_ANTHROPIC_API_KEY", "sk-ant-test-key-123456")
    monkeypatch.setenv("REACTOR_LLM_MAX_RETRIES", "0")
    CLAUDE_SEEN.clear()


def test_claude_priorities_are_cached_across_runs(claude_key):
    request = _unique_request("cacheable")
    first = asyncio.run(priorities_only(request))
    second = asyncio.run(priorities_only(request))
    assert first.source == second.source == "claude"
    assert second == first and len(CLAUDE_SEEN) == 1  # the second run asked nobody


def test_a_fallback_is_not_cached(claude_key):
    overloaded = _unique_request("overloaded")
    first = asyncio.run(priorities_only(overloaded))
    assert first.source == "heuristic" and "529" in first.fallback_reason
    again = asyncio.run(priorities_only(overloaded))
    assert again.source == "heuristic" and len(CLAUDE_SEEN) == 2  # Claude was asked again


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
