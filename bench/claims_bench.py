"""Claim ledger benchmark: N processes claiming the same M items, our SQLite ledger vs the naive
design (the whole work_claims.json rewritten under a file lock per claim), in one run.

    .venv/bin/python bench/claims_bench.py [--processes 8] [--items 20000] [--naive-seconds 30]

Both designs run the same workload (M pending items, N processes racing `claim_next` until the
ledger is empty). The naive ledger needs ~0.3 s per claim at 20,000 items, so it would take
about 1.5 hours to drain; its rate is measured on a time-boxed sample of the same workload and
the output says so. Each design is checked: 0 duplicates (an item claimed twice) and 0 lost
(a claim a process was told it got that the ledger does not record, or, for the full run, an
item nobody claimed).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks.claims import ClaimLedger, WorkItem
from tasks.store import JsonStore


# -- the naive baseline: the original one-JSON-file design --------------------------------
def naive_store(root: Path) -> JsonStore[list[dict]]:
    return JsonStore(root / "work_claims.json", list, lock_timeout_s=600, lock_tries=5)


def naive_claim_next(store: JsonStore[list[dict]], agent_id: str) -> str | None:
    """Read every claim, take the first pending one, rewrite the whole file (under the lock)."""
    taken: list[str] = []

    def mutate(claims: list[dict]) -> None:
        for record in claims:
            if record["status"] == "pending":
                record.update(status="claimed", agent_id=agent_id, claimed_at=time.time())
                taken.append(record["work_item_id"])
                return

    store.update(mutate)
    return taken[0] if taken else None


# -- workers ---------------------------------------------------------------------------------
def _worker(design: str, root: str, agent_id: str, start, deadline_s: float, out) -> None:
    claimed: list[str] = []
    if design == "ledger":
        ledger = ClaimLedger(root)
        start.wait()
        while (claim := ledger.claim_next(agent_id)) is not None:
            claimed.append(claim.work_item_id)
    else:
        store = naive_store(Path(root))
        start.wait()
        stop = time.monotonic() + deadline_s
        while time.monotonic() < stop and (item := naive_claim_next(store, agent_id)):
            claimed.append(item)
    out.put((agent_id, claimed))


def run(design: str, processes: int, items: int, deadline_s: float) -> dict:
    root = Path(tempfile.mkdtemp(prefix=f"claims-bench-{design}-"))
    ids = [f"work_{i:06d}" for i in range(items)]
    if design == "ledger":
        ClaimLedger(root).add(WorkItem(work_item_id=i, estimated_duration=1000) for i in ids)
    else:
        naive_store(root).write(
            [
                {"work_item_id": i, "status": "pending", "agent_id": None, "priority": "medium",
                 "work_type": "analysis", "estimated_duration": 1000, "description": ""}
                for i in ids
            ]
        )  # fmt: skip
    ctx = mp.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(design, str(root), f"agent_{n}", start, deadline_s, out))
        for n in range(processes)
    ]
    for p in procs:
        p.start()
    time.sleep(0.5)  # let every process open its ledger before the race starts
    t0 = time.perf_counter()
    start.set()
    results = [out.get() for _ in procs]
    elapsed = time.perf_counter() - t0
    for p in procs:
        p.join()
    reported = Counter(i for _, claimed in results for i in claimed)
    duplicates = sum(c - 1 for c in reported.values() if c > 1)
    if design == "ledger":
        recorded = {c.work_item_id: c.agent_id for c in ClaimLedger(root).list()}
        unclaimed = sum(1 for c in ClaimLedger(root).list() if c.status == "pending")
    else:
        claims = naive_store(root).read()
        recorded = {c["work_item_id"]: c["agent_id"] for c in claims if c["status"] != "pending"}
        unclaimed = 0  # time-boxed: items left pending are expected
    owner = {i: a for a, claimed in results for i in claimed}
    lost = sum(1 for i, a in owner.items() if recorded.get(i) != a) + (
        unclaimed if design == "ledger" else 0
    )
    phantom = sum(1 for i in recorded if i not in owner)  # recorded but no process got it
    shares = [len(claimed) for _, claimed in results]
    total = sum(shares)
    return {
        "design": design,
        "claims": total,
        "seconds": elapsed,
        "rate": total / elapsed,
        "duplicates": duplicates,
        "lost": lost + phantom,
        "fairness": max(shares) / (total / processes) if total else float("nan"),
        "complete": design == "ledger" and total == items,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--naive-seconds", type=float, default=30.0)
    args = parser.parse_args()
    print(f"{args.processes} processes claiming {args.items} items (same workload both designs)")
    ours = run("ledger", args.processes, args.items, 0)
    naive = run("naive", args.processes, args.items, args.naive_seconds)
    print(
        f"{'design':<36} {'claims':>7} {'seconds':>8} {'claims/s':>10} {'dup':>4} {'lost':>5} "
        f"{'fairness':>9}"
    )
    labels = {
        "ledger": "sqlite ledger (all items)",
        "naive": f"naive json rewrite ({args.naive_seconds:g} s time-box)",
    }
    for r in (ours, naive):
        print(
            f"{labels[r['design']]:<36} {r['claims']:>7} {r['seconds']:>8.2f} {r['rate']:>10.1f} "
            f"{r['duplicates']:>4} {r['lost']:>5} {r['fairness']:>9.2f}"
        )
    ratio = ours["rate"] / naive["rate"] if naive["rate"] else float("inf")
    print(
        f"naive rate measured on a {args.naive_seconds:g} s time-boxed sample of the same "
        f"{args.items}-item workload ({naive['claims']} claims); it would need "
        f"~{args.items / naive['rate'] / 60:.0f} min to drain it"
    )
    print(f"ratio (ours / naive claims/s): {ratio:.0f}x  (target >= 50x)")
    print("fairness = largest process share / fair share (1.00 = perfectly even)")
    ok = (
        ours["duplicates"] == naive["duplicates"] == 0
        and ours["lost"] == naive["lost"] == 0
        and ours["complete"]
        and ratio >= 50
    )
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
