"""The swarm flow when it has to undo: a success rate below the minimum rolls back, says what it
undid (result, summary, run log) and raises the alert event; a crash while holding claims
releases every one of them and deregisters the agents."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from prefect import flow

from flows.swarm_coordination import load_sample, swarm_coordination
from tasks.claims import ClaimLedger
from tasks.compensation import compensating
from tasks.errors import RolledBack
from tasks.swarm.errors import SwarmRolledBack
from tasks.swarm.models import SwarmRequest
from tasks.swarm.prefect_tasks import (
    analyze_priorities,
    claim_assignments,
    distribute_work,
    form_agents,
)
from tests.flows.run_helpers import artifact_data, isolated_settings, line_with
from tests.prefect_api import run_logs

HANDLERS = "tests.unit.swarm.sample_handlers"
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
UNDONE = ["released 0 unfinished claim(s) of 3", "deregistered 2 agent(s) from agent_status.json"]


@flow
async def crash_after_claiming(request: SwarmRequest) -> None:
    analysis = analyze_priorities(request)
    with compensating("claim then crash"):
        agents = form_agents(request, analysis)
        plan = claim_assignments(request, distribute_work(request, analysis, agents), "run-x")
        raise RuntimeError(f"crashed holding {len(plan.assignments)} claims")


@pytest.fixture(scope="module")
def rolled_back_run(prefect_server, tmp_path_factory):
    with isolated_settings(tmp_path_factory, "swarm-rolled-back") as settings:
        with pytest.raises(SwarmRolledBack) as info:
            asyncio.run(swarm_coordination(SwarmRequest.model_validate(LOW_SUCCESS)))
        return info.value, settings


def test_low_success_rate_rolls_back_agents_and_claims(rolled_back_run):
    error, settings = rolled_back_run
    assert "success rate 33% is below min_success_rate 90%" in str(error)
    # undo runs in reverse order; every item had finished (completed or failed), so no claim
    # was still held to release
    assert error.compensations == UNDONE
    agents = json.loads((settings.coordination_dir / "agent_status.json").read_text())
    assert agents == []
    statuses = ClaimLedger(settings.coordination_dir).counts()
    assert statuses == {"completed": 1, "failed": 2}  # the handler really ran; nothing held


def test_a_rolled_back_result_lists_what_was_undone_and_the_true_attempts(rolled_back_run):
    result = rolled_back_run[0].result
    assert result.compensations == UNDONE
    attempts = {e.task_id: (e.status, e.attempts) for e in result.executions}
    assert attempts == {"ok-1": ("completed", 1), "doomed": ("failed", 2), "after": ("skipped", 0)}


def test_a_rolled_back_run_summary_lists_the_compensations(rolled_back_run):
    summary = artifact_data(rolled_back_run[0].result.run_id, "swarm-summary")
    assert line_with(summary, "rolled back", "33%")
    assert all(line_with(summary, c) for c in UNDONE)


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
    result = rolled_back_run[0].result
    logs = run_logs(result.run_id, expect=UNDONE[-1])
    doomed = next(e for e in result.executions if e.task_id == "doomed")
    assert line_with(logs, "doomed", doomed.agent_id, "1", "RuntimeError: doomed cannot be done")
    for e in result.executions:  # each outcome with its agent and attempt count
        assert line_with(logs, e.task_id, e.agent_id, e.status, e.attempts), e
    for c in result.compensations:
        assert line_with(logs, c)
    assert line_with(logs, "rolled back", "33%")


def test_crash_after_claiming_releases_every_claim_and_deregisters(reactor_env):
    with pytest.raises(RolledBack, match="crashed holding 12 claims") as info:
        asyncio.run(crash_after_claiming(load_sample()))
    assert info.value.compensations == [
        "released 12 unfinished claim(s) of 12",
        "deregistered 3 agent(s) from agent_status.json",
    ]
    assert ClaimLedger(reactor_env.coordination_dir).counts() == {"pending": 12}
    assert json.loads((reactor_env.coordination_dir / "agent_status.json").read_text()) == []
