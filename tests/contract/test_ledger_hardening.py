"""The ledger's second hardening pass, on both backends (the `ledger` fixture: SQLite and
PostgreSQL): a repeated completion is refused whole, a non-finite result is one clear error, a
completion whose log append fails still stands and is logged later, a lease that lapses counts
an attempt until the item is failed for good, a stopped lock holder cannot freeze a writer, and
every lease is finite, positive and bounded."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tasks.claims import SqliteLedger, WorkItem, open_ledger
from tasks.claims.models import LEASE_LAPSED, MAX_LEASE_S
from tasks.coordination_log import LOG_FILE, read_log
from tasks.errors import InvalidInput, LockTimeout
from tasks.swarm import agents as registry
from tasks.swarm.builtins import analysis
from tasks.swarm.execution import ItemJob, execute_item
from tasks.swarm.models import AgentSpec, Assignment, QueueSelection, SwarmRequest, SwarmTask
from tasks.swarm.queue import draining

# a process that takes an exclusive flock of argv[1], says so, and keeps it until killed
HOLDER = (
    "import fcntl, os, sys, time\n"
    "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)\n"
    "fcntl.flock(fd, fcntl.LOCK_EX)\n"
    "print('held', flush=True)\n"
    "time.sleep(600)\n"
)


def _wait_for(condition, what: str, timeout_s: float = 30.0):
    deadline = time.monotonic() + timeout_s
    while not (found := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)
    return found


def _lapse(claim) -> None:
    """Wait until `claim`'s lease is over (by the clock the lease was stamped with)."""
    ends = datetime.fromisoformat(claim.lease_expires_at)
    _wait_for(lambda: datetime.now(UTC) > ends, "the lease to lapse")


def _hold_lock(path: Path) -> subprocess.Popen:
    """A process holding `path`'s flock, returned once it observably holds it."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


def _stop(holder: subprocess.Popen) -> None:
    os.kill(holder.pid, signal.SIGSTOP)
    stat = Path(f"/proc/{holder.pid}/stat")
    _wait_for(lambda: stat.read_text().rsplit(")", 1)[1].split()[0] == "T", "a stopped holder")


def _end(holder: subprocess.Popen) -> None:
    holder.kill()
    os.kill(holder.pid, signal.SIGCONT) if holder.poll() is None else None
    holder.wait(timeout=30)


# -- 2: a repeated entry in complete_many ----------------------------------------------------------
def test_complete_many_refuses_a_repeated_item_and_completes_nothing(ledger):
    ledger.add(
        [
            WorkItem(work_item_id="a"),
            WorkItem(work_item_id="b"),
            WorkItem(work_item_id="after", dependencies=["a", "b"]),
        ]
    )
    a, b = ledger.claim("a", "agent_1"), ledger.claim("b", "agent_1")
    with pytest.raises(InvalidInput, match=r"\['a'\] more than once"):
        ledger.complete_many([(a.work_item_id, a.claim_id, 1), (a.work_item_id, a.claim_id, 2)])
    assert ledger.statuses(["a", "b", "after"]) == {
        "a": "claimed", "b": "claimed", "after": "pending"
    }  # fmt: skip
    ledger.complete(a.work_item_id, a.claim_id, 1)
    # "after" still waits on b: a repeat must not have counted a twice
    assert ledger.claim_next("agent_2") is None
    ledger.complete(b.work_item_id, b.claim_id, 2)
    assert ledger.claim_next("agent_2").work_item_id == "after"


# -- 3: NaN and Infinity ---------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_a_non_finite_result_is_one_clear_error_and_the_item_stays_held(ledger, bad):
    ledger.add([WorkItem(work_item_id="w")])
    claim = ledger.claim_next("agent_1")
    with pytest.raises(InvalidInput, match=r"result\.stats\[1\]"):
        ledger.complete("w", claim.claim_id, {"stats": [1.0, bad]})
    assert ledger.get("w").status == "claimed"
    assert ledger.complete("w", claim.claim_id, {"stats": [1.0, None]}).result == {
        "stats": [1.0, None]
    }


def test_the_builtin_analysis_of_huge_values_completes_on_both_backends(ledger):
    ledger.add([WorkItem(work_item_id="huge")])
    claim = ledger.claim_next("agent_1")
    result = analysis({"task_id": "huge", "payload": {"values": [1e308, 1e308, 1e308]}})
    assert (result["mean"], result["std"], result["median"]) == (1e308, 0.0, 1e308)
    done = ledger.complete("huge", claim.claim_id, result)
    assert done.status == "completed" and float(done.result["mean"]) == 1e308  # JSONB: numeric


def test_the_builtin_analysis_names_a_statistic_beyond_a_float_as_null():
    result = analysis({"task_id": "wide", "payload": {"values": [-1.7e308, 1.7e308]}})
    assert result["trend_per_sample"] is None and result["non_finite"] == ["trend_per_sample"]
    assert result["mean"] == 0.0
    json.dumps(result, allow_nan=False)  # JSON as both backends store it


# -- 4: a log append that fails after the commit ---------------------------------------------------
def test_a_completion_whose_log_append_fails_stands_and_is_logged_later(ledger_settings):
    settings = ledger_settings
    where = settings.coordination_dir
    if settings.database_dsn:
        ledger = open_ledger(settings)
    else:  # the log's lock held by another process makes the append time out
        ledger = SqliteLedger(where, busy_timeout_s=0.3)
    with ledger:
        ledger.add([WorkItem(work_item_id="w")])
        claim = ledger.claim_next("agent_1")
        entry = {"work_item_id": "w", "result": 7, "idempotency_key": "swarm:run:w"}
        where.mkdir(parents=True, exist_ok=True)  # PostgreSQL keeps no file there
        holder = _hold_lock(where / f"{LOG_FILE}.lock")
        try:
            done = ledger.complete("w", claim.claim_id, 7, log_entry=entry)
            assert (done.status, ledger.get("w").status) == ("completed", "completed")
        finally:
            _end(holder)
        if not settings.database_dsn:
            assert [e for e in read_log(settings) if e["work_item_id"] == "w"] == []
    with open_ledger(settings):  # opening the ledger appends what waited
        pass
    logged = [e for e in read_log(settings) if e["work_item_id"] == "w"]
    assert [(e["result"], e["idempotency_key"]) for e in logged] == [(7, "swarm:run:w")]
    with open_ledger(settings) as again:
        assert again.flush_log() == 0  # nothing waits any more


# -- 5: a lease that lapses counts an attempt ------------------------------------------------------
@pytest.mark.parametrize("how", ["claim_next", "take"])
def test_lapsed_leases_count_attempts_until_the_item_fails_for_good(ledger, how):
    ledger.add(
        [
            WorkItem(work_item_id="poison", max_attempts=2),
            WorkItem(work_item_id="after", dependencies=["poison"]),
        ]
    )

    def grab(agent: str):
        if how == "take":
            got = ledger.take(agent, 1, lease_s=0.2)
            return got[0] if got else None
        return ledger.claim_next(agent, lease_s=0.2)

    first = grab("agent_dies_1")
    _lapse(first)
    second = grab("agent_dies_2")
    assert (second.work_item_id, second.attempts) == ("poison", 1)
    assert second.last_error.startswith(LEASE_LAPSED) and "agent_dies_1" in second.last_error
    _lapse(second)
    assert grab("agent_3") is None  # out of attempts: failed for good, never handed out again
    dead = ledger.get("poison")
    assert (dead.status, dead.attempts) == ("failed", 2)
    assert first.claim_id not in dead.last_error and "agent_dies_2" in dead.last_error
    assert dead.result == {"error": dead.last_error}
    assert [c.work_item_id for c in ledger.list("failed")] == ["poison"]
    assert ledger.blocked() == {"after": ["poison"]}


def test_claiming_a_lapsed_item_at_its_last_attempt_by_id_is_refused(ledger):
    ledger.add([WorkItem(work_item_id="poison", max_attempts=1)])
    held = ledger.claim("poison", "agent_dies", lease_s=0.2)
    _lapse(held)
    with pytest.raises(Exception, match="poison is failed"):
        ledger.claim("poison", "agent_2")
    assert ledger.get("poison").status == "failed"


def test_a_live_lease_claimed_again_by_its_holder_counts_no_attempt(ledger):
    ledger.add([WorkItem(work_item_id="w", max_attempts=1)])
    ledger.claim("w", "agent_1")
    again = ledger.claim("w", "agent_1")
    assert (again.status, again.attempts, again.claims) == ("claimed", 0, 2)


# -- 6: a stopped holder of the SQLite write lock --------------------------------------------------
def _open_at_once(directory: str, barrier, outcomes) -> None:
    barrier.wait()
    try:
        with SqliteLedger(directory) as ledger:
            ledger.counts()
        outcomes.put("opened")
    except Exception as exc:
        outcomes.put(repr(exc))


def test_processes_opening_a_new_sqlite_ledger_at_once_all_open_it(tmp_path):
    # each switches the new file to WAL; SQLite answered some of them BUSY at once (about 1
    # opener in 16 before the retry: 20 rounds of 4 miss it about 1 time in 170)
    context = multiprocessing.get_context("fork")
    outcomes = context.Queue()
    for n in range(20):
        barrier = context.Barrier(4)
        openers = [
            context.Process(target=_open_at_once, args=(str(tmp_path / str(n)), barrier, outcomes))
            for _ in range(4)
        ]
        for opener in openers:
            opener.start()
        got = [outcomes.get(timeout=60) for _ in openers]
        for opener in openers:
            opener.join()
        assert got == ["opened"] * 4, got


def test_a_writer_behind_a_stopped_lock_holder_fails_with_lock_timeout(tmp_path):
    with SqliteLedger(tmp_path, busy_timeout_s=0.5) as ledger:
        ledger.add([WorkItem(work_item_id="w")])
        holder = _hold_lock(ledger.path.with_name(ledger.path.name + ".lock"))
        try:
            _stop(holder)
            outcome: list[BaseException | object] = []

            def write() -> None:
                try:
                    outcome.append(ledger.claim_next("agent_1"))
                except BaseException as exc:
                    outcome.append(exc)

            writer = threading.Thread(target=write, daemon=True)
            writer.start()
            writer.join(60)
            assert outcome, "the writer still waits behind the stopped holder"
            (error,) = outcome
            assert isinstance(error, LockTimeout) and f"{ledger.path}.lock" in str(error)
        finally:
            _end(holder)
        assert ledger.get("w").status == "pending"  # nothing was changed
        assert ledger.claim_next("agent_1").work_item_id == "w"  # the lock is usable again


# -- 7: leases are finite, positive and bounded ----------------------------------------------------
BAD_LEASES = [math.nan, math.inf, -1.0, 0.0, MAX_LEASE_S + 1]


@pytest.mark.parametrize("lease_s", BAD_LEASES)
def test_every_claiming_entry_point_refuses_a_bad_lease(ledger, lease_s):
    ledger.add([WorkItem(work_item_id="w")])
    attempts = [
        lambda: ledger.claim_next("agent_1", lease_s),
        lambda: ledger.claim_many("agent_1", 2, lease_s),
        lambda: ledger.claim("w", "agent_1", lease_s),
        lambda: ledger.take("run_1", 5, lease_s=lease_s),
    ]
    for attempt in attempts:
        with pytest.raises(InvalidInput, match="lease_s must be a finite number"):
            attempt()
    assert ledger.get("w").status == "pending"


@pytest.mark.parametrize("lease_s", BAD_LEASES)
def test_every_holder_operation_refuses_a_bad_lease(ledger, lease_s):
    ledger.add([WorkItem(work_item_id="w")])
    claim = ledger.claim_next("agent_1", 60)
    attempts = [
        lambda: ledger.heartbeat("w", claim.claim_id, lease_s),
        lambda: ledger.resume_claim("w", claim.claim_id, lease_s),
        lambda: ledger.progress("w", claim.claim_id, 50, lease_s),
    ]
    for attempt in attempts:
        with pytest.raises(InvalidInput, match="lease_s must be a finite number"):
            attempt()
    assert ledger.get("w").lease_expires_at == claim.lease_expires_at


@pytest.mark.parametrize("limit", [-1, 0])
def test_a_listing_limit_below_one_is_one_clear_error(ledger, limit):
    with pytest.raises(InvalidInput, match="limit must be a positive whole number"):
        ledger.list(limit=limit)


def test_an_estimated_duration_beyond_30_days_is_refused(ledger):
    with pytest.raises(InvalidInput, match="estimated_duration"):
        ledger.add([{"work_item_id": "w", "estimated_duration": 99999999999999999999}])
    assert ledger.counts() == {}


# -- 3 and 4 through an execution: the record follows the ledger ---------------------------------
def _execute(ledger, settings, task: SwarmTask):
    (agent,) = registry.form_agents([AgentSpec(name="solo")])
    registry.register([agent], settings)
    ledger.add([WorkItem(work_item_id=f"work_{task.id}", max_attempts=1)])
    claim = ledger.claim(f"work_{task.id}", agent.agent_id)
    assignment = Assignment(
        task_id=task.id, work_item_id=claim.work_item_id, agent_id=agent.agent_id, slot=0,
        planned_start_ms=0, planned_finish_ms=1, order=0, claim_id=claim.claim_id,
    )  # fmt: skip
    return execute_item(
        ledger, settings, ItemJob(task=task, assignment=assignment, run_id="run1", lease_s=30)
    )


def test_an_analysis_of_huge_values_executes_and_completes_on_both_backends(
    ledger, ledger_settings
):
    task = SwarmTask(
        id="huge", type="analysis", estimated_duration_ms=10, payload={"values": [1e308] * 3}
    )
    record = _execute(ledger, ledger_settings, task)
    assert record.status == "completed", record.error
    assert ledger.get("work_huge").status == "completed"


def test_an_execution_whose_log_append_fails_is_recorded_completed_as_the_ledger_says(
    ledger_settings,
):
    settings = ledger_settings
    settings.coordination_dir.mkdir(parents=True, exist_ok=True)
    if settings.database_dsn:
        ledger = open_ledger(settings)
    else:
        ledger = SqliteLedger(settings.coordination_dir, busy_timeout_s=0.3)
    task = SwarmTask(id="t", type="analysis", estimated_duration_ms=10, payload={"values": [1]})
    with ledger:
        holder = _hold_lock(settings.coordination_dir / f"{LOG_FILE}.lock")
        try:
            record = _execute(ledger, settings, task)
        finally:
            _end(holder)
        assert (record.status, ledger.get("work_t").status) == ("completed", "completed")
        ledger.flush_log()
    (entry,) = [e for e in read_log(settings) if e["work_item_id"] == "work_t"]
    assert entry["result"] == record.result


def test_a_drain_summary_counts_the_items_failed_for_good_by_lapsed_leases(ledger):
    ledger.add([WorkItem(work_item_id="poison", max_attempts=1), WorkItem(work_item_id="fine")])
    _lapse(ledger.claim("poison", "agent_dies", lease_s=0.2))
    batch = draining.take(ledger, SwarmRequest(queue=QueueSelection(limit=5)), "run-1")
    assert list(batch.claims) == ["fine"]  # the dead letter is not handed out
    ledger.complete("fine", batch.claims["fine"], None)
    summary = draining.summarize(ledger, batch, [])
    assert (summary.completed, summary.dead_letters) == (1, 1)
