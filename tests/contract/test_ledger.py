"""The ledger contract, run on both backends (the `ledger` fixture: SQLite and PostgreSQL):
exclusive claims across processes, leases that expire when a claimer dies, fencing tokens,
priorities, dependencies, bounded attempts, drain-run takes, the classic work_claims.json
snapshot, and one clear error for a store that cannot be used."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

import pytest

from tasks.claims import SEED_FIELDS, WorkItem, open_ledger
from tasks.errors import CoordinationConflict, CorruptStore, InvalidInput, StoreUnavailable
from tasks.settings import Settings
from tasks.tracing import format_span_id, format_trace_id
from tests.contract import workers
from tests.contract.helpers import _items, _join, _where
from tests.forkserver import forkserver
from tests.waiting import passed, wait_until


@pytest.fixture(scope="module")
def ctx():
    # one fork server for the module's process tests (starting one costs an interpreter)
    with forkserver("tests.contract.workers") as context:
        yield context


# -- exclusivity ---------------------------------------------------------------------------------
def test_eight_processes_claim_every_item_exactly_once(ctx, ledger, ledger_settings):
    ledger.add(_items(400))
    start, out = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(
            target=workers.drain,
            args=(_where(ledger_settings), f"agent_{i}", 1 if i % 2 else 5, start, out),
        )
        for i in range(8)
    ]
    for p in procs:
        p.start()
    start.set()
    results = [out.get(timeout=120) for _ in procs]
    _join(procs)
    claimed = Counter(wid for _, got in results for wid, _ in got)
    assert sum(c - 1 for c in claimed.values()) == 0  # no duplicates
    assert set(claimed) == {f"w{i:05d}" for i in range(400)}  # none lost
    assert ledger.counts() == {"completed": 400}
    by = {c.work_item_id: c.result["by"] for c in ledger.list()}
    assert all(by[wid] == agent for agent, got in results for wid, _ in got)


# -- leases ----------------------------------------------------------------------------------------
def _claimed_by_a_killed_process(ctx, ledger, ledger_settings, lease_s: float):
    """The claim a child process took (lease `lease_s`) before it was SIGKILLed."""
    victim = ctx.Process(target=workers.hold_until_killed, args=(_where(ledger_settings), lease_s))
    victim.start()
    deadline = time.monotonic() + 60
    while not (held := ledger.list(status="claimed")):
        assert time.monotonic() < deadline, "the victim never claimed"
        time.sleep(0.02)
    os.kill(victim.pid, signal.SIGKILL)
    victim.join()
    (dead,) = held
    return dead


def test_killed_claimer_releases_after_lease(ctx, ledger, ledger_settings):
    ledger.add(_items(3))
    dead = _claimed_by_a_killed_process(ctx, ledger, ledger_settings, lease_s=2.0)
    assert dead.agent_id == "agent_victim"
    # its lease is live: the survivor gets the other items first, then the dead one's
    got = [ledger.claim_next("agent_live").work_item_id for _ in range(2)]
    assert dead.work_item_id not in got and ledger.claim_next("agent_live") is None
    wait_until("the dead holder's lease to end", lambda: passed(dead.lease_expires_at), 10)
    again = ledger.claim_next("agent_live")
    assert again.work_item_id == dead.work_item_id and again.claims == 2
    with pytest.raises(CoordinationConflict, match="stale"):
        ledger.complete(dead.work_item_id, dead.claim_id, {"by": "victim"})
    assert ledger.complete(again.work_item_id, again.claim_id, None).status == "completed"


def test_heartbeat_keeps_a_live_lease(ledger):
    ledger.add(_items(1))
    claim = ledger.claim_next("agent_a", lease_s=0.3)
    for _ in range(3):
        time.sleep(0.15)
        ledger.heartbeat(claim.work_item_id, claim.claim_id, lease_s=0.3)
    assert ledger.claim_next("agent_b") is None
    assert ledger.progress(claim.work_item_id, claim.claim_id, 40).status == "in_progress"


def test_expired_lease_is_claimed_before_pending_items(ledger):
    ledger.add([WorkItem(work_item_id="first"), WorkItem(work_item_id="urgent", priority="high")])
    lapsed = ledger.claim("first", "agent_dead", lease_s=0.05)
    time.sleep(0.1)
    assert ledger.claim_next("agent_b").work_item_id == lapsed.work_item_id


# -- resuming a dead attempt's claims ------------------------------------------------------------
def test_resume_claim_takes_back_a_killed_holders_claim_at_once_under_its_token(
    ctx, ledger, ledger_settings
):
    ledger.add(_items(1))
    dead = _claimed_by_a_killed_process(ctx, ledger, ledger_settings, lease_s=60.0)
    assert ledger.claim_next("agent_other") is None  # its 60 s lease is live for anyone else
    back = ledger.resume_claim(dead.work_item_id, dead.claim_id, lease_s=30)
    assert (back.status, back.agent_id, back.claim_id) == ("claimed", "agent_victim", dead.claim_id)
    assert back.claims == 1  # taken back, not re-claimed: no new token
    assert ledger.complete(dead.work_item_id, dead.claim_id, "resumed").status == "completed"


def test_resume_claim_renews_an_expired_lease_nobody_took(ledger):
    ledger.add(_items(1))
    old = ledger.claim("w00000", "agent_a", lease_s=0.05)
    time.sleep(0.1)
    back = ledger.resume_claim("w00000", old.claim_id, lease_s=30)
    renewed = datetime.fromisoformat(back.lease_expires_at)
    assert back.claim_id == old.claim_id and renewed > datetime.fromisoformat(old.lease_expires_at)
    assert ledger.claim_next("agent_b") is None  # held again: not claimable by others


def test_resume_claim_returns_an_item_finished_under_its_token_as_it_is(ledger):
    ledger.add([*_items(1), WorkItem(work_item_id="once", max_attempts=1)])
    done = ledger.claim("w00000", "agent_a")
    ledger.complete("w00000", done.claim_id, {"answer": 42})
    failed = ledger.claim("once", "agent_a")
    assert ledger.fail("once", failed.claim_id, "boom").status == "failed"  # for good
    back = ledger.resume_claim("w00000", done.claim_id)
    assert (back.status, back.result) == ("completed", {"answer": 42})
    assert ledger.resume_claim("once", failed.claim_id).status == "failed"


def test_resume_claim_refuses_a_claim_lost_to_another_holder_naming_it(ledger):
    ledger.add(_items(2))
    old = ledger.claim("w00000", "agent_a", lease_s=0.05)
    time.sleep(0.1)
    new = ledger.claim_next("agent_b")
    assert new.work_item_id == "w00000"
    with pytest.raises(
        CoordinationConflict,
        match=f"cannot resume claim {old.claim_id} on w00000: the item is claimed under claim "
        f"{new.claim_id} by agent_b",
    ):
        ledger.resume_claim("w00000", old.claim_id)
    given_back = ledger.claim("w00001", "agent_a")
    ledger.release("w00001", given_back.claim_id)
    with pytest.raises(CoordinationConflict, match="the item is pending"):
        ledger.resume_claim("w00001", given_back.claim_id)
    ledger.complete("w00000", new.claim_id, None)
    with pytest.raises(CoordinationConflict, match=f"completed under claim {new.claim_id}"):
        ledger.resume_claim("w00000", old.claim_id)


def test_holdings_lists_what_holders_hold_or_finished_but_not_what_they_gave_back(ledger):
    ledger.add(_items(6))
    taken = ledger.take("run_1", 3)  # a drain run's take: w00000-w00002
    ledger.assign("w00001", taken[1].claim_id, "agent_a")
    ledger.complete("w00002", taken[2].claim_id, "done")
    released = ledger.claim("w00003", "agent_a")
    ledger.release("w00003", released.claim_id)
    ledger.claim("w00004", "agent_b")
    ledger.claim("w00005", "agent_other")
    got = ledger.holdings(["run_1", "agent_a", "agent_b"])
    assert [(c.work_item_id, c.agent_id, c.status) for c in got] == [
        ("w00000", "run_1", "claimed"),
        ("w00001", "agent_a", "claimed"),
        ("w00002", "run_1", "completed"),
        ("w00004", "agent_b", "claimed"),
    ]
    assert got[1].claim_id == taken[1].claim_id and ledger.holdings([]) == []


# -- fencing ---------------------------------------------------------------------------------------
def test_stale_token_is_rejected_after_a_reclaim_by_the_same_agent(ledger):
    ledger.add(_items(1))
    old = ledger.claim_next("agent_a", lease_s=0.05)
    time.sleep(0.1)
    new = ledger.claim_next("agent_a")  # the same agent re-claims the lapsed item
    assert new.work_item_id == old.work_item_id and new.claim_id != old.claim_id
    wid = old.work_item_id
    for stale in (
        lambda: ledger.complete(wid, old.claim_id, "late"),
        lambda: ledger.fail(wid, old.claim_id, "late"),
        lambda: ledger.heartbeat(wid, old.claim_id),
        lambda: ledger.progress(wid, old.claim_id, 50),
        lambda: ledger.release(wid, old.claim_id),
        lambda: ledger.assign(wid, old.claim_id, "agent_b"),
    ):
        with pytest.raises(CoordinationConflict, match=f"claim {old.claim_id} on {wid} is stale"):
            stale()
    assert ledger.complete(wid, new.claim_id, "on time").result == "on time"


def test_claiming_a_held_item_again_makes_the_old_token_stale(ledger):
    ledger.add(_items(1))
    first = ledger.claim("w00000", "agent_a")
    with pytest.raises(CoordinationConflict, match="claimed by agent_a"):
        ledger.claim("w00000", "agent_b")  # someone else's live lease
    second = ledger.claim("w00000", "agent_a")
    with pytest.raises(CoordinationConflict, match="stale"):
        ledger.complete("w00000", first.claim_id)
    assert ledger.complete("w00000", second.claim_id).status == "completed"
    with pytest.raises(CoordinationConflict):
        ledger.complete("w00000", second.claim_id)  # not twice


def test_complete_many_is_all_or_nothing(ledger):
    ledger.add(_items(3))
    a, b, c = ledger.claim_many("agent_a", 3)
    ledger.release(c.work_item_id, c.claim_id)
    with pytest.raises(CoordinationConflict, match=c.work_item_id):
        ledger.complete_many([(x.work_item_id, x.claim_id, None) for x in (a, b, c)])
    assert ledger.counts() == {"claimed": 2, "pending": 1}
    done = ledger.complete_many([(x.work_item_id, x.claim_id, x.work_item_id) for x in (a, b)])
    assert [d.result for d in done] == [a.work_item_id, b.work_item_id]


# -- priorities ------------------------------------------------------------------------------------
def test_claim_next_takes_the_most_urgent_pending_item(ledger):
    ledger.add(
        [
            WorkItem(work_item_id="low", priority="low"),
            WorkItem(work_item_id="high-1", priority="high"),
            WorkItem(work_item_id="critical", priority="critical"),
            WorkItem(work_item_id="high-2", priority="high"),
        ]
    )
    order = [ledger.claim_next("agent_a").work_item_id for _ in range(4)]
    assert order == ["critical", "high-1", "high-2", "low"]
    assert ledger.claim_next("agent_a") is None


def test_claim_many_claims_in_claim_next_order_with_one_token_each(ledger):
    ledger.add([*_items(3, priority="low"), WorkItem(work_item_id="top", priority="critical")])
    got = ledger.claim_many("agent_a", 3)
    assert [c.work_item_id for c in got] == ["top", "w00000", "w00001"]
    assert len({c.claim_id for c in got}) == 3 and all(c.agent_id == "agent_a" for c in got)


# -- dependencies and validation -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ([{"work_item_id": "a", "dependencies": ["ghost"]}], "'a' depends on unknown work item"),
        (
            [
                {"work_item_id": "a", "dependencies": ["c"]},
                {"work_item_id": "b", "dependencies": ["a"]},
                {"work_item_id": "c", "dependencies": ["b"]},
            ],
            "work item cycle: a -> c -> b -> a",
        ),
        ([{"work_item_id": "x"}, {"work_item_id": "x"}], "duplicate work_item_id in the batch"),
        ([{"work_item_id": "x"}, {"work_item_id": "old"}], "already in the ledger: \\['old'\\]"),
        ([{"work_item_id": "x", "payload": [1, 2]}], "payload: Input should be a valid dict"),
        ([{"work_item_id": "x", "payload": {"f": float("nan")}}], "payload must be a JSON object"),
    ],
    ids=["unknown", "cycle", "duplicate-in-batch", "duplicate-in-ledger", "list", "nan"],
)
def test_invalid_batch_is_one_clear_error_and_adds_nothing(ledger, batch, message):
    ledger.add([WorkItem(work_item_id="old")])
    with pytest.raises(InvalidInput, match=message) as info:
        ledger.add(batch)
    assert "\n" not in str(info.value)
    assert [c.work_item_id for c in ledger.list()] == ["old"]


def test_dependent_is_claimable_only_once_its_dependencies_completed(ledger):
    ledger.add([WorkItem(work_item_id="base", priority="low")])
    ledger.add(
        [
            WorkItem(work_item_id="mid", priority="critical", dependencies=["base"]),
            WorkItem(work_item_id="top", priority="critical", dependencies=["mid", "base"]),
        ]
    )
    base = ledger.claim_next("agent_a")
    assert base.work_item_id == "base" and ledger.claim_next("agent_a") is None
    ledger.complete("base", base.claim_id)
    mid = ledger.claim_next("agent_a")
    assert mid.work_item_id == "mid" and ledger.claim_next("agent_a") is None
    ledger.complete("mid", mid.claim_id)
    assert ledger.claim_next("agent_a").work_item_id == "top"


def test_failed_attempts_return_the_item_until_max_attempts(ledger):
    ledger.add([WorkItem(work_item_id="flaky", max_attempts=2)])
    ledger.add([WorkItem(work_item_id="after", dependencies=["flaky"])])
    first = ledger.claim_next("agent_a")
    again = ledger.fail("flaky", first.claim_id, "boom 1")
    assert (again.status, again.attempts, again.last_error) == ("pending", 1, "boom 1")
    assert again.claim_id is None and ledger.blocked() == {}
    second = ledger.claim_next("agent_b")
    final = ledger.fail("flaky", second.claim_id, "boom 2")
    assert (final.status, final.attempts, final.last_error) == ("failed", 2, "boom 2")
    assert ledger.claim_next("agent_c") is None  # not retried for ever, dependent not runnable
    assert ledger.blocked() == {"after": ["flaky"]}


# -- drain runs: take / assign ---------------------------------------------------------------------
def test_take_selects_items_closed_under_dependencies_in_priority_order(ledger):
    ledger.add(
        [
            WorkItem(work_item_id="done", priority="low"),
            WorkItem(work_item_id="base", priority="low", work_type="spr.batch"),
            WorkItem(work_item_id="other", priority="medium"),
        ]
    )
    ledger.complete("done", ledger.claim("done", "agent_a").claim_id)
    ledger.add(
        [
            WorkItem(work_item_id="report", priority="critical", dependencies=["base", "done"]),
            WorkItem(work_item_id="orphan", priority="high", dependencies=["held"]),
            WorkItem(work_item_id="held", priority="low"),
        ]
    )
    ledger.claim("held", "agent_busy")
    taken = ledger.take("run_1", limit=3)
    assert [c.work_item_id for c in taken] == ["base", "report", "other"]
    assert {c.agent_id for c in taken} == {"run_1"} and len({c.claim_id for c in taken}) == 3
    assert ledger.take("run_2", limit=5) == []  # orphan waits on an item someone holds


def test_take_filters_by_type_and_priority(ledger):
    ledger.add(
        [
            WorkItem(work_item_id="a", work_type="trace.check", priority="high"),
            WorkItem(work_item_id="b", work_type="trace.check", priority="low"),
            WorkItem(work_item_id="c", work_type="spr.batch", priority="critical"),
            WorkItem(work_item_id="d", work_type="trace.check", dependencies=["c"]),
        ]
    )
    got = ledger.take("run_1", 10, types=["trace.check"], priority_at_least="medium")
    assert [c.work_item_id for c in got] == ["a"]  # d waits on c, which is not selected


def test_assign_hands_a_taken_claim_to_an_agent_keeping_its_token(ledger):
    ledger.add(_items(1))
    (taken,) = ledger.take("run_1", 1)
    mine = ledger.assign(taken.work_item_id, taken.claim_id, "agent_7")
    assert mine.agent_id == "agent_7" and mine.claim_id == taken.claim_id
    assert ledger.complete(taken.work_item_id, taken.claim_id).agent_id == "agent_7"


def test_two_concurrent_takes_never_share_an_item(ctx, ledger, ledger_settings):
    # 200 items in chains of 4 (each depends on the one before), spread over priorities
    chain = ["critical", "high", "medium", "low"]
    ledger.add(
        WorkItem(
            work_item_id=f"w{i:03d}",
            priority=chain[(i // 4) % 4],
            dependencies=[f"w{i - 1:03d}"] if i % 4 else [],
        )
        for i in range(200)
    )
    start, out = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(
            target=workers.take_and_complete,
            args=(_where(ledger_settings), f"run_{n}", 30, start, out),
        )
        for n in range(2)
    ]
    for p in procs:
        p.start()
    start.set()
    results = [out.get(timeout=120) for _ in procs]
    _join(procs)
    executed = Counter(wid for _, got in results for wid in got)
    assert max(executed.values()) == 1 and len(executed) == 200
    assert ledger.counts() == {"completed": 200} and ledger.queue_depth() == 0


def test_queue_depth_and_oldest_pending_age(ledger):
    assert ledger.queue_depth() == 0 and ledger.oldest_pending_age_s() is None
    ledger.add(_items(3))
    time.sleep(0.05)
    ledger.claim_next("agent_a")
    assert ledger.queue_depth() == 2
    assert 0.05 <= ledger.oldest_pending_age_s() < 60
    assert ledger.counts() == {"pending": 2, "claimed": 1}


def test_release_makes_the_item_claimable_again(ledger):
    ledger.add(_items(1))
    claim = ledger.claim_next("agent_a")
    released = ledger.release(claim.work_item_id, claim.claim_id)
    assert released.status == "pending" and released.attempts == 0
    assert ledger.claim_next("agent_b").agent_id == "agent_b"


# -- the classic snapshot --------------------------------------------------------------------------
def test_snapshot_writes_seed_shaped_work_claims_json(ledger):
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    ledger.add(_items(3, estimated_duration=250, description="look"))
    with TracerProvider().get_tracer("t").start_as_current_span("claiming"):
        span = trace.get_current_span().get_span_context()
        ledger.claim_next("agent_a")
    snap = ledger.snapshot()
    records = json.loads(snap.path.read_text())
    assert snap.path == ledger.coordination_dir / "work_claims.json" and snap.records == 1
    (record,) = records  # only claimed items, like the original file
    assert list(record)[: len(SEED_FIELDS)] == list(SEED_FIELDS)
    assert record["telemetry"] == {
        "trace_id": format_trace_id(span.trace_id),
        "span_id": format_span_id(span.span_id),
    }
    assert (record["agent_id"], record["status"], record["estimated_duration"]) == (
        "agent_a", "claimed", 250,
    )  # fmt: skip
    assert record["work_type"] == "analysis" and record["team"] == "swarm"


# -- a store that cannot be used -------------------------------------------------------------------
def test_corrupt_or_unreachable_store_is_one_clear_error(ledger_settings, tmp_path):
    if ledger_settings.database_dsn is None:
        path = ledger_settings.coordination_dir / "claims.sqlite3"
        path.parent.mkdir(parents=True)
        path.write_bytes(b"this is not a database\n" * 100)
        with pytest.raises(CorruptStore) as info:
            open_ledger(ledger_settings)
        assert str(path) in str(info.value) and "move it aside" in str(info.value)
        assert path.read_bytes() == b"this is not a database\n" * 100  # never rewritten
    else:
        from tasks.net import free_port

        parts = urlsplit(ledger_settings.database_dsn)
        dead = parts._replace(netloc=f"reactor:s3cret-pw-123@127.0.0.1:{free_port()}")
        settings = Settings(
            coordination_dir=ledger_settings.coordination_dir, database_url=urlunsplit(dead)
        )
        with pytest.raises(StoreUnavailable) as info:
            open_ledger(settings)
        message = str(info.value)
        assert f"postgresql://127.0.0.1:{dead.port}/{parts.path.lstrip('/')}" in message
        assert "s3cret-pw-123" not in message and "reactor:" not in message
        assert "\n" not in message
