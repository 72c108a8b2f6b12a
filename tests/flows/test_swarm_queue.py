"""Drain runs of the swarm flow over the ledger's queue, for real: producers enqueue through the
CLI and the Python function; scenario items run the other scenarios' flows as subflows of the
drain (one trace, linked runs, the subflow run ids in the timeline dataset); two drains at once
execute each item exactly once on both ledger backends; a failing item is retried across drains
up to max_attempts, then failed with its error, and only its dependents are blocked."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.swarm_coordination import swarm_coordination
from reactor.cli import app
from tasks.claims import open_ledger
from tasks.export import read_export
from tasks.span_log import read_spans, spans_path
from tasks.swarm.models import SwarmRequest, SwarmResult
from tasks.swarm.queue.enqueue import enqueue
from tasks.swarm.story import time_lines
from tasks.trace.sample import rebase_urls, sample_trace_request
from tasks.trace.standins import Behaviour, StandinConfig, run_standins
from tests.loopback import free_port

HANDLERS = "tests.unit.swarm.queue_handlers"
NAPS = "tests.unit.swarm.process_handlers"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, tmp_path, monkeypatch):
    """The flow's settings on one ledger backend (environment, as a deployed run gets them)."""
    monkeypatch.setenv("REACTOR_COORDINATION_DIR", str(tmp_path / "coordination"))
    monkeypatch.setenv("REACTOR_EXPORTS_DIR", str(tmp_path / "exports"))
    if request.param == "postgres":
        monkeypatch.setenv("REACTOR_DATABASE_URL", request.getfixturevalue("pg_database"))
    from tasks.settings import get_settings

    return get_settings()


def drain(limit: int = 50, agents: int = 4, **handlers: str) -> SwarmResult:
    request = SwarmRequest.model_validate(
        {
            "queue": {"limit": limit, "timeout_s": 120},
            "agents": [{"name": f"agent-{i}", "concurrency": 2} for i in range(agents)],
            "min_success_rate": 0.0,
            "lease_s": 120,
            "handlers": {
                t: {"kind": "python", "target": f"{HANDLERS}:{f}"} for t, f in handlers.items()
            },
        }
    )
    return asyncio.run(swarm_coordination(request))


def _cli(*args: str) -> str:
    done = CliRunner().invoke(app, ["claims", "add", *args])
    assert done.exit_code == 0, done.output
    return done.stdout.strip()


def _ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


FAST = StandinConfig(
    instances={n: Behaviour(latency_ms=5) for n in ("phoenix", "n8n", "xavos", "audit")}
)


def test_cli_enqueued_scenarios_run_as_subflows_of_one_drain_in_one_trace(tmp_path, monkeypatch):
    monkeypatch.setenv("REACTOR_COORDINATION_DIR", str(tmp_path / "coordination"))
    monkeypatch.setenv("REACTOR_EXPORTS_DIR", str(tmp_path / "exports"))
    from tasks.settings import get_settings

    settings = get_settings()
    spr = {
        "paths": [str(ROOT / "samples" / "spr")],
        "formats": ["standard"],
        "export_formats": ["json"],
        "write_spr_files": False,
        "learn": False,
    }
    with run_standins(FAST) as standins:
        systems = rebase_urls(sample_trace_request(), standins.base_url).model_dump(mode="json")
        spr_id = _cli(
            "spr.batch", "SPR of the samples", "--id", "spr-samples", "--payload", json.dumps(spr)
        )
        trace_id = _cli(
            "trace.check",
            "the stand-ins",
            "--id",
            "trace-standins",
            "--payload",
            json.dumps(systems),
        )
        analysis = json.loads(
            _cli(
                "analysis", "after both", "--id", "analysis-after", "--priority", "high",
                "--duration-ms", "150", "--payload", '{"values": [3, 5, 8, 13]}',
                "--depends-on", spr_id, "--depends-on", trace_id, "--json",
            )
        )  # fmt: skip
        assert analysis["dependencies"] == ["spr-samples", "trace-standins"]
        result = drain(limit=10, agents=2)

    assert {e.task_id: e.status for e in result.executions} == {
        "spr-samples": "completed", "trace-standins": "completed", "analysis-after": "completed",
    }  # fmt: skip
    by_task = {e.task_id: e for e in result.executions}
    # dependency order: the analysis started after both subflows finished
    after = _ts(by_task["analysis-after"].started_at)
    assert after >= max(_ts(by_task[t].finished_at) for t in ("spr-samples", "trace-standins"))
    spr_result, trace_result = by_task["spr-samples"].result, by_task["trace-standins"].result
    assert spr_result["subflow"] == "spr-pipeline" and spr_result["summary"]["exports_written"] >= 1
    assert spr_result["summary"]["median_quality"] is not None
    assert trace_result["subflow"] == "trace-orchestration"
    assert sorted(trace_result["summary"]["systems_ok"]) == ["audit", "n8n", "phoenix", "xavos"]
    subflows = {t: by_task[t].result["subflow_run_id"] for t in ("spr-samples", "trace-standins")}

    # the API shows both subflow runs under the swarm run
    async def parents() -> dict[str, str]:
        from prefect.client.orchestration import get_client

        async with get_client() as client:
            out = {}
            for task_id, run_id in subflows.items():
                run = await client.read_flow_run(run_id)
                assert run.state.is_completed()
                out[task_id] = str((await client.read_task_run(run.parent_task_run_id)).flow_run_id)
            return out

    assert asyncio.run(parents()) == {t: result.run_id for t in subflows}

    # one trace: each subflow's run span is a child of its swarm task's span
    spans = read_spans(spans_path(settings))
    by_id = {s["span_id"]: s for s in spans}
    run_span = {s["span_attributes"].get("prefect.run.id"): s for s in spans}
    swarm_trace = run_span[result.run_id]["trace_id"]
    for task_id, run_id in subflows.items():
        subflow_span = run_span[run_id]
        assert subflow_span["trace_id"] == swarm_trace
        assert by_id[subflow_span["parent_span_id"]]["operation_name"] == f"execute-{task_id}"
        inner = [
            s
            for s in spans
            if s["trace_id"] == swarm_trace and s["parent_span_id"] == subflow_span["span_id"]
        ]
        assert inner, f"{task_id}: the subflow's own spans are in the same trace"

    # the timeline dataset names the subflow runs
    timeline = read_export(result.exports["swarm_timeline"][0])
    rows = dict(zip(timeline["task_id"], timeline["subflow_run_id"], strict=True))
    assert {t: rows[t] for t in subflows} == subflows
    assert result.queue is not None
    assert (result.queue.depth_before, result.queue.taken, result.queue.completed) == (3, 3, 3)
    assert result.queue.depth_after == 0
    with open_ledger(settings) as ledger:
        assert ledger.queue_depth() == 0 and ledger.counts() == {"completed": 3}


# More items than one drain's limit, so both drains must take part; the takes are atomic
# whatever the count (tests/contract/test_ledger.py races 8 processes on them), so 80 items
# check what 200 did at 40 % of the flow runs' cost.
ITEMS, LIMIT = 80, 60


@pytest.mark.timeout(600)
def test_two_drains_at_once_execute_each_item_exactly_once(backend, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    items = [
        {
            "work_item_id": f"item-{i:03d}",
            "work_type": "queue.record",
            "payload": {"dir": str(marks)},
        }
        for i in range(ITEMS)
    ]
    assert len(enqueue(items, backend)) == ITEMS
    results: list[SwarmResult] = []
    errors: list[BaseException] = []

    def one_drain() -> None:
        try:
            results.append(drain(limit=LIMIT, agents=2, **{"queue.record": "records"}))
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    workers = [threading.Thread(target=one_drain) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors, errors
    executed = (marks / "executed").read_text().split()
    assert sorted(executed) == [i["work_item_id"] for i in items]  # each exactly once
    taken = [{e.work_item_id for e in r.executions} for r in results]
    assert not taken[0] & taken[1] and len(taken[0] | taken[1]) == ITEMS
    assert all(0 < len(t) <= LIMIT for t in taken)
    with open_ledger(backend) as ledger:
        assert ledger.counts() == {"completed": ITEMS} and ledger.queue_depth() == 0


def test_failing_item_is_retried_across_drains_then_failed_and_blocks_only_its_dependents(
    reactor_env, tmp_path
):
    marks = tmp_path / "marks"
    marks.mkdir()
    payload = {"dir": str(marks)}
    enqueue(
        [
            {"work_item_id": "flaky-export", "work_type": "queue.fail", "payload": payload,
             "max_attempts": 2},
            {"work_item_id": "after-export", "work_type": "queue.record", "payload": payload,
             "dependencies": ["flaky-export"]},
            {"work_item_id": "after-after", "work_type": "queue.record", "payload": payload,
             "dependencies": ["after-export"]},
        ],
        reactor_env,
    )  # fmt: skip
    handlers = {"queue.fail": "fails_and_records", "queue.record": "records"}
    runs = []
    for n in range(3):
        enqueue(
            [{"work_item_id": f"other-{n}", "work_type": "queue.record", "payload": payload}],
            reactor_env,
        )
        runs.append(drain(limit=10, agents=2, **handlers))

    # attempt 1, back in the queue with its error; attempt 2 = max_attempts: failed for good
    first, second, third = (r.queue for r in runs)
    assert (first.taken, first.completed, first.returned, first.failed) == (4, 1, 3, 0)
    assert "refused the batch" in first.last_errors["flaky-export"]
    assert (second.taken, second.completed, second.returned, second.failed) == (4, 1, 2, 1)
    assert (third.taken, third.completed, third.failed) == (1, 1, 0)  # only the newcomer
    assert (marks / "attempts").read_text().split() == ["flaky-export", "flaky-export"]
    assert sorted((marks / "executed").read_text().split()) == ["other-0", "other-1", "other-2"]
    assert third.blocked == {"after-export": ["flaky-export"], "after-after": ["flaky-export"]}
    with open_ledger(reactor_env) as ledger:
        failed = ledger.get("flaky-export")
        assert (failed.status, failed.attempts) == ("failed", 2)
        assert "ConnectionError: flaky-export: the downstream system refused" in failed.last_error
        dependent = ledger.get("after-export")
        assert (dependent.status, dependent.attempts) == ("pending", 0)  # skipped, never counted
    skipped = [e for e in runs[0].executions if e.status == "skipped"]
    assert {e.task_id for e in skipped} == {"after-export", "after-after"}


def test_a_drain_with_nothing_ready_reports_the_queue_and_succeeds(reactor_env):
    enqueue([{"work_item_id": "not-mine", "work_type": "somebody.else"}], reactor_env)
    done = CliRunner().invoke(app, ["swarm", "drain", "--limit", "5", "--agents", "2", "--json"])
    assert done.exit_code == 0, done.output
    result = SwarmResult.model_validate_json(done.stdout)
    assert result.executions == [] and result.queue is not None
    assert (result.queue.depth_before, result.queue.taken, result.queue.depth_after) == (1, 0, 1)
    assert result.queue.oldest_pending_age_s is not None


def test_a_failed_subflow_fails_its_item_with_the_subflows_error(reactor_env):
    down = f"http://127.0.0.1:{free_port()}"
    systems = {
        "enable_fallback": False,
        "systems": [{"name": "billing", "url": down, "timeout_s": 0.5, "retries": 0}],
    }
    enqueue(
        [
            {"work_item_id": "check-billing", "work_type": "trace.check", "payload": systems,
             "max_attempts": 1},
            {"work_item_id": "report", "work_type": "analysis", "dependencies": ["check-billing"]},
        ],
        reactor_env,
    )  # fmt: skip
    result = drain(limit=5, agents=1)
    failed = next(e for e in result.executions if e.task_id == "check-billing")
    assert failed.status == "failed" and "billing" in failed.error
    assert result.queue is not None
    assert (result.queue.failed, result.queue.returned) == (1, 1)
    assert result.queue.blocked == {"report": ["check-billing"]}

    async def subflow_states() -> list[str]:
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

        async with get_client() as client:
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[result.run_id])
                )
            )
            return [r.state.type.value for r in runs]

    assert asyncio.run(subflow_states()) == ["FAILED"]
    with open_ledger(reactor_env) as ledger:
        item = ledger.get("check-billing")
        assert item.status == "failed" and item.last_error == failed.error


def test_a_drain_reports_the_measured_durations_of_items_without_estimates(reactor_env):
    # two chained items of 0.6 s each, added without an estimated_duration (planned as 1 ms)
    nap = {"work_type": "nap", "payload": {"sleep_s": 0.6}}
    enqueue(
        [
            {**nap, "work_item_id": "nap-1"},
            {**nap, "work_item_id": "nap-2", "dependencies": ["nap-1"]},
        ],
        reactor_env,
    )
    request = SwarmRequest.model_validate(
        {
            "queue": {"limit": 10, "timeout_s": 60},
            "agents": [{"name": "agent-1"}, {"name": "agent-2"}],
            "min_success_rate": 0.0,
            "handlers": {"nap": {"kind": "python", "target": f"{NAPS}:naps"}},
        }
    )
    result = asyncio.run(swarm_coordination(request))
    assert [e.status for e in result.executions] == ["completed", "completed"]
    assert result.queue is not None and result.queue.unestimated == 2
    assert result.plan.makespan_ms <= 2  # the plan knew nothing of their durations
    measured = result.telemetry.measured_makespan_ms
    assert measured >= 1200  # both naps, one after the other
    starts = [_ts(e.started_at) for e in result.executions]
    ends = [_ts(e.finished_at) for e in result.executions]
    # the spans and the records time the same executions; a span also holds the completion's
    # ledger write, stamped after the record's finish, so it may end a little later
    assert abs(measured - (max(ends) - min(starts)) * 1000) <= 250
    assert all(r["handler_ms"] >= 600 for r in result.telemetry.timeline)
    planned, ran, *_ = time_lines(result)
    assert f"{result.plan.makespan_ms:.0f} ms" not in planned
    assert f"{measured:.0f} ms" in ran
    assert f"{sum(e.duration_ms for e in result.executions):.0f} ms" in ran
