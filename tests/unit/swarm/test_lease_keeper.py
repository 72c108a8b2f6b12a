"""The lease keeper of an executing item, on both ledger backends: a transient store failure
during a heartbeat is retried at the next beat (the lease stays alive, nobody else can take
the item, the execution completes); a lost claim stops it and the execution never completes."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import datetime

import pytest

from tasks.claims import SqliteLedger, WorkItem, open_ledger
from tasks.errors import CoordinationConflict, StoreUnavailable
from tasks.swarm import agents as registry
from tasks.swarm.execution import ItemJob, execute_item
from tasks.swarm.models import AgentSpec, Assignment, HandlerSpec, SwarmTask

HANDLERS = {
    "slow": HandlerSpec(kind="python", target="tests.unit.swarm.sample_handlers:slow_side_effect")
}
LEASE_S = 1.2  # a beat every 0.4 s
OUTAGE_S = 1.0  # covers at least two beats


@pytest.fixture
def keeper_ledger(ledger_settings):
    """The backend's ledger; SQLite's with a short busy timeout, so that a locked database
    fails a beat instead of waiting it out."""
    if ledger_settings.database_dsn:
        with open_ledger(ledger_settings) as opened:
            yield opened
    else:
        with SqliteLedger(ledger_settings.coordination_dir, busy_timeout_s=0.1) as opened:
            yield opened


def store_outage(ledger, settings) -> None:
    """A real transient failure of the ledger's store for OUTAGE_S: SQLite's database held
    under an exclusive lock by another connection; PostgreSQL's sessions killed again and
    again (each beat then meets a dead pooled connection)."""
    end = time.monotonic() + OUTAGE_S
    if settings.database_dsn:
        import psycopg

        with psycopg.connect(settings.database_dsn, autocommit=True) as admin:
            while time.monotonic() < end:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                time.sleep(0.05)
        return
    holder = sqlite3.connect(ledger.path, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        time.sleep(max(0.0, end - time.monotonic()))
        holder.execute("ROLLBACK")
    finally:
        holder.close()


def _wait_for(condition, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _start(ledger, settings, tmp_path, sleep_s: float, until_released: bool = False):
    """Claim one slow item for an agent and execute it in a thread; (thread, box, claim). With
    `until_released`, the handler works until the test creates `<marks>/release` (at most
    `sleep_s`)."""
    (agent,) = registry.form_agents([AgentSpec(name="solo")])
    registry.register([agent], settings)
    ledger.add([WorkItem(work_item_id="work_slow", priority="high", max_attempts=1)])
    claim = ledger.claim("work_slow", agent.agent_id, LEASE_S)
    marks = tmp_path / "marks"
    marks.mkdir()
    task = SwarmTask(
        id="slow", type="slow", estimated_duration_ms=100, timeout_s=30, retries=0,
        payload={"dir": str(marks), "sleep_s": sleep_s, "until_released": until_released},
    )  # fmt: skip
    assignment = Assignment(
        task_id="slow", work_item_id="work_slow", agent_id=agent.agent_id, slot=0,
        planned_start_ms=0, planned_finish_ms=1, order=0, claim_id=claim.claim_id,
    )  # fmt: skip
    box: list = []
    thread = threading.Thread(
        target=lambda: box.append(
            execute_item(
                ledger,
                settings,
                ItemJob(
                    task=task, assignment=assignment, run_id="r", lease_s=LEASE_S, handlers=HANDLERS
                ),
            )
        )
    )
    thread.start()
    started = _wait_for(lambda: (marks / "start-1").exists(), timeout_s=60)
    if not started:
        thread.join(timeout=60)
    assert started, "the handler never started"
    return thread, box, claim, marks


def _heartbeat_at(ledger) -> float:
    """When the item's lease was last renewed (0 while the test's own read meets the outage's
    leftovers: a dead pooled connection)."""
    try:
        return datetime.fromisoformat(ledger.get("work_slow").last_heartbeat).timestamp()
    except StoreUnavailable:
        return 0.0


def test_a_failed_heartbeat_is_retried_and_the_lease_kept(keeper_ledger, ledger_settings, tmp_path):
    # the handler works through the outage and until the renewal after it has been checked
    thread, box, _, marks = _start(
        keeper_ledger, ledger_settings, tmp_path, sleep_s=25, until_released=True
    )
    store_outage(keeper_ledger, ledger_settings)
    recovered = time.time()
    try:
        renewed = _wait_for(lambda: _heartbeat_at(keeper_ledger) > recovered, 4 * LEASE_S)
        if renewed:  # the lease is live: another agent cannot take the item
            with pytest.raises(CoordinationConflict):
                keeper_ledger.claim("work_slow", "agent_other", LEASE_S)
    finally:
        (marks / "release").touch()
        thread.join(timeout=60)
    assert renewed, "no heartbeat after the outage: the lease keeper stopped"
    (record,) = box
    assert record.status == "completed", record.error
    assert keeper_ledger.get("work_slow").status == "completed"


def test_a_lost_claim_stops_the_keeper_and_the_item_never_completes(
    keeper_ledger, ledger_settings, tmp_path
):
    thread, box, claim, _ = _start(keeper_ledger, ledger_settings, tmp_path, sleep_s=2.0)
    keeper_ledger.release("work_slow", claim.claim_id)  # an operator gives the item back
    taken = keeper_ledger.claim("work_slow", "agent_other", 60)
    thread.join(timeout=60)
    (record,) = box
    assert record.status == "failed" and "CoordinationConflict" in record.error
    now = keeper_ledger.get("work_slow")
    assert (now.status, now.claim_id, now.agent_id) == ("claimed", taken.claim_id, "agent_other")
