"""Ledgers do not leak descriptors: a Prefect task opens one per call (and its lease keeper
heartbeats from another thread), so a long-lived worker would otherwise run out of them."""

from __future__ import annotations

import gc
import os
import threading

from tasks.claims import SqliteLedger, WorkItem, open_ledger

CALLS = 200


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _task_call(settings, n: int) -> None:
    """What a ledger-using task does: open, claim, heartbeat from a thread, complete, close."""
    with open_ledger(settings) as ledger:
        claim = ledger.claim(f"w{n:04d}", "agent_task")
        beat = threading.Thread(target=ledger.heartbeat, args=(claim.work_item_id, claim.claim_id))
        beat.start()
        beat.join()
        ledger.complete(claim.work_item_id, claim.claim_id, None)


def test_ledgers_do_not_leak_descriptors_over_task_calls(ledger, ledger_settings):
    ledger.add(WorkItem(work_item_id=f"w{n:04d}") for n in range(CALLS + 1))
    _task_call(ledger_settings, CALLS)  # warm-up: a PostgreSQL pool opens its connections
    before = _open_fds()
    for n in range(CALLS):
        _task_call(ledger_settings, n)
    assert _open_fds() - before <= 2, f"{_open_fds() - before} descriptors leaked"
    assert ledger.counts() == {"completed": CALLS + 1}


def test_a_ledger_dropped_without_close_releases_its_descriptors(tmp_path):
    SqliteLedger(tmp_path).add(WorkItem(work_item_id=f"w{n:04d}") for n in range(CALLS))
    gc.collect()
    before = _open_fds()
    for n in range(CALLS):
        SqliteLedger(tmp_path).claim(f"w{n:04d}", "agent_forgetful")  # never closed
    gc.collect()
    assert _open_fds() - before <= 2, f"{_open_fds() - before} descriptors leaked"
