"""Why IDs carry a PID suffix: raw `time.time_ns()` values clash between processes.

Two processes pinned to two cores read the clock in a tight loop, released together by a
barrier; prints, per trial, how long their reads overlapped and how many values both read, then
the same for `new_id()` (nanoseconds + PID suffix), which must be 0. Measured here: a raw
trial clashes 60k–291k times or not at all, even while overlapping (how the two cores' clock
reads line up varies), which is why one clash-free run proves nothing and IDs carry the PID.

    .venv/bin/python bench/ids_bench.py
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time

from tasks.ids import id_timestamp_ns, new_id

READS = 2_000_000
TRIALS = 5


def _read(barrier, core: int, use_ids: bool, out) -> None:
    os.sched_setaffinity(0, {core})
    barrier.wait()
    if use_ids:
        out.put([new_id("work") for _ in range(READS // 4)])
    else:
        clock = time.time_ns
        out.put([clock() for _ in range(READS)])


def trial(use_ids: bool) -> tuple[int, float, int]:
    """(reads per process, overlap in ms, values read by both)."""
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    cores = (sorted(os.sched_getaffinity(0)) * 2)[:2]
    procs = [ctx.Process(target=_read, args=(barrier, c, use_ids, out)) for c in cores]
    for p in procs:
        p.start()
    a, b = out.get(timeout=120), out.get(timeout=120)
    for p in procs:
        p.join(10)
    stamp = id_timestamp_ns if use_ids else int
    overlap = min(stamp(a[-1]), stamp(b[-1])) - max(stamp(a[0]), stamp(b[0]))
    return len(a), max(overlap, 0) / 1e6, len(set(a) & set(b))


if __name__ == "__main__":
    print(f"{'source':<22}{'trial':>6}{'reads/process':>15}{'overlap ms':>12}{'clashes':>10}")
    for use_ids, label in ((False, "time.time_ns()"), (True, "new_id() (ns + pid)")):
        for n in range(1, TRIALS + 1):
            reads, overlap_ms, clashes = trial(use_ids)
            note = "  (no overlap: not a test of clashes)" if overlap_ms < 10 else ""
            print(f"{label:<22}{n:>6}{reads:>15,}{overlap_ms:>12.1f}{clashes:>10,}{note}")
