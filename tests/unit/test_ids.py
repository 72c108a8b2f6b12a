"""IDs: strictly increasing within a process, unique across processes."""

from __future__ import annotations

import itertools
import threading

import pytest

from tasks.ids import id_timestamp_ns, new_id
from tests.forkserver import forkserver

PROCESSES = 8
PER_PROCESS = 100_000


def _make_ids(n: int) -> list[str]:
    return [new_id("work") for _ in range(n)]


def test_no_collisions_across_8_processes_x_100k():
    with forkserver(__name__) as ctx, ctx.Pool(PROCESSES) as pool:
        batches = pool.map(_make_ids, [PER_PROCESS] * PROCESSES)
    ids = [i for batch in batches for i in batch]
    assert len(ids) == PROCESSES * PER_PROCESS
    assert len(set(ids)) == len(ids)
    for batch in batches:  # strictly increasing within each process
        stamps = [id_timestamp_ns(i) for i in batch]
        assert all(a < b for a, b in itertools.pairwise(stamps))


def test_threads_get_distinct_increasing_ids():
    out: list[list[str]] = [[] for _ in range(8)]

    def run(slot: int) -> None:
        out[slot].extend(new_id("claim") for _ in range(5_000))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [i for chunk in out for i in chunk]
    assert len(set(flat)) == len(flat) == 40_000


def test_prefixes_follow_the_seed_shape():
    for kind in ("agent", "work", "claim", "coord"):
        assert new_id(kind).startswith(f"{kind}_")


def test_unknown_kind_is_rejected_with_the_valid_ones_named():
    with pytest.raises(ValueError, match="agent"):
        new_id("job")
