"""A PostgreSQL claim costs the same at 1,000 and at 50,000 items, counted in rows and buffers
from `EXPLAIN (ANALYZE, BUFFERS)` (deterministic, unlike wall time). The SQLite ledger's
equivalent (VM instructions) is in tests/unit/swarm/test_claims.py."""

from __future__ import annotations

import psycopg
import pytest

from tasks.claims import WorkItem
from tasks.claims.postgres import PostgresLedger, claim_next_statement

CLAIMS = 20
LEFT = 300  # pending items left when the measured claims run


def _walk(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _walk(child)


def _cost(url: str, tmp_path, n: int) -> tuple[int, int]:
    """(rows, buffers) touched by CLAIMS claims on a ledger of n items, n - LEFT finished."""
    ledger = PostgresLedger(url, tmp_path)
    for start in range(0, n, 10_000):
        ledger.add(
            WorkItem(work_item_id=f"w{i:06d}", priority=("high", "medium", "low")[i % 3])
            for i in range(start, min(n, start + 10_000))
        )
    rows = buffers = 0
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE reactor_work_items SET status = 'completed', claims = 1 WHERE seq IN "
            "(SELECT seq FROM reactor_work_items ORDER BY rank, seq LIMIT %s)",
            (n - LEFT,),
        )
        conn.execute("VACUUM ANALYZE reactor_work_items")
        for i in range(CLAIMS):
            sql, args = claim_next_statement(f"agent_{i}")
            (plan,) = conn.execute(
                "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, FORMAT JSON) " + sql, args
            ).fetchone()[0]
            top = plan["Plan"]
            buffers += top["Shared Hit Blocks"] + top["Shared Read Blocks"]
            for node in _walk(top):
                rows += node["Actual Rows"] * node["Actual Loops"]
                rows += node.get("Rows Removed by Filter", 0)
    assert ledger.counts()["claimed"] == CLAIMS
    return rows, buffers


@pytest.mark.slow
def test_claim_cost_does_not_grow_with_the_number_of_items(pg_url, tmp_path):
    from tests.postgres import drop_database, fresh_database

    costs = {}
    for n in (1_000, 50_000):
        url = fresh_database(pg_url)
        try:
            costs[n] = _cost(url, tmp_path / str(n), n)
        finally:
            drop_database(url, pg_url)
    (small_rows, small_buf), (large_rows, large_buf) = costs[1_000], costs[50_000]
    assert large_rows == small_rows, costs  # the same rows: index lookups, no scan
    assert large_buf < 1.5 * small_buf, costs  # at most a deeper b-tree, never 50x
