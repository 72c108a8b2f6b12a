"""Items/s through a drain run of the queue vs the inline path with the same tasks, in the same
run against one temporary Prefect server and one embedded ledger.

- queue: N no-op work items enqueued (timed separately), then one drain run
  (`SwarmRequest(queue=QueueSelection(limit=N))`, 8 agents) takes, plans, executes and
  completes all of them.
- inline: one swarm run with the same N tasks inline (`SwarmRequest(tasks=...)`, 8 agents): it
  adds and claims its own work items.

Both run the same `module:function` no-op handler in the same warm handler pool, with the same
per-task bookkeeping; the difference is what the queue adds (take, hand-over, the drain summary).
Target: drain run time <= 1.2 x the inline run time. Rounds alternate the order so load drift
hits both paths alike.

    nice .venv/bin/python bench/queue_bench.py [--items 1000] [--agents 8] [--rounds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)  # prefect.toml (the server settings) is read from the working directory
WORK = Path(tempfile.mkdtemp(prefix="queue-bench-"))
os.environ["REACTOR_COORDINATION_DIR"] = str(WORK / "coordination")
os.environ["REACTOR_EXPORTS_DIR"] = str(WORK / "exports")
os.environ.pop("REACTOR_DATABASE_URL", None)  # the embedded ledger, one host

from prefect.testing.utilities import prefect_test_harness  # noqa: E402

from flows.swarm_coordination import swarm_coordination  # noqa: E402
from tasks.swarm.handlers import shutdown_pools  # noqa: E402
from tasks.swarm.models import SwarmRequest  # noqa: E402
from tasks.swarm.queue.enqueue import enqueue  # noqa: E402

TARGET = 1.2
NOOP = {"bench.noop": {"kind": "python", "target": "tests.unit.swarm.queue_handlers:noop"}}


def _agents(n: int) -> list[dict]:
    return [{"name": f"agent-{i + 1}"} for i in range(n)]


def inline_run(items: int, agents: int, round_no: int) -> float:
    tasks = [
        {"id": f"r{round_no}-t{i:04d}", "type": "bench.noop", "estimated_duration_ms": 1}
        for i in range(items)
    ]
    request = SwarmRequest.model_validate(
        {"tasks": tasks, "agents": _agents(agents), "handlers": NOOP, "min_success_rate": 1.0}
    )
    t0 = time.perf_counter()
    result = asyncio.run(swarm_coordination(request))
    elapsed = time.perf_counter() - t0
    assert sum(e.status == "completed" for e in result.executions) == items
    return elapsed


def queue_run(items: int, agents: int, round_no: int) -> tuple[float, float]:
    work = [
        {"work_item_id": f"q{round_no}-{i:04d}", "work_type": "bench.noop", "estimated_duration": 1}
        for i in range(items)
    ]
    t0 = time.perf_counter()
    enqueue(work)
    enqueued = time.perf_counter() - t0
    request = SwarmRequest.model_validate(
        {
            "queue": {"limit": items},
            "agents": _agents(agents),
            "handlers": NOOP,
            "min_success_rate": 1.0,
        }
    )
    t0 = time.perf_counter()
    result = asyncio.run(swarm_coordination(request))
    elapsed = time.perf_counter() - t0
    assert result.queue is not None and result.queue.completed == items, result.queue
    assert result.queue.depth_after == 0
    return elapsed, enqueued


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    inline: list[float] = []
    drained: list[float] = []
    enqueued: list[float] = []
    try:
        with prefect_test_harness(server_startup_timeout=600):
            inline_run(8, args.agents, -1)  # warm-up: imports, handler pool, connections
            for r in range(args.rounds):
                order = ("inline", "queue") if r % 2 == 0 else ("queue", "inline")
                for path in order:
                    if path == "inline":
                        inline.append(inline_run(args.items, args.agents, r))
                    else:
                        d, e = queue_run(args.items, args.agents, r)
                        drained.append(d)
                        enqueued.append(e)
                print(f"round {r + 1}: inline {inline[-1]:.1f} s, drain {drained[-1]:.1f} s")
    finally:
        shutdown_pools()
    n = args.items
    i_s, d_s = statistics.median(inline), statistics.median(drained)
    print(f"\n{n} no-op items, {args.agents} agents, {args.rounds} round(s), median wall time")
    print("| path | run s | items/s |")
    print("|---|---|---|")
    print(f"| inline tasks (adds + claims its own items) | {i_s:.1f} | {n / i_s:.1f} |")
    print(f"| drain of the queue (take + hand-over + summary) | {d_s:.1f} | {n / d_s:.1f} |")
    add_s = statistics.median(enqueued)
    print(f"enqueue of {n} items (one add, not part of the run): {add_s:.2f} s")
    ratio = d_s / i_s
    verdict = "meets" if ratio <= TARGET else "misses"
    print(f"ratio drain / inline: {ratio:.3f}x ({verdict} the {TARGET}x target)")


if __name__ == "__main__":
    main()
