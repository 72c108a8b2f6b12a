"""The agent registry as a resumed or crashed swarm run needs it, on both backends: agents
registered again by a resumed run are active with their metrics kept, and each agent lapses
after its own run's heartbeat timeout (idle agents of finished runs never do)."""

from __future__ import annotations

import time

from tasks import agent_registry
from tasks.swarm.agents import form_agents
from tasks.swarm.models import AgentSpec


def test_registering_an_agent_again_reactivates_it_keeping_its_metrics(ledger_settings):
    """What a resumed swarm run does with its dead attempt's agents."""
    (a,) = form_agents([AgentSpec(name="a")])
    agent_registry.register([a], ledger_settings)
    agent_registry.record_outcome(a.agent_id, 50.0, True, ledger_settings)
    agent_registry.set_status([a.agent_id], "dead", ledger_settings)
    agent_registry.register([a], ledger_settings, heartbeat_timeout_s=5.0)
    (again,) = agent_registry.agents(ledger_settings)
    assert again["status"] == "active" and again["heartbeat_timeout_s"] == 5.0
    assert again["performance_metrics"]["tasks_completed"] == 1


def test_each_agent_lapses_after_its_own_timeout_and_idle_agents_never_do(ledger_settings):
    short, long_, idle = form_agents([AgentSpec(name=n) for n in ("short", "long", "idle")])
    agent_registry.register([short], ledger_settings, heartbeat_timeout_s=0.2)
    agent_registry.register([long_, idle], ledger_settings, heartbeat_timeout_s=60.0)
    agent_registry.set_status([idle.agent_id], "idle", ledger_settings)
    time.sleep(0.3)
    assert agent_registry.mark_lapsed(0.1, ledger_settings) == [short.agent_id]
    status = {r["agent_id"]: r["status"] for r in agent_registry.agents(ledger_settings)}
    assert status == {short.agent_id: "dead", long_.agent_id: "active", idle.agent_id: "idle"}
