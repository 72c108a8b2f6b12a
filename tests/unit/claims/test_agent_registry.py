"""The agent registry on both backends: the classic agent_status.json shape, real metrics,
heartbeats, and agents whose heartbeat lapsed marked dead."""

from __future__ import annotations

import json
import time

from tasks import agent_registry
from tasks.swarm.agents import form_agents
from tasks.swarm.models import AgentSpec

SEED_FIELDS = {
    "agent_id", "team", "status", "capacity", "current_workload", "specialization",
    "last_heartbeat", "performance_metrics",
}  # fmt: skip


def test_registry_keeps_the_seed_shape_and_real_metrics(ledger_settings):
    a, b = form_agents([AgentSpec(name="a", specializations=["analysis"]), AgentSpec(name="b")])
    agent_registry.register([a, b], ledger_settings)
    agent_registry.set_workload(a.agent_id, +1, ledger_settings)
    agent_registry.record_outcome(a.agent_id, 120.0, True, ledger_settings)
    agent_registry.record_outcome(a.agent_id, 80.0, False, ledger_settings)
    agent_registry.set_status([b.agent_id], "idle", ledger_settings)
    first, second = agent_registry.agents(ledger_settings)
    assert set(first) >= SEED_FIELDS and first["specialization"] == "analysis"
    assert first["current_workload"] == 1 and first["status"] == "active"
    assert first["performance_metrics"] == {
        "tasks_completed": 1, "tasks_failed": 1, "average_completion_time": 100.0,
        "success_rate": 0.5, "total_busy_ms": 200.0,
    }  # fmt: skip
    assert second["status"] == "idle" and second["specialization"] == "general"
    assert agent_registry.deregister([a.agent_id, "agent_unknown"], ledger_settings) == 1
    assert [r["agent_id"] for r in agent_registry.agents(ledger_settings)] == [b.agent_id]
    if ledger_settings.database_dsn is None:
        on_disk = json.loads((ledger_settings.coordination_dir / "agent_status.json").read_text())
        assert on_disk == agent_registry.agents(ledger_settings)


def test_agents_whose_heartbeat_lapsed_are_marked_dead(ledger_settings):
    alive, silent = form_agents([AgentSpec(name="alive"), AgentSpec(name="silent")])
    agent_registry.register([alive, silent], ledger_settings)
    time.sleep(0.3)
    agent_registry.heartbeat([alive.agent_id], ledger_settings)
    assert agent_registry.mark_lapsed(0.2, ledger_settings) == [silent.agent_id]
    assert agent_registry.mark_lapsed(0.2, ledger_settings) == []  # already dead
    status = {r["agent_id"]: r["status"] for r in agent_registry.agents(ledger_settings)}
    assert status == {alive.agent_id: "active", silent.agent_id: "dead"}


def test_a_finished_runs_agents_leave_when_the_next_run_registers(ledger_settings):
    """The registry holds live runs' agents (and the last finished run's), never the history:
    after many runs it is as long as after one; a resumed run's own idle agents stay."""
    sizes = []
    for run in range(5):
        agents = form_agents([AgentSpec(name=f"a{i}") for i in range(3)])
        agent_registry.register(agents, ledger_settings, run_id=f"run-{run}")
        agent_registry.record_outcome(agents[0].agent_id, 10.0, True, ledger_settings)
        agent_registry.set_status([a.agent_id for a in agents], "idle", ledger_settings)
        sizes.append(len(agent_registry.agents(ledger_settings)))
    assert sizes == [3] * 5
    assert {r["run_id"] for r in agent_registry.agents(ledger_settings)} == {"run-4"}
    agent_registry.register(agents, ledger_settings, run_id="run-4")  # the same run, resumed
    again = agent_registry.agents(ledger_settings)
    assert {r["agent_id"] for r in again} == {a.agent_id for a in agents}
    assert {r["status"] for r in again} == {"active"}
    assert again[0]["performance_metrics"]["tasks_completed"] == 1  # its metrics kept


def test_dead_agents_of_a_crashed_run_stay_for_its_resume(ledger_settings):
    crashed = form_agents([AgentSpec(name="c")])
    agent_registry.register(crashed, ledger_settings, run_id="crashed")
    time.sleep(0.3)
    assert agent_registry.mark_lapsed(0.2, ledger_settings) == [crashed[0].agent_id]
    agent_registry.register(form_agents([AgentSpec(name="n")]), ledger_settings, run_id="next")
    assert agent_registry.agents_of_run("crashed", ledger_settings) == {"c": crashed[0].agent_id}
