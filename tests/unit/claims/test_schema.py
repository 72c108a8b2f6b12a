"""Both ledger schemas are versioned: an old ledger migrates in place, a second version
migrates a PostgreSQL database once, and a schema newer than the code is one clear error."""

from __future__ import annotations

import sqlite3
import threading

import psycopg
import pytest

from tasks.claims import SqliteLedger, WorkItem
from tasks.claims.postgres import PostgresLedger
from tasks.claims.schema import (
    POSTGRES_MIGRATIONS,
    SQLITE_MIGRATIONS,
    SQLITE_VERSION,
    Migration,
    migrate_postgres,
    postgres_versions,
)
from tasks.errors import StoreUnavailable


def test_a_ledger_made_before_versioning_is_migrated_in_place(tmp_path):
    db = sqlite3.connect(tmp_path / "claims.sqlite3", isolation_level=None)
    for statement in SQLITE_MIGRATIONS[0].statements:  # the schema the first version made
        db.execute(statement)
    db.execute(
        "INSERT INTO work_items (work_item_id, work_type, priority, rank, status, agent_id, "
        "claim_id, claims) VALUES ('old', 'analysis', 'high', 1, 'claimed', 'agent_x', 'c1', 1)"
    )
    db.close()
    with SqliteLedger(tmp_path) as ledger:
        old = ledger.get("old")
        assert (old.status, old.agent_id, old.attempts, old.max_attempts) == (
            "claimed", "agent_x", 0, 3,
        )  # fmt: skip
        ledger.add([WorkItem(work_item_id="new", dependencies=["old"])])
        ledger.complete("old", "c1")
        assert ledger.claim_next("agent_y").work_item_id == "new"
    version = sqlite3.connect(tmp_path / "claims.sqlite3").execute("PRAGMA user_version")
    assert version.fetchone()[0] == SQLITE_VERSION


def test_a_second_schema_version_migrates_the_postgres_database(pg_database, tmp_path):
    PostgresLedger(pg_database, tmp_path).add([WorkItem(work_item_id="kept")])
    nxt = len(POSTGRES_MIGRATIONS) + 1
    note = ("ALTER TABLE reactor_work_items ADD COLUMN note TEXT",)
    newer = (*POSTGRES_MIGRATIONS, Migration(nxt, "work item notes", note))
    results: list[list[int]] = []

    def start_newer_version() -> None:
        with psycopg.connect(pg_database, autocommit=True) as conn:
            results.append(migrate_postgres(conn, newer))

    threads = [threading.Thread(target=start_newer_version) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [[], [], [], [nxt]]  # four processes start, one migrates
    with psycopg.connect(pg_database, autocommit=True) as conn:
        assert postgres_versions(conn) == list(range(1, nxt + 1))
        note = conn.execute("SELECT note FROM reactor_work_items WHERE work_item_id = 'kept'")
        assert note.fetchone() == (None,)


def test_a_schema_newer_than_the_code_is_one_clear_error(tmp_path, pg_database):
    db = sqlite3.connect(tmp_path / "claims.sqlite3")
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(StoreUnavailable, match=r"claims\.sqlite3 has schema version 99"):
        SqliteLedger(tmp_path)
    with psycopg.connect(pg_database, autocommit=True) as conn:
        migrate_postgres(conn)
        conn.execute("INSERT INTO reactor_schema_migrations VALUES (99, 'from the future')")
    too_new = r"postgresql://127\.0\.0\.1:\d+/\w+ has schema version 99"
    with pytest.raises(StoreUnavailable, match=too_new):
        PostgresLedger(pg_database, tmp_path)
