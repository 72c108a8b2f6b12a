"""Handler isolation benchmark: what running a swarm handler in a killable process costs, and
what the first task of a run pays when the worker processes are not ready before it.

    .venv/bin/python bench/handler_bench.py [--calls 200] [--spawns 5] [--rounds 3]

Per call: a trivial `python` handler (`json:dumps`) in this process (the baseline, no
isolation), through the swarm's warm worker pool (`tasks.swarm.handlers.run_with_retries`,
what the flow does), and in a freshly spawned process per attempt (the alternative the pool
avoids). Target: the pool adds < 10 ms per call, well under the >= 100 ms a swarm task carries.

The first task: its time beyond the in-process baseline, measured in the same run both ways,
alternated over `--rounds` fresh pools (median):
- before: a pool of spawned workers started by the first task (each a fresh interpreter
  importing the worker module), as the flow did until the workers were started beforehand;
- after: `start_workers` (a fork server that preloaded the worker module, then forked
  workers), run before the first task as the flow now does; its time is printed apart, as
  start-up that no task's time includes.
"""

from __future__ import annotations

import argparse
import importlib
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pebble import ProcessPool

from tasks.swarm.handlers import (
    HandlerRef,
    run_with_retries,
    shutdown_pools,
    start_workers,
)
from tasks.swarm.worker import call_handler

REF = HandlerRef("python", "json:dumps")
CALL = {
    "task_id": "bench", "type": "bench", "priority": "medium",
    "payload": {"values": list(range(50))}, "inputs": {}, "estimated_duration_ms": 100,
    "run_id": "bench",
}  # fmt: skip
WORKERS = 2


def per_call_ms(fn, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1000


def spawn_once() -> None:
    process = multiprocessing.get_context("spawn").Process(target=call_handler, args=(REF, CALL))
    process.start()
    process.join()


def first_task_cold_ms() -> float:
    """The first task's time with a pool its first call starts (the earlier design)."""
    pool = ProcessPool(
        max_workers=WORKERS,
        context=multiprocessing.get_context("spawn"),
        initializer=importlib.import_module,
        initargs=("tasks.swarm.worker",),
    )
    try:
        t0 = time.perf_counter()
        pool.schedule(call_handler, args=(REF, CALL)).result()
        return (time.perf_counter() - t0) * 1000
    finally:
        pool.stop()
        pool.join()


def first_task_ready_ms() -> tuple[float, float]:
    """(start-up before the work, the first task's time) with the workers started first."""
    shutdown_pools()
    startup = start_workers(WORKERS)
    t0 = time.perf_counter()
    run_with_retries(REF, CALL, 30, 0, workers=WORKERS)
    first = (time.perf_counter() - t0) * 1000
    shutdown_pools()
    return startup, first


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--spawns", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    direct = per_call_ms(lambda: call_handler(REF, CALL), args.calls)
    cold, ready, startups = [], [], []
    for _ in range(args.rounds):  # alternated, so a load change hits both alike
        cold.append(first_task_cold_ms() - direct)
        startup, first = first_task_ready_ms()
        ready.append(first - direct)
        startups.append(startup)
    before, after = statistics.median(cold), statistics.median(ready)

    t0 = time.perf_counter()
    start_workers(WORKERS)
    pool_start_ms = (time.perf_counter() - t0) * 1000
    pooled = per_call_ms(lambda: run_with_retries(REF, CALL, 30, 0, workers=WORKERS), args.calls)
    spawned = per_call_ms(spawn_once, args.spawns)
    shutdown_pools()

    print(f"{'how a handler runs':<34} {'ms per call':>12} {'added':>9}")
    print(f"{'in this process (baseline)':<34} {direct:>12.3f} {'':>9}")
    print(f"{'warm worker pool (the flow)':<34} {pooled:>12.3f} {pooled - direct:>9.3f}")
    print(f"{'a spawned process per attempt':<34} {spawned:>12.1f} {spawned - direct:>9.1f}")
    print(f"pool start ({WORKERS} workers, once per process): {pool_start_ms:.0f} ms")
    print(f"spawn per attempt / pool per call: {spawned / pooled:.0f}x")
    print()
    print(f"first task's overhead (median of {args.rounds}, ms beyond the baseline):")
    print(f"  before: workers started by the first task (spawn)   {before:>10.1f}")
    print(f"  after:  workers started before it (fork server)     {after:>10.1f}")
    print(f"  start-up paid before the first task, in no task's time: median "
          f"{statistics.median(startups):.0f} ms")  # fmt: skip
    print(f"  before / after: {before / max(after, 1e-3):.0f}x")
    ok = pooled - direct < 10.0 and after < 10.0
    print("targets: the pool adds < 10 ms per call; the first task < 10 ms with workers ready")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
