"""Executing one claimed item against the ledger: completion only when the handler returned,
dependents of a failure are skipped, the coordination log and agent metrics are real."""

from __future__ import annotations

import json

from tasks.claims import ClaimLedger, WorkItem
from tasks.coordination_log import read_log
from tasks.swarm import agents as registry
from tasks.swarm.execution import execute_item
from tasks.swarm.models import AgentSpec, Assignment, HandlerSpec, SwarmTask


def _setup(settings, *task_ids: str):
    ledger = ClaimLedger(settings.coordination_dir)
    (agent,) = registry.form_agents([AgentSpec(name="solo")])
    registry.register([agent], settings.coordination_dir)
    ledger.add(WorkItem(work_item_id=f"work_{t}", priority="high") for t in task_ids)
    for t in task_ids:
        ledger.claim(f"work_{t}", agent.agent_id)
    return ledger, agent


def _assignment(task_id: str, agent_id: str) -> Assignment:
    return Assignment(
        task_id=task_id, work_item_id=f"work_{task_id}", agent_id=agent_id, slot=0,
        planned_start_ms=0, planned_finish_ms=1, order=0,
    )  # fmt: skip


def test_completed_item_is_logged_with_seed_fields_and_counted(reactor_env):
    ledger, agent = _setup(reactor_env, "stats")
    task = SwarmTask(
        id="stats", type="analysis", priority="high", estimated_duration_ms=300,
        payload={"values": [2, 4, 6]},
    )  # fmt: skip
    record = execute_item(
        ledger, reactor_env, task, _assignment("stats", agent.agent_id), {}, {}, "run1", 30
    )
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
        ledger, reactor_env, broken, _assignment("broken", agent.agent_id), {}, handlers, "r", 30
    )
    assert first.status == "failed" and first.attempts == 2 and "TypeError" in first.error
    second = execute_item(
        ledger, reactor_env, after, _assignment("after", agent.agent_id),
        {"broken": "work_broken"}, handlers, "r", 30,
    )  # fmt: skip
    assert second.status == "skipped" and "broken" in second.error
    assert ledger.counts() == {"failed": 2}
    assert read_log(reactor_env) == []  # nothing completed, nothing logged
    status = json.loads((reactor_env.coordination_dir / "agent_status.json").read_text())
    assert status[0]["performance_metrics"]["tasks_failed"] == 1  # a skip is not its failure
