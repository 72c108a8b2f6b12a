"""The embedded (SQLite) ledger's own properties; the contract both backends share is in
tests/contract/test_ledger.py."""

from __future__ import annotations

import sqlite3

from tasks.claims import SqliteLedger, WorkItem, open_ledger


def _items(n: int, prefix: str = "w") -> list[WorkItem]:
    return [WorkItem(work_item_id=f"{prefix}{i:05d}", estimated_duration=100) for i in range(n)]


def test_nothing_configured_means_the_sqlite_ledger_in_the_coordination_dir(reactor_env):
    with open_ledger() as ledger:
        assert isinstance(ledger, SqliteLedger) and ledger.backend == "sqlite"
        assert ledger.path == reactor_env.coordination_dir / "claims.sqlite3"


def test_durability_is_a_choice_normal_by_default(tmp_path):
    for synchronous, code in (("NORMAL", 1), ("FULL", 2)):
        with SqliteLedger(tmp_path / synchronous, synchronous=synchronous) as ledger:
            ledger.add(_items(1))
            assert ledger._handle().conn.execute("PRAGMA synchronous").fetchone()[0] == code
    mode = sqlite3.connect(tmp_path / "NORMAL" / "claims.sqlite3").execute("PRAGMA journal_mode")
    assert mode.fetchone()[0] == "wal"


def test_claim_cost_does_not_grow_with_the_number_of_claims(tmp_path):
    """Counted in SQLite VM instructions (deterministic, unlike wall time): an indexed claim
    grows at most logarithmically with the ledger, a scan would grow 20x from 400 to 8000."""

    def cost(n: int) -> int:
        ledger = SqliteLedger(tmp_path / str(n))
        ledger.add(_items(n))
        ledger.claim_many("agent_fill", n - 300)  # most items already claimed
        steps = [0]

        def count() -> int:
            steps[0] += 1
            return 0  # 0 = keep going

        ledger._handle().conn.set_progress_handler(count, 100)  # every 100 VM instructions
        for _ in range(200):
            ledger.claim_next("agent_timed")
        ledger._handle().conn.set_progress_handler(None, 100)
        ledger.close()
        return steps[0] * 100

    small, large = cost(400), cost(8000)
    assert large < 1.5 * small, f"200 claims: {small} VM steps at 400 items, {large} at 8000"
