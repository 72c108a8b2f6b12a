"""Why IDs carry a PID suffix: raw `time.time_ns()` values clash between processes.

Two processes pinned to two cores read the clock in a tight loop at the same moment; prints the
number of identical values, then the same count for `new_id` (with the suffix), which must be 0.
Needs two idle cores: on a loaded machine the processes rarely overlap and clashes drop.

    .venv/bin/python bench/ids_bench.py
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time

from tasks.ids import new_id

READS = 2_000_000


def _read(barrier, core: int, use_ids: bool, out) -> None:
    os.sched_setaffinity(0, {core})
    barrier.wait()
    if use_ids:
        out.put([new_id("work") for _ in range(READS // 4)])
    else:
        clock = time.time_ns
        out.put([clock() for _ in range(READS)])


def clashes(use_ids: bool) -> tuple[int, int]:
    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    cores = sorted(os.sched_getaffinity(0))[:2] * (2 if len(os.sched_getaffinity(0)) < 2 else 1)
    procs = [ctx.Process(target=_read, args=(barrier, c, use_ids, out)) for c in cores[:2]]
    for p in procs:
        p.start()
    a, b = out.get(timeout=120), out.get(timeout=120)
    for p in procs:
        p.join(10)
    return len(a), len(set(a) & set(b))


if __name__ == "__main__":
    n, raw = clashes(use_ids=False)
    m, ids = clashes(use_ids=True)
    print(f"{'source':<22}{'reads/process':>15}{'cross-process clashes':>24}")
    print(f"{'time.time_ns()':<22}{n:>15,}{raw:>24,}")
    print(f"{'new_id() (ns + pid)':<22}{m:>15,}{ids:>24,}")
