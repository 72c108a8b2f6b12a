"""Executing one claimed item against the ledger: completion only when the handler returned,
dependents of a failure are skipped, the coordination log and agent metrics are real, the
attempts reported are the attempts that ran, and a timed-out handler's side effect never
happens."""

from __future__ import annotations

import json
import time

import pytest

from tasks.claims import ClaimLedger, WorkItem
from tasks.coordination_log import read_log
from tasks.swarm import agents as registry
from tasks.swarm.execution import ItemJob, execute_item
from tasks.swarm.models import AgentSpec, Assignment, HandlerSpec, SwarmTask

HANDLERS = "tests.unit.swarm.sample_handlers"


def _setup(settings, *task_ids: str):
    ledger = ClaimLedger(settings.coordination_dir)
    (agent,) = registry.form_agents([AgentSpec(name="solo")])
    registry.register([agent], settings.coordination_dir)
    ledger.add(
        WorkItem(work_item_id=f"work_{t}", priority="high", max_attempts=1) for t in task_ids
    )
    for t in task_ids:
        ledger.claim(f"work_{t}", agent.agent_id)
    return ledger, agent


def _job(task: SwarmTask, agent_id: str, ledger: ClaimLedger, **job) -> ItemJob:
    """The job of `task`, claimed by `agent_id` in `_setup`."""
    assignment = Assignment(
        task_id=task.id, work_item_id=f"work_{task.id}", agent_id=agent_id, slot=0,
        planned_start_ms=0, planned_finish_ms=1, order=0,
        claim_id=ledger.get(f"work_{task.id}").claim_id,
    )  # fmt: skip
    return ItemJob(task=task, assignment=assignment, run_id="r", lease_s=30, **job)


def test_completed_item_is_logged_with_its_fields_and_counted(reactor_env):
    ledger, agent = _setup(reactor_env, "stats")
    task = SwarmTask(
        id="stats", type="analysis", priority="high", estimated_duration_ms=300,
        payload={"values": [2, 4, 6]},
    )  # fmt: skip
    record = execute_item(ledger, reactor_env, _job(task, agent.agent_id, ledger))
    assert record.status == "completed" and record.result["mean"] == 4.0
    assert ledger.get("work_stats").status == "completed"
    (entry,) = read_log(reactor_env)
    assert {"work_item_id", "completed_at", "agent_id", "result", "velocity_points"} <= set(entry)
    assert entry["velocity_points"] == 5 and entry["result"]["mean"] == 4.0
    status = json.loads((reactor_env.coordination_dir / "agent_status.json").read_text())
    metrics = status[0]["performance_metrics"]
    assert metrics["tasks_completed"] == 1 and metrics["success_rate"] == 1.0
    assert status[0]["current_workload"] == 0


def test_failed_handler_fails_the_item_and_dependents_are_skipped(reactor_env):
    ledger, agent = _setup(reactor_env, "broken", "after")
    handlers = {"bad": HandlerSpec(kind="python", target="json:loads")}  # loads(dict) raises
    broken = SwarmTask(id="broken", type="bad", estimated_duration_ms=100, retries=1)
    after = SwarmTask(
        id="after", type="analysis", estimated_duration_ms=100, dependencies=["broken"]
    )
    first = execute_item(
        ledger, reactor_env, _job(broken, agent.agent_id, ledger, handlers=handlers)
    )
    assert first.status == "failed" and first.attempts == 2 and "TypeError" in first.error
    job = _job(after, agent.agent_id, ledger, dependency_items={"broken": "work_broken"})
    second = execute_item(ledger, reactor_env, job)
    assert second.status == "skipped" and "broken" in second.error
    assert ledger.counts() == {"failed": 2}
    assert read_log(reactor_env) == []  # nothing completed, nothing logged
    status = json.loads((reactor_env.coordination_dir / "agent_status.json").read_text())
    assert status[0]["performance_metrics"]["tasks_failed"] == 1  # a skip is not its failure


def _run_one(settings, task: SwarmTask, handlers: dict) -> tuple:
    ledger, agent = _setup(settings, task.id)
    record = execute_item(ledger, settings, _job(task, agent.agent_id, ledger, handlers=handlers))
    return record, ledger


@pytest.mark.parametrize(
    ("handler", "attempts", "error"),
    [
        ("rejects_input", 1, "InvalidInput"),  # not retried: the input will not get better
        ("missing", 0, "cannot be imported"),  # nothing ran
    ],
)
def test_a_failed_item_reports_the_attempts_that_ran(reactor_env, handler, attempts, error):
    handlers = {"kind": HandlerSpec(kind="python", target=f"{HANDLERS}:{handler}")}
    task = SwarmTask(id="one", type="kind", estimated_duration_ms=100, retries=3)
    record, ledger = _run_one(reactor_env, task, handlers)
    assert record.status == "failed" and record.attempts == attempts
    assert error in record.error
    assert ledger.get("work_one").status == "failed"


def test_timed_out_item_fails_and_its_side_effect_never_happens(reactor_env, tmp_path):
    handlers = {"slow": HandlerSpec(kind="python", target=f"{HANDLERS}:slow_side_effect")}
    marks = tmp_path / "marks"
    marks.mkdir()
    task = SwarmTask(
        id="slow", type="slow", estimated_duration_ms=100, timeout_s=1.0, retries=1,
        payload={"dir": str(marks), "sleep_s": 3.0},
    )  # fmt: skip
    t0 = time.monotonic()
    record, ledger = _run_one(reactor_env, task, handlers)
    assert record.status == "failed" and record.attempts == 2
    assert "timed out after 1 s" in record.error
    time.sleep(max(0.0, t0 + 3.5 - time.monotonic()))  # past when attempt 1 would have ended
    assert not list(marks.glob("end-*")) and not list(marks.glob("overlap-*"))
    assert ledger.get("work_slow").status == "failed"


def test_the_shortfall_a_run_fails_with_holds_no_secret(monkeypatch):
    """The error a run below its minimum fails with becomes the flow run's state message and
    the CLI's error line: a handler error quoting a key is named, the key redacted."""
    from tasks.swarm.execution import shortfall
    from tasks.swarm.models import ExecutionRecord

    monkeypatch.setenv("SERVICE_API_SECRET", "sk-live-shortfall-0123456789")
    failed = ExecutionRecord(
        task_id="leaky", work_item_id="work_leaky", agent_id="agent_a", status="failed",
        attempts=1, duration_ms=1.0, started_at="", finished_at="",
        error="RuntimeError: upstream rejected key sk-live-shortfall-0123456789",
    )  # fmt: skip
    message = str(shortfall([failed], 0.5))
    assert "leaky (RuntimeError: upstream rejected key [REDACTED])" in message
    assert "sk-live-shortfall" not in message
