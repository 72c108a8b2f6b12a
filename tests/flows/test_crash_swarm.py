"""A swarm run SIGKILLed at three points of its own progress (inline and drain runs), resumed
under the same flow-run id: items the ledger has completed under the run's claims are not run
again (counted from the handler's own records), the dead attempt's claims are taken back under
their tokens and its agents kept, the coordination log and the datasets have each item once, and
nothing is left held or active. And a killed drain that is never resumed: after its lease and
heartbeat timeout the next run marks its agents dead, takes its claims back from the queue and
finishes the work."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from flows.swarm_coordination import swarm_coordination
from tasks import agent_registry
from tasks.claims import DB_FILE, HELD, SqliteLedger
from tasks.coordination_log import read_log
from tasks.export import dataset_folder, read_export
from tasks.jsonl import read_jsonl
from tasks.swarm.claiming import work_item_id
from tasks.swarm.models import SwarmRequest
from tasks.swarm.queue.enqueue import enqueue
from tasks.worktree.process import wait_exited
from tests.crash import Killed, resume, run_and_kill
from tests.waiting import passed, wait_until

# a spawned Prefect process starts in ~10-30 s on loaded shared cores; the kill tests wait for it
pytestmark = pytest.mark.timeout(600)

ENTRY = "flows.swarm_coordination:swarm_coordination"
HANDLERS = {"crash.record": {"kind": "python", "target": "tests.flows.two_host_handler:record"}}
ITEMS = 12
AGENTS = [{"name": f"agent-{i}"} for i in range(1, 4)]


def payload(log: Path, item: str, sleep_s: float) -> dict:
    return {"item": item, "log": str(log), "sleep_s": sleep_s}


def inline_request(log: Path, sleep_s: float = 0.3) -> SwarmRequest:
    """ITEMS tasks, each after the one 3 before it (so the last one runs after all others)."""
    tasks = [
        {
            "id": f"t{i:02d}",
            "type": "crash.record",
            "estimated_duration_ms": sleep_s * 1000,
            "payload": payload(log, f"t{i:02d}", sleep_s),
            "dependencies": [f"t{i - 3:02d}"] if i >= 3 else [],
            "retries": 0,
        }
        for i in range(ITEMS)
    ]
    return SwarmRequest.model_validate(
        {"tasks": tasks, "agents": AGENTS, "handlers": HANDLERS, "min_success_rate": 1.0}
    )


def drain_request(**fields) -> SwarmRequest:
    return SwarmRequest.model_validate(
        {"queue": {"limit": 100}, "agents": AGENTS, "handlers": HANDLERS, **fields}
    )


def enqueue_items(settings, log: Path, sleep_s: float = 0.3) -> list[str]:
    ids = [f"q{i:02d}" for i in range(ITEMS)]
    enqueue(
        [
            {"work_item_id": w, "work_type": "crash.record", "payload": payload(log, w, sleep_s)}
            for w in ids
        ],
        settings,
    )
    return ids


def ended(log: Path) -> Counter:
    """item -> how many executions the handler finished: its own records."""
    return Counter(r["item"] for r in read_jsonl(log) if r["event"] == "end")


def started_after(log: Path, offset: int) -> Counter:
    """item -> executions the handler started after its first `offset` records."""
    return Counter(r["item"] for r in read_jsonl(log)[offset:] if r["event"] == "start")


def claimed_any(settings) -> bool:
    if not (settings.coordination_dir / DB_FILE).exists():
        return False
    with SqliteLedger(settings.coordination_dir) as ledger:
        return any(c.claims for c in ledger.list())


def exported(settings) -> list[Path]:
    """Dataset files written (the export step had begun)."""
    root = settings.exports_dir
    return [p for p in root.rglob("*.*") if p.is_file() and "_staging" not in p.parts]


def settle(killed: Killed) -> None:
    """The kill left the handler pool's workers orphaned: they end by themselves (an execution
    in flight still writes its record) — none is left behind."""
    alive = wait_exited(killed.orphans, 15)  # a zombie init has not reaped yet has ended
    for p in alive:
        p.kill()
    assert not alive, f"orphaned processes left running after the kill: {alive}"


def lapsed(settings, held) -> bool:
    """The leases of `held` have expired and every active agent's heartbeat has timed out, by
    their own records."""
    agents = [r for r in agent_registry.agents(settings) if r["status"] == "active"]
    return all(passed(c.lease_expires_at) for c in held) and all(
        passed(r["last_heartbeat"], r.get("heartbeat_timeout_s", 0)) for r in agents
    )


def completed_items(settings, ids: list[str]) -> set[str]:
    with SqliteLedger(settings.coordination_dir) as ledger:
        return {w for w, s in ledger.statuses(ids).items() if s == "completed"}


def read_dataset(settings, name: str, run_id: str) -> pd.DataFrame:
    files = sorted(dataset_folder(settings.exports_dir, name, "jsonl").rglob(f"{run_id}.jsonl"))
    assert len(files) == 1, f"{name}: {files}"
    return read_export(files[0])


def assert_consistent_after_resume(settings, run_id: str, ids: list[str]) -> None:
    """The run's log entries and dataset rows exist once per item; nothing is held; none of
    its agents is active."""
    logged = Counter(e["work_item_id"] for e in read_log(settings) if e.get("run_id") == run_id)
    assert logged == Counter(ids), f"coordination log: {logged}"
    for name in ("swarm_assignments", "swarm_claims"):
        frame = read_dataset(settings, name, run_id)
        assert sorted(frame["work_item_id"]) == sorted(ids), name
    # the timeline has a row per `swarm.execute` span written: a span of the dead attempt still
    # buffered at the kill is lost with it, and one of an item run again is not repeated
    timeline = read_dataset(settings, "swarm_timeline", run_id)["work_item_id"]
    assert not timeline.duplicated().any() and set(timeline) <= set(ids)
    with SqliteLedger(settings.coordination_dir) as ledger:
        assert {c.status for c in ledger.list()} == {"completed"}
        assert not any(c.status in HELD for c in ledger.list())
    records = agent_registry.agents(settings)
    ours = [r for r in records if r.get("run_id") == run_id]
    assert len(ours) == len(AGENTS), "the resumed run formed new agents"
    assert {r["status"] for r in records} == {"idle"}, records


KILL_POINTS = {  # point -> (inline or drain, the kill predicate)
    "after-first-claim": ("inline", lambda s, log: claimed_any(s)),
    "midway": ("drain", lambda s, log: sum(ended(log).values()) >= ITEMS // 2),
    "after-last-execution": ("inline", lambda s, log: len(ended(log)) == ITEMS),
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_killed_swarm_run_resumes_without_redoing_completed_items(reactor_env, tmp_path, point):
    mode, kill_point = KILL_POINTS[point]
    log = tmp_path / "handler.jsonl"
    if mode == "drain":
        ids = enqueue_items(reactor_env, log)
        request = drain_request()
    else:
        request = inline_request(log)
    params = {"request": request.model_dump(mode="json", exclude_none=True)}

    killed = run_and_kill(ENTRY, params, lambda: kill_point(reactor_env, log))
    assert not exported(reactor_env), "the kill point came after the export began"
    settle(killed)
    run_id = str(killed.flow_run_id)
    if mode == "inline":
        ids = [work_item_id(run_id, f"t{i:02d}") for i in range(ITEMS)]
    done_at_kill = completed_items(reactor_env, ids)
    records_at_kill = len(read_jsonl(log))

    outcome = resume(killed.flow_run_id)

    assert outcome.flow_run_id == killed.flow_run_id and outcome.state == "Completed"
    assert outcome.run_count >= 2
    item_of = {w: w if mode == "drain" else w.rsplit("_", 1)[1] for w in ids}
    redone = started_after(log, records_at_kill)
    assert not {item_of[w] for w in done_at_kill} & set(redone), (
        f"items the ledger had completed were run again: {redone}"
    )
    assert set(ended(log)) == set(item_of.values())  # every item ran to the end
    assert completed_items(reactor_env, ids) == set(ids)
    assert_consistent_after_resume(reactor_env, run_id, ids)


def test_killed_drain_never_resumed_lapses_and_the_next_run_finishes_its_work(
    reactor_env, tmp_path
):
    """No resume: after the lease the dead run's claims are claimable again, after the
    heartbeat timeout its agents are marked dead by the next run, which finishes the queue."""
    log = tmp_path / "handler.jsonl"
    ids = enqueue_items(reactor_env, log)
    short = drain_request(lease_s=3, heartbeat_timeout_s=1.5)
    params = {"request": short.model_dump(mode="json", exclude_none=True)}
    killed = run_and_kill(ENTRY, params, lambda: sum(ended(log).values()) >= ITEMS // 2)
    settle(killed)
    done_at_kill = completed_items(reactor_env, ids)
    records_at_kill = len(read_jsonl(log))
    dead = {r["agent_id"] for r in agent_registry.agents(reactor_env)}
    with SqliteLedger(reactor_env.coordination_dir) as ledger:
        held = [c for c in ledger.list() if c.status in HELD]
    assert held and {c.agent_id for c in held} <= dead  # the dead run still holds claims
    wait_until("the dead run's leases and heartbeats to lapse", lambda: lapsed(reactor_env, held))

    result = asyncio.run(swarm_coordination(drain_request()))

    assert result.run_id != str(killed.flow_run_id) and result.success_rate == 1.0
    assert sorted(e.work_item_id for e in result.executions) == sorted(set(ids) - done_at_kill)
    redone = started_after(log, records_at_kill)
    assert not set(redone) & done_at_kill and all(n == 1 for n in redone.values())
    assert completed_items(reactor_env, ids) == set(ids)
    status = {r["agent_id"]: r["status"] for r in agent_registry.agents(reactor_env)}
    assert {status[a] for a in dead} == {"dead"}
    assert {status[a.agent_id] for a in result.agents} == {"idle"}
    # each completion once, across both runs. (Embedded ledger: a completion the dead run
    # committed right before the kill may have missed its log entry, which only a resume
    # re-appends; docs/swarm.md, "After a crash".)
    logged = Counter(e["work_item_id"] for e in read_log(reactor_env))
    assert set(logged) >= set(ids) - done_at_kill and max(logged.values()) == 1
