"""PostgreSQL ledger races that only row locks can settle: an item added while one of its
dependencies is being completed is not left waiting for ever."""

from __future__ import annotations

import threading
import time

import psycopg

from tasks.claims import WorkItem
from tasks.claims.postgres import PostgresLedger


def _waiting_on_a_lock(url: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database()"
        ).fetchone()
    return row[0] > 0


def test_item_added_while_its_dependency_completes_becomes_claimable(pg_database, tmp_path):
    ledger = PostgresLedger(pg_database, tmp_path)
    ledger.add([WorkItem(work_item_id="dep")])
    claim = ledger.claim_next("agent_a")
    with psycopg.connect(pg_database) as completing:  # complete_many, paused between statements
        completing.execute(
            "UPDATE reactor_work_items SET status = 'completed' WHERE work_item_id = %s AND "
            "claim_id = %s",
            ("dep", claim.claim_id),
        )
        adder = threading.Thread(
            target=ledger.add, args=([WorkItem(work_item_id="after", dependencies=["dep"])],)
        )
        adder.start()
        deadline = time.monotonic() + 30
        while not _waiting_on_a_lock(pg_database):  # the add waits for the completion
            assert time.monotonic() < deadline and adder.is_alive()
            time.sleep(0.02)
        completing.execute(
            "UPDATE reactor_work_items w SET unmet = w.unmet - 1 FROM reactor_work_item_deps d "
            "WHERE d.depends_on = 'dep' AND w.work_item_id = d.work_item_id"
        )
        completing.commit()
    adder.join(30)
    assert ledger.get("after").status == "pending"
    assert ledger.claim_next("agent_b").work_item_id == "after"  # not waiting for ever


def test_item_added_while_its_dependency_completes_alone_becomes_claimable(pg_database, tmp_path):
    """The one-statement completion of an item nothing depended on waits for an add holding its
    row and then sees the dependent that add counted: it releases it."""
    ledger = PostgresLedger(pg_database, tmp_path)
    ledger.add([WorkItem(work_item_id="dep")])
    claim = ledger.claim_next("agent_a")
    with psycopg.connect(pg_database) as adding:  # add, paused before its commit
        adding.execute(
            "UPDATE reactor_work_items SET dependents = dependents + 1 WHERE work_item_id = 'dep'"
        )
        adding.execute(
            "INSERT INTO reactor_work_items (work_item_id, work_type, priority, rank, "
            "dependencies, unmet) VALUES ('after', 'analysis', 'medium', 2, '[\"dep\"]', 1)"
        )
        adding.execute("INSERT INTO reactor_work_item_deps VALUES ('after', 'dep')")
        completer = threading.Thread(target=ledger.complete, args=("dep", claim.claim_id))
        completer.start()
        deadline = time.monotonic() + 30
        while not _waiting_on_a_lock(pg_database):  # the completion waits for the add
            assert time.monotonic() < deadline and completer.is_alive()
            time.sleep(0.02)
        adding.commit()
    completer.join(30)
    assert ledger.get("dep").status == "completed"
    assert ledger.claim_next("agent_b").work_item_id == "after"  # not waiting for ever
