"""The claim ledger: priority order, exclusive claims across processes, leases that expire when
a claimer dies, exactly-once completion, the seed-shaped work_claims.json."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import time

import pytest

from tasks.claims import ClaimLedger, WorkItem
from tasks.errors import CoordinationConflict, InvalidInput

SEED_FIELDS = {
    "work_item_id", "agent_id", "claimed_at", "estimated_duration", "work_type", "priority",
    "description", "status", "team", "telemetry",
}  # fmt: skip


def _items(n: int, prefix: str = "w") -> list[WorkItem]:
    return [WorkItem(work_item_id=f"{prefix}{i:05d}", estimated_duration=100) for i in range(n)]


def test_claim_next_takes_the_most_urgent_pending_item(tmp_path):
    ledger = ClaimLedger(tmp_path)
    ledger.add(
        [
            WorkItem(work_item_id="low", priority="low"),
            WorkItem(work_item_id="high", priority="high"),
            WorkItem(work_item_id="critical", priority="critical"),
        ]
    )
    order = [ledger.claim_next("agent_a").work_item_id for _ in range(3)]
    assert order == ["critical", "high", "low"]
    assert ledger.claim_next("agent_a") is None


def test_only_the_holder_can_complete(tmp_path):
    ledger = ClaimLedger(tmp_path)
    ledger.add(_items(1))
    claim = ledger.claim_next("agent_a")
    with pytest.raises(CoordinationConflict, match="claim bogus on w00000 is stale"):
        ledger.complete(claim.work_item_id, "bogus", {"x": 1})
    done = ledger.complete(claim.work_item_id, claim.claim_id, {"x": 1})
    assert done.status == "completed" and done.result == {"x": 1}
    with pytest.raises(CoordinationConflict):
        ledger.complete(claim.work_item_id, claim.claim_id, {"x": 2})  # not twice


def test_expired_lease_is_reclaimed_and_the_old_holder_cannot_complete(tmp_path):
    ledger = ClaimLedger(tmp_path)
    ledger.add(_items(2))
    first = ledger.claim_next("agent_dead", lease_s=0.05)
    time.sleep(0.1)
    again = ledger.claim_next("agent_live")
    assert again.work_item_id == first.work_item_id and again.claims == 2
    with pytest.raises(CoordinationConflict):
        ledger.complete(first.work_item_id, first.claim_id, None)


def test_heartbeat_keeps_a_live_lease(tmp_path):
    ledger = ClaimLedger(tmp_path)
    ledger.add(_items(1))
    claim = ledger.claim_next("agent_a", lease_s=0.2)
    for _ in range(3):
        time.sleep(0.1)
        ledger.heartbeat(claim.work_item_id, claim.claim_id, lease_s=0.2)
    assert ledger.claim_next("agent_b") is None
    assert ledger.progress(claim.work_item_id, claim.claim_id, 40).status == "in_progress"


def test_adding_an_existing_id_adds_nothing(tmp_path):
    ledger = ClaimLedger(tmp_path)
    ledger.add(_items(2))
    with pytest.raises(InvalidInput, match="w00001"):
        ledger.add([WorkItem(work_item_id="new"), WorkItem(work_item_id="w00001")])
    with pytest.raises(InvalidInput, match="duplicate"):
        ledger.add([WorkItem(work_item_id="x"), WorkItem(work_item_id="x")])
    assert ledger.counts() == {"pending": 2}


def test_release_makes_the_item_claimable_again(tmp_path):
    ledger = ClaimLedger(tmp_path)
    ledger.add(_items(1))
    claim = ledger.claim_next("agent_a")
    assert ledger.release(claim.work_item_id, claim.claim_id).status == "pending"
    assert ledger.claim_next("agent_b").agent_id == "agent_b"


def test_snapshot_writes_seed_shaped_work_claims_json(tmp_path):
    ledger = ClaimLedger(tmp_path)
    ledger.add(_items(3))
    ledger.claim_next("agent_a")
    records = json.loads(ledger.snapshot().path.read_text())
    assert len(records) == 1  # only claimed items, like the seed file
    assert set(records[0]) >= SEED_FIELDS
    assert set(records[0]["telemetry"]) == {"trace_id", "span_id"}
    assert records[0]["agent_id"] == "agent_a" and records[0]["status"] == "claimed"


def _drain(root: str, agent: str, out) -> None:
    ledger = ClaimLedger(root)
    got = []
    while (claim := ledger.claim_next(agent)) is not None:
        got.append(claim.work_item_id)
    out.put(got)


def test_many_processes_claim_every_item_exactly_once(tmp_path):
    ClaimLedger(tmp_path).add(_items(2000))
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_drain, args=(str(tmp_path), f"agent_{i}", out)) for i in range(6)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join()
    claimed = [i for r in results for i in r]
    assert len(claimed) == 2000 and len(set(claimed)) == 2000
    assert ClaimLedger(tmp_path).counts() == {"claimed": 2000}


def _victim(root: str) -> None:
    """Claims and completes slowly with a short lease, until it is killed mid-claim."""
    ledger = ClaimLedger(root)
    while (claim := ledger.claim_next("agent_victim", lease_s=0.5)) is not None:
        time.sleep(0.05)
        ledger.complete(claim.work_item_id, claim.claim_id, {"by": "victim"})


def _worker(root: str, agent: str, out) -> None:
    ledger = ClaimLedger(root)
    done = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        claim = ledger.claim_next(agent, lease_s=0.5)
        if claim is None:
            if not ledger.counts().keys() - {"completed"}:
                break
            time.sleep(0.05)  # items still held by a (dead) claimer: wait for the lease
            continue
        ledger.complete(claim.work_item_id, claim.claim_id, {"by": agent})
        done.append(claim.work_item_id)
    out.put(done)


def test_killed_claimer_releases_after_lease(tmp_path):
    ledger = ClaimLedger(tmp_path)
    ledger.add(_items(120))
    ctx = mp.get_context("fork")
    victim = ctx.Process(target=_victim, args=(str(tmp_path),))
    victim.start()
    # mid-run: it has completed work and holds a claim (it sleeps 50 ms holding each one)
    while ledger.counts().get("completed", 0) < 5 or not ledger.list(status="claimed"):
        time.sleep(0.005)
    os.kill(victim.pid, signal.SIGKILL)
    victim.join()
    held = ledger.list(status="claimed")
    assert [c.agent_id for c in held] == ["agent_victim"]  # it died holding one claim

    out = ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(str(tmp_path), f"agent_{i}", out)) for i in (1, 2)]
    for w in workers:
        w.start()
    survivors = [i for _ in workers for i in out.get(timeout=30)]
    for w in workers:
        w.join()
    by_victim = {c.work_item_id for c in ledger.list() if c.result == {"by": "victim"}}
    assert len(survivors) == len(set(survivors))
    assert not by_victim & set(survivors)
    assert by_victim | set(survivors) == {f"w{i:05d}" for i in range(120)}
    assert ledger.counts() == {"completed": 120}
    reclaimed = ledger.get(held[0].work_item_id)
    assert reclaimed.claims == 2 and reclaimed.agent_id != "agent_victim"


def test_claim_cost_does_not_grow_with_the_number_of_claims(tmp_path):
    """Counted in SQLite VM instructions (deterministic, unlike wall time): an indexed claim
    grows at most logarithmically with the ledger, a scan would grow 20x from 400 to 8000."""

    def cost(n: int) -> int:
        ledger = ClaimLedger(tmp_path / str(n))
        ledger.add(_items(n))
        for _ in range(n - 300):  # most items already claimed
            ledger.claim_next("agent_fill")
        steps = [0]

        def count() -> int:
            steps[0] += 1
            return 0  # 0 = keep going

        ledger._handle().conn.set_progress_handler(count, 100)  # every 100 VM instructions
        for _ in range(200):
            ledger.claim_next("agent_timed")
        ledger._handle().conn.set_progress_handler(None, 100)
        return steps[0] * 100

    small, large = cost(400), cost(8000)
    assert large < 1.5 * small, f"200 claims: {small} VM steps at 400 items, {large} at 8000"
