"""Handler isolation benchmark: what running a swarm handler in a killable process costs.

    .venv/bin/python bench/handler_bench.py [--calls 200] [--spawns 5]

Runs a trivial `python` handler (`json:dumps`) three ways and prints the cost per call:
in this process (the baseline, no isolation), through the swarm's warm worker pool
(`tasks.swarm.handlers.run_with_retries`, what the flow does), and in a freshly spawned process
per attempt (the alternative the pool avoids). Target: the pool adds < 10 ms per call, well
under the >= 100 ms of work a swarm task carries.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks.swarm.handlers import HandlerRef, run_with_retries, worker_pool
from tasks.swarm.worker import call_handler

REF = HandlerRef("python", "json:dumps")
CALL = {
    "task_id": "bench", "type": "bench", "priority": "medium",
    "payload": {"values": list(range(50))}, "inputs": {}, "estimated_duration_ms": 100,
    "run_id": "bench",
}  # fmt: skip


def per_call_ms(fn, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1000


def spawn_once() -> None:
    process = multiprocessing.get_context("spawn").Process(target=call_handler, args=(REF, CALL))
    process.start()
    process.join()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--spawns", type=int, default=5)
    args = parser.parse_args()
    t0 = time.perf_counter()
    worker_pool(2).schedule(call_handler, args=(REF, CALL)).result()  # start the workers
    startup_ms = (time.perf_counter() - t0) * 1000
    direct = per_call_ms(lambda: call_handler(REF, CALL), args.calls)
    pooled = per_call_ms(lambda: run_with_retries(REF, CALL, 30, 0, workers=2), args.calls)
    spawned = per_call_ms(spawn_once, args.spawns)
    print(f"{'how a handler runs':<34} {'ms per call':>12} {'added':>9}")
    print(f"{'in this process (baseline)':<34} {direct:>12.3f} {'':>9}")
    print(f"{'warm worker pool (the flow)':<34} {pooled:>12.3f} {pooled - direct:>9.3f}")
    print(f"{'a spawned process per attempt':<34} {spawned:>12.1f} {spawned - direct:>9.1f}")
    print(f"pool start (2 workers, once per process): {startup_ms:.0f} ms")
    print(f"spawn per attempt / pool per call: {spawned / pooled:.0f}x")
    ok = pooled - direct < 10.0
    print("target: the pool adds < 10 ms per call (a task carries >= 100 ms of work)")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
