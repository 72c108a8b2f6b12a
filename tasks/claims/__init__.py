"""The claim ledger: work items claimed exclusively by agents, with leases, heartbeats, fencing
tokens, priorities, dependencies and bounded attempts — one interface, two backends.

- Embedded (the default, nothing to configure): SQLite, `claims.sqlite3` in
  `REACTOR_COORDINATION_DIR` (`tasks.claims.sqlite.SqliteLedger`). One host.
- PostgreSQL, when `REACTOR_DATABASE_URL` is set (`tasks.claims.postgres.PostgresLedger`):
  several hosts share one queue.

`open_ledger(settings)` returns the configured one; every caller goes through it (or, for the
embedded case, `SqliteLedger(coordination_dir)`). The API and its guarantees: the base class
`tasks.claims.ledger.Ledger` (docs/ledger.md for the design). Pure package (no Prefect).
"""

from __future__ import annotations

from tasks.claims.ledger import Ledger
from tasks.claims.models import (
    CLAIMS_FILE,
    DB_FILE,
    DEFAULT_LEASE_S,
    DEFAULT_MAX_ATTEMPTS,
    FINISHED,
    HELD,
    PRIORITY_RANK,
    SEED_FIELDS,
    Claim,
    Status,
    WorkItem,
)
from tasks.claims.snapshot import Snapshot
from tasks.claims.sqlite import SqliteLedger
from tasks.settings import Settings, get_settings

__all__ = [
    "CLAIMS_FILE",
    "DB_FILE",
    "DEFAULT_LEASE_S",
    "DEFAULT_MAX_ATTEMPTS",
    "FINISHED",
    "HELD",
    "PRIORITY_RANK",
    "SEED_FIELDS",
    "Claim",
    "Ledger",
    "Snapshot",
    "SqliteLedger",
    "Status",
    "WorkItem",
    "open_ledger",
]


def open_ledger(settings: Settings | None = None) -> Ledger:
    """The ledger of the configured backend: PostgreSQL when `REACTOR_DATABASE_URL` is set,
    else SQLite in the coordination dir. Close it (or use `with`) when done."""
    settings = settings or get_settings()
    if settings.database_dsn:
        from tasks.claims.postgres import PostgresLedger

        return PostgresLedger(settings.database_dsn, settings.coordination_dir)
    return SqliteLedger(settings.coordination_dir)
