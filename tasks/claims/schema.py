"""Versioned schemas of both backends: ordered migrations, applied once, recorded.

SQLite records its version in `PRAGMA user_version` (a ledger made before versioning has
version 0 and its table already exists: migration 1 is `IF NOT EXISTS` and leaves it alone).
PostgreSQL records each applied migration in `reactor_schema_migrations`; the runner holds a
transaction-scoped advisory lock, so processes starting together apply each migration once.
A new version appends a migration to the list; it never edits an applied one.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from tasks.errors import StoreUnavailable


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


SQLITE_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "work items with leases",
        (
            """CREATE TABLE IF NOT EXISTS work_items (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                work_item_id TEXT NOT NULL UNIQUE,
                work_type TEXT NOT NULL,
                priority TEXT NOT NULL,
                rank INTEGER NOT NULL,
                description TEXT NOT NULL DEFAULT '',
                estimated_duration INTEGER NOT NULL DEFAULT 0,
                team TEXT NOT NULL DEFAULT 'swarm',
                payload TEXT NOT NULL DEFAULT '{}',
                status TEXT NOT NULL DEFAULT 'pending',
                agent_id TEXT,
                claim_id TEXT,
                claimed_at TEXT,
                lease_expires REAL,
                last_heartbeat TEXT,
                progress INTEGER NOT NULL DEFAULT 0,
                claims INTEGER NOT NULL DEFAULT 0,
                result TEXT,
                completed_at TEXT,
                trace_id TEXT,
                span_id TEXT
            )""",
            "CREATE INDEX IF NOT EXISTS work_items_claimable ON work_items (status, rank, seq)",
            "CREATE INDEX IF NOT EXISTS work_items_lease ON work_items (status, lease_expires)",
        ),
    ),
    Migration(
        2,
        "queue: dependencies, attempts, last error",
        (
            "ALTER TABLE work_items ADD COLUMN dependencies TEXT NOT NULL DEFAULT '[]'",
            # dependencies not completed yet: 0 = claimable once pending
            "ALTER TABLE work_items ADD COLUMN unmet INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE work_items ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE work_items ADD COLUMN max_attempts INTEGER NOT NULL DEFAULT 3",
            "ALTER TABLE work_items ADD COLUMN last_error TEXT",
            "ALTER TABLE work_items ADD COLUMN created_at REAL",
            """CREATE TABLE work_item_deps (
                work_item_id TEXT NOT NULL,
                depends_on TEXT NOT NULL,
                PRIMARY KEY (work_item_id, depends_on)
            ) WITHOUT ROWID""",
            "CREATE INDEX work_item_deps_on ON work_item_deps (depends_on)",
            "CREATE INDEX work_items_ready ON work_items (status, unmet, rank, seq)",
        ),
    ),
    Migration(
        3,
        "outbox of coordination log entries",
        (
            # a completion's log entry, committed with it; removed once the log has it
            """CREATE TABLE log_outbox (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                entry TEXT NOT NULL
            )""",
        ),
    ),
)

POSTGRES_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "work items, dependencies, leases, queue bookkeeping",
        (
            """CREATE TABLE reactor_work_items (
                seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                work_item_id TEXT NOT NULL UNIQUE,
                work_type TEXT NOT NULL,
                priority TEXT NOT NULL,
                rank SMALLINT NOT NULL,
                description TEXT NOT NULL DEFAULT '',
                estimated_duration BIGINT NOT NULL DEFAULT 0,
                team TEXT NOT NULL DEFAULT 'swarm',
                payload JSONB NOT NULL DEFAULT '{}',
                dependencies JSONB NOT NULL DEFAULT '[]',
                status TEXT NOT NULL DEFAULT 'pending',
                unmet INTEGER NOT NULL DEFAULT 0,
                agent_id TEXT,
                claim_id TEXT,
                claimed_at TIMESTAMPTZ,
                lease_expires TIMESTAMPTZ,
                last_heartbeat TIMESTAMPTZ,
                progress SMALLINT NOT NULL DEFAULT 0,
                claims INTEGER NOT NULL DEFAULT 0,
                attempts INTEGER NOT NULL DEFAULT 0,
                max_attempts INTEGER NOT NULL DEFAULT 3,
                last_error TEXT,
                result JSONB,
                created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                completed_at TIMESTAMPTZ,
                trace_id TEXT,
                span_id TEXT
            )""",
            # claim_next: the first ready item by priority (partial: only ready rows are in it)
            """CREATE INDEX reactor_work_items_ready ON reactor_work_items (rank, seq)
                WHERE status = 'pending' AND unmet = 0""",
            # take(): every pending item by priority, ready or waiting on its dependencies
            """CREATE INDEX reactor_work_items_pending ON reactor_work_items (rank, seq)
                WHERE status = 'pending'""",
            # reclaim: held items by lease expiry
            """CREATE INDEX reactor_work_items_lease ON reactor_work_items (lease_expires)
                WHERE status IN ('claimed', 'in_progress')""",
            "CREATE INDEX reactor_work_items_status ON reactor_work_items (status)",
            """CREATE TABLE reactor_work_item_deps (
                work_item_id TEXT NOT NULL,
                depends_on TEXT NOT NULL,
                PRIMARY KEY (work_item_id, depends_on)
            )""",
            "CREATE INDEX reactor_work_item_deps_on ON reactor_work_item_deps (depends_on)",
        ),
    ),
    Migration(
        2,
        "coordination log and agent registry",
        (
            """CREATE TABLE reactor_coordination_log (
                seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                idempotency_key TEXT UNIQUE,
                logged_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                entry JSONB NOT NULL
            )""",
            """CREATE TABLE reactor_agents (
                agent_id TEXT PRIMARY KEY,
                seq BIGINT GENERATED ALWAYS AS IDENTITY,
                status TEXT NOT NULL,
                last_heartbeat TIMESTAMPTZ NOT NULL,
                record JSONB NOT NULL
            )""",
            "CREATE INDEX reactor_agents_heartbeat ON reactor_agents (last_heartbeat)",
        ),
    ),
    Migration(
        3,
        "work items count their dependents",
        (
            # completing an item nothing depends on is one statement (postgres.sql)
            "ALTER TABLE reactor_work_items ADD COLUMN dependents INTEGER NOT NULL DEFAULT 0",
            """UPDATE reactor_work_items w SET dependents = d.n FROM (SELECT depends_on,
                count(*) AS n FROM reactor_work_item_deps GROUP BY depends_on) d
                WHERE w.work_item_id = d.depends_on""",
        ),
    ),
    Migration(
        4,
        "claims and completions maintain fewer indexes",
        (
            # every claim and completion changes `status`, so each added an entry here (that
            # scans then stepped over); only `blocked` and `list(status="failed")` look it up
            "DROP INDEX reactor_work_items_status",
            """CREATE INDEX reactor_work_items_failed ON reactor_work_items (seq)
                WHERE status = 'failed'""",
            # room on each page: an update's new row version stays on its page
            "ALTER TABLE reactor_work_items SET (fillfactor = 80)",
        ),
    ),
)

SQLITE_VERSION = SQLITE_MIGRATIONS[-1].version
POSTGRES_VERSION = POSTGRES_MIGRATIONS[-1].version
# pg_advisory_xact_lock key for the migration runner ("reactor" in ASCII, as an int64)
_ADVISORY_KEY = 0x7265616374
_CREATE_TABLE = """CREATE TABLE IF NOT EXISTS reactor_schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)"""


def _too_new(where: str, version: int, known: int) -> StoreUnavailable:
    return StoreUnavailable(
        f"{where} has schema version {version}, newer than this version of reactor-flows "
        f"knows ({known}); upgrade reactor-flows on this host"
    )


def migrate_sqlite(
    db: sqlite3.Connection,
    migrations: tuple[Migration, ...] = SQLITE_MIGRATIONS,
    where: str = "the ledger",
) -> list[int]:
    """Apply the migrations newer than the database's `user_version`, inside the caller's
    write transaction; returns the versions applied."""
    current = db.execute("PRAGMA user_version").fetchone()[0]
    if current > migrations[-1].version:
        raise _too_new(where, current, migrations[-1].version)
    applied = []
    for migration in migrations:
        if migration.version <= current:
            continue
        for statement in migration.statements:
            db.execute(statement)
        db.execute(f"PRAGMA user_version = {int(migration.version)}")
        applied.append(migration.version)
    return applied


def migrate_postgres(
    conn: Any, migrations: tuple[Migration, ...] = POSTGRES_MIGRATIONS, where: str = "the database"
) -> list[int]:
    """Apply the migrations not yet recorded in `reactor_schema_migrations` (each in its own
    savepoint, all in one transaction under the advisory lock, so processes starting together
    apply each once); returns the versions applied by this call."""
    applied: list[int] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_ADVISORY_KEY,))
        conn.execute(_CREATE_TABLE)
        done = {r[0] for r in conn.execute("SELECT version FROM reactor_schema_migrations")}
        if done and max(done) > migrations[-1].version:
            raise _too_new(where, max(done), migrations[-1].version)
        for migration in migrations:
            if migration.version in done:
                continue
            with conn.transaction():
                for statement in migration.statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO reactor_schema_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
            applied.append(migration.version)
    return applied


def postgres_versions(conn: Any) -> list[int]:
    rows = conn.execute("SELECT version FROM reactor_schema_migrations ORDER BY version")
    return [r[0] for r in rows]
