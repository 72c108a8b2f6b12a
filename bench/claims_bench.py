"""Claim ledger benchmark: N processes claiming and completing the same M items, per design,
in one run.

    nice .venv/bin/python bench/claims_bench.py [--processes 8] [--items 20000] [--batch 10]
        [--rounds 3] [--naive-seconds 30]

PostgreSQL (one server for every design: REACTOR_TEST_DATABASE_URL, else a throwaway one with
fsync on, started and removed here; each design gets a fresh database with the same items):
our PostgreSQL ledger with `claim_many(agent, batch)` + `complete_many` and with one
`claim_next` + `complete` per item (the single-item path), and that path's two statements in a
bare psycopg loop (its floor without the Python layer); a raw single-statement
`FOR UPDATE SKIP LOCKED` claim + complete loop (the floor a hand-written design should reach);
PgQueuer (a maintained PostgreSQL queue library) at batch 1 and at `--batch`.

Embedded: our SQLite ledger at `synchronous=NORMAL` (the default: WAL, no fsync per commit;
survives a process crash, an OS crash may lose the last commits) and at `synchronous=FULL`
(fsync per commit), and the naive design (the whole work_claims.json rewritten, fsynced file
and directory, under a file lock for each claim and each completion). The naive ledger needs
~0.1 s per write at 20,000 items, so its rate is measured on a time-boxed sample of the same
workload and the output says so; it is compared with the ledger at the same durability (FULL).

The designs run in `--rounds` interleaved rounds (A B C A B C …, each round over items/rounds
fresh items), so a change of load on a shared machine hits every design alike; a row sums its
rounds (claims/s = all items / all seconds; fairness = its worst round).

Every design is checked: 0 duplicates (an item two processes were told they got) and 0 lost
(an item not completed, or completed for another process than the one told it got it).
Fairness = the largest process share / the fair share (1.00 = perfectly even).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from claim_designs import (
    naive_claim_next,
    naive_complete,
    naive_store,
    pgqueuer_setup,
    pgqueuer_worker,
    statements_worker,
)

from tasks.claims import SqliteLedger, WorkItem, open_ledger
from tasks.settings import Settings

CTX = mp.get_context("spawn")
RAW_SCHEMA = """
CREATE TABLE raw_queue (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    item TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    owner TEXT
);
CREATE INDEX raw_queue_pending ON raw_queue (id) WHERE status = 'pending';
"""
RAW_CLAIM = (
    "UPDATE raw_queue SET status = 'claimed', owner = %s WHERE id = (SELECT id FROM raw_queue "
    "WHERE status = 'pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id, item"
)
RAW_COMPLETE = "UPDATE raw_queue SET status = 'done' WHERE id = %s AND owner = %s"


# -- workers (spawned; each sets up, waits for the start signal, then drains) -----------------
def _worker(design: str, where: str, agent: str, batch: int, deadline_s: float, sync, out):
    """`sync` = (ready, start): say ready once set up, then wait for the start signal."""
    ready, start = sync
    got: list[str] = []
    if design == "pgqueuer":
        got = asyncio.run(pgqueuer_worker(where, batch, ready, start))
    elif design == "raw":
        import psycopg

        with psycopg.connect(where, autocommit=True) as conn:
            conn.execute("SELECT 1")
            ready.put(agent)
            start.wait()
            while (row := conn.execute(RAW_CLAIM, (agent,)).fetchone()) is not None:
                conn.execute(RAW_COMPLETE, (row[0], agent))
                got.append(row[1])
    elif design == "pg-statements":
        got = statements_worker(where, agent, ready, start)
    elif design == "naive":
        store = naive_store(Path(where))
        ready.put(agent)
        start.wait()
        stop = time.monotonic() + deadline_s
        while time.monotonic() < stop and (item := naive_claim_next(store, agent)):
            naive_complete(store, item, agent)
            got.append(item)
    else:
        ledger = _ledger(design, where)
        ledger.counts()  # connected
        ready.put(agent)
        start.wait()
        while True:
            if batch == 1:  # the single-item path: claim_next + complete
                claim = ledger.claim_next(agent)
                if claim is None:
                    break
                ledger.complete(claim.work_item_id, claim.claim_id)
                got.append(claim.work_item_id)
                continue
            else:
                claims = ledger.claim_many(agent, batch)
            if not claims:
                break
            ledger.complete_many([(c.work_item_id, c.claim_id, None) for c in claims])
            got += [c.work_item_id for c in claims]
        ledger.close()
    out.put((agent, got, time.perf_counter()))


def _ledger(design: str, where: str):
    """The ledger as the flows open it (`open_ledger`); FULL is the embedded ledger's option."""
    if design == "sqlite-full":
        return SqliteLedger(where, synchronous="FULL")
    if design in ("postgres", "pg-statements"):
        return open_ledger(Settings(coordination_dir=tempfile.gettempdir(), database_url=where))
    return open_ledger(Settings(coordination_dir=where, database_url=None))


# -- one design: set up its store, race N processes, check the outcome ----------------------------
def _setup(design: str, where: str, ids: list[str]) -> None:
    if design in ("postgres", "pg-statements", "sqlite", "sqlite-full"):
        ledger = _ledger(design, where)
        for chunk in range(0, len(ids), 10_000):
            ledger.add(WorkItem(work_item_id=i) for i in ids[chunk : chunk + 10_000])
        ledger.close()
    elif design == "raw":
        import psycopg

        with psycopg.connect(where, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(RAW_SCHEMA)
            with cur.copy("COPY raw_queue (item) FROM STDIN") as copy:
                for i in ids:
                    copy.write_row((i,))
    elif design == "pgqueuer":
        asyncio.run(pgqueuer_setup(where, ids))
    else:
        naive_store(Path(where)).write(
            [
                {"work_item_id": i, "status": "pending", "agent_id": None, "priority": "medium",
                 "work_type": "analysis", "estimated_duration": 1000, "description": ""}
                for i in ids
            ]
        )  # fmt: skip


def _recorded(design: str, where: str) -> tuple[dict[str, str | None], int]:
    """(item -> the agent the store says completed it, items left unfinished)."""
    if design in ("postgres", "pg-statements", "sqlite", "sqlite-full"):
        ledger = _ledger(design, where)
        items = ledger.list()
        ledger.close()
        done = {c.work_item_id: c.agent_id for c in items if c.status == "completed"}
        return done, len(items) - len(done)
    if design == "raw":
        import psycopg

        with psycopg.connect(where) as conn:
            rows = conn.execute("SELECT item, owner, status FROM raw_queue").fetchall()
        return {i: o for i, o, s in rows if s == "done"}, sum(s != "done" for _, _, s in rows)
    if design == "pgqueuer":
        import psycopg

        with psycopg.connect(where) as conn:
            left = conn.execute("SELECT count(*) FROM pgqueuer").fetchone()[0]
        return {}, left  # PgQueuer deletes finished jobs; who ran them is in our reports
    claims = naive_store(Path(where)).read()
    return {c["work_item_id"]: c["agent_id"] for c in claims if c["status"] == "completed"}, 0


def run(design: str, where: str, processes: int, items: int, batch: int, deadline_s: float):
    ids = [f"work_{i:06d}" for i in range(items)]
    _setup(design, where, ids)
    ready, start, out = CTX.Queue(), CTX.Event(), CTX.Queue()
    procs = [
        CTX.Process(
            target=_worker,
            args=(design, where, f"agent_{n}", batch, deadline_s, (ready, start), out),
        )
        for n in range(processes)
    ]
    for p in procs:
        p.start()
    for _ in procs:  # every process is set up and waiting before the race starts
        ready.get(timeout=300)
    t0 = time.perf_counter()
    start.set()
    results = [out.get() for _ in procs]
    elapsed = max(finished for _, _, finished in results) - t0
    for p in procs:
        p.join()
    reported = Counter(i for _, got, _ in results for i in got)
    duplicates = sum(c - 1 for c in reported.values() if c > 1)
    recorded, unfinished = _recorded(design, where)
    owner = {i: a for a, got, _ in results for i in got}
    if design == "pgqueuer":
        lost = unfinished + (items - len(owner))
    elif design == "naive":  # time-boxed: items left pending are expected
        lost = sum(1 for i, a in owner.items() if recorded.get(i) != a)
    else:
        lost = unfinished + sum(1 for i, a in owner.items() if recorded.get(i) != a)
    shares = [len(got) for _, got, _ in results]
    total = sum(shares)
    return {
        "claims": total,
        "seconds": elapsed,
        "rate": total / elapsed,
        "duplicates": duplicates,
        "lost": lost,
        "fairness": max(shares) / (total / processes) if total else float("nan"),
    }


def _combine(rounds: list[dict]) -> dict:
    claims, seconds = sum(r["claims"] for r in rounds), sum(r["seconds"] for r in rounds)
    return {
        "claims": claims,
        "seconds": seconds,
        "rate": claims / seconds,
        "duplicates": sum(r["duplicates"] for r in rounds),
        "lost": sum(r["lost"] for r in rounds),
        "fairness": max(r["fairness"] for r in rounds),
    }


# -- the PostgreSQL server ------------------------------------------------------------------------
class Server:
    """REACTOR_TEST_DATABASE_URL's server, or a throwaway durable one (fsync on)."""

    def __enter__(self) -> Server:
        import os

        from tests.postgres import ENV_URL, ThrowawayPostgres

        self.throwaway = None
        self.url = os.environ.get(ENV_URL)
        if not self.url:
            self.throwaway = ThrowawayPostgres(durable=True)
            self.url = self.throwaway.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.throwaway is not None:
            self.throwaway.stop()

    def database(self) -> str:
        from tests.postgres import fresh_database

        return fresh_database(self.url, prefix="claims_bench")

    def durability(self) -> str:
        import psycopg

        with psycopg.connect(self.url) as conn:
            names = ("fsync", "synchronous_commit")
            show = [conn.execute(f"SHOW {name}").fetchone()[0] for name in names]
        return f"fsync={show[0]}, synchronous_commit={show[1]}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--naive-seconds", type=float, default=30.0)
    args = parser.parse_args()
    n, items, b, rounds = args.processes, args.items, args.batch, args.rounds
    per_round = items // rounds
    items = per_round * rounds
    runs: dict[str, list[dict]] = {}
    durabilities: dict[str, str] = {}
    with Server() as server:
        pg_durability = f"postgres {server.durability()}"
        pg_designs = (
            ("pg-ledger", "postgres", b),
            ("pg-ledger-1", "postgres", 1),
            ("pg-statements-1", "pg-statements", 1),
            ("raw", "raw", 1),
            ("pgqueuer-1", "pgqueuer", 1),
            (f"pgqueuer-{b}", "pgqueuer", b),
        )
        for _ in range(rounds):
            for key, design, batch in pg_designs:
                durabilities[key] = pg_durability
                runs.setdefault(key, []).append(
                    run(design, server.database(), n, per_round, batch, 0)
                )
    for _ in range(rounds):
        for key, design, durability in (
            ("sqlite", "sqlite", "sqlite synchronous=NORMAL (WAL)"),
            ("sqlite-full", "sqlite-full", "sqlite synchronous=FULL (WAL, fsync per commit)"),
        ):
            durabilities[key] = durability
            root = tempfile.mkdtemp(prefix=f"claims-bench-{design}-")
            runs.setdefault(key, []).append(run(design, root, n, per_round, b, 0))
    rows = {k: (durabilities[k], _combine(r)) for k, r in runs.items()}
    root = tempfile.mkdtemp(prefix="claims-bench-naive-")
    naive = run("naive", root, n, items, 1, args.naive_seconds)
    rows["naive"] = ("fsync file + dir per write", naive)

    labels = {
        "pg-ledger": f"postgres ledger, claim_many({b}) + complete_many",
        "pg-ledger-1": "postgres ledger, claim_next + complete",
        "pg-statements-1": "its 2 statements in a bare loop",
        "raw": "raw SKIP LOCKED claim + complete loop",
        "pgqueuer-1": "PgQueuer, batch 1",
        f"pgqueuer-{b}": f"PgQueuer, batch {b}",
        "sqlite": f"sqlite ledger, claim_many({b}) + complete_many",
        "sqlite-full": f"sqlite ledger, claim_many({b}) + complete_many",
        "naive": f"naive json rewrite ({args.naive_seconds:g} s time-box)",
    }
    print(
        f"{n} processes claiming and completing {items} items per design "
        f"({rounds} interleaved rounds of {per_round})"
    )
    print(
        f"{'design':<46} {'durability':<48} {'items':>6} {'s':>7} {'claims/s':>9} {'dup':>4} "
        f"{'lost':>5} {'fair':>5}"
    )
    for key, (durability, r) in rows.items():
        print(
            f"{labels[key]:<46} {durability:<48} {r['claims']:>6} {r['seconds']:>7.2f} "
            f"{r['rate']:>9.1f} {r['duplicates']:>4} {r['lost']:>5} {r['fairness']:>5.2f}"
        )
    rate = {k: r["rate"] for k, (_, r) in rows.items()}
    ours = rows["pg-ledger"][1]
    ratios = {
        "postgres ledger / raw SKIP LOCKED loop": rate["pg-ledger"] / rate["raw"],
        "postgres ledger batch 1 / raw SKIP LOCKED loop": rate["pg-ledger-1"] / rate["raw"],
        "its statements in a bare loop / raw SKIP LOCKED loop": rate["pg-statements-1"]
        / rate["raw"],
        f"postgres ledger / PgQueuer batch {b}": rate["pg-ledger"] / rate[f"pgqueuer-{b}"],
        "postgres ledger / PgQueuer batch 1": rate["pg-ledger"] / rate["pgqueuer-1"],
        "sqlite FULL / naive (same durability: fsync per write)": rate["sqlite-full"]
        / naive["rate"],
        "sqlite NORMAL / naive (NORMAL does not fsync each commit)": rate["sqlite"] / naive["rate"],
    }
    for name, value in ratios.items():
        print(f"ratio {name}: {value:.2f}x")
    for key in ("pg-ledger", "pg-ledger-1", "pg-statements-1", "raw", f"pgqueuer-{b}"):
        each = ", ".join(f"{r['rate']:.0f}" for r in runs[key])
        print(f"claims/s per round, {labels[key]}: {each}")
    print(
        f"naive rate measured on a {args.naive_seconds:g} s time-boxed sample of the same "
        f"{items}-item workload ({naive['claims']} items); it would need "
        f"~{items / naive['rate'] / 60:.0f} min to drain it"
    )
    clean = all(r["duplicates"] == 0 and r["lost"] == 0 for _, r in rows.values())
    targets = {
        "postgres ledger >= 1.0x raw loop": ratios["postgres ledger / raw SKIP LOCKED loop"] >= 1,
        f"postgres ledger >= 1.0x PgQueuer batch {b}": ratios[
            f"postgres ledger / PgQueuer batch {b}"
        ]
        >= 1,
        "postgres ledger batch 1 (claim_next + complete) >= 0.8x raw loop": ratios[
            "postgres ledger batch 1 / raw SKIP LOCKED loop"
        ]
        >= 0.8,
        "postgres ledger fairness <= 1.3": ours["fairness"] <= 1.3,
        "sqlite FULL >= 50x naive": ratios["sqlite FULL / naive (same durability: fsync per write)"]
        >= 50,
        "0 duplicates, 0 lost everywhere": clean,
    }
    for name, ok in targets.items():
        print(f"{'ok  ' if ok else 'MISS'} {name}")
    print("PASS" if all(targets.values()) else "FAIL")
    return 0 if all(targets.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
