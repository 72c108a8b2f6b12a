"""The claim ledger: work items claimed exclusively by agents, with leases, heartbeats, fencing
tokens, priorities, dependencies and bounded attempts — one interface, two backends.

- Embedded (the default, nothing to configure): SQLite, `claims.sqlite3` in
  `REACTOR_COORDINATION_DIR` (`tasks.claims.sqlite.ClaimLedger`). One host.
- PostgreSQL, when `REACTOR_DATABASE_URL` is set (`tasks.claims.postgres.PostgresLedger`):
  several hosts share one queue.

`open_ledger(settings)` returns the configured one; every caller goes through it (or, for the
embedded case, `ClaimLedger(coordination_dir)`). The API and its guarantees are documented in
docs/ledger.md. Pure package (no Prefect).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

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
from tasks.claims.sqlite import ClaimLedger
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
    "ClaimLedger",
    "Ledger",
    "Snapshot",
    "Status",
    "WorkItem",
    "open_ledger",
]


@runtime_checkable
class Ledger(Protocol):
    """What both backends offer. Holder operations take the claim id (the fencing token) and
    raise `CoordinationConflict` when it is not the item's current claim."""

    backend: str  # "sqlite" | "postgres"
    coordination_dir: Path  # where snapshot() writes work_claims.json

    @property
    def where(self) -> str: ...  # the store, for messages (a path, or host:port/db)

    def add(self, items: Iterable[WorkItem | dict[str, Any]]) -> list[str]: ...
    def claim_next(
        self, agent_id: str, lease_s: float = ..., work_type: str | None = None
    ) -> Claim | None: ...
    def claim_many(
        self, agent_id: str, n: int, lease_s: float = ..., work_type: str | None = None
    ) -> list[Claim]: ...
    def claim(self, work_item_id: str, agent_id: str, lease_s: float = ...) -> Claim: ...
    def take(
        self,
        holder: str,
        limit: int,
        types: Iterable[str] | None = None,
        priority_at_least: str | None = None,
        lease_s: float = ...,
    ) -> list[Claim]: ...
    def assign(self, work_item_id: str, claim_id: str, agent_id: str) -> Claim: ...
    def heartbeat(self, work_item_id: str, claim_id: str, lease_s: float = ...) -> Claim: ...
    def resume_claim(self, work_item_id: str, claim_id: str, lease_s: float = ...) -> Claim: ...
    def progress(
        self, work_item_id: str, claim_id: str, percent: int, lease_s: float | None = None
    ) -> Claim: ...
    def complete(
        self,
        work_item_id: str,
        claim_id: str,
        result: Any = None,
        log_entry: dict[str, Any] | None = None,
    ) -> Claim: ...
    def complete_many(self, completions: Iterable[tuple[str, str, Any]]) -> list[Claim]: ...
    def flush_log(self) -> int: ...  # log entries a completion could not append yet
    def fail(self, work_item_id: str, claim_id: str, error: str) -> Claim: ...
    def release(self, work_item_id: str, claim_id: str) -> Claim: ...
    def get(self, work_item_id: str) -> Claim: ...
    def statuses(self, work_item_ids: Iterable[str]) -> dict[str, str]: ...
    def list(self, status: str | None = None, limit: int | None = None) -> list[Claim]: ...
    def holdings(self, holders: Iterable[str]) -> list[Claim]: ...
    def counts(self) -> dict[str, int]: ...
    def pending_types(self) -> dict[str, int]: ...
    def queue_depth(self) -> int: ...
    def oldest_pending_age_s(self) -> float | None: ...
    def blocked(self) -> dict[str, list[str]]: ...
    def snapshot(self) -> Snapshot: ...
    def close(self) -> None: ...
    def __enter__(self) -> Ledger: ...
    def __exit__(self, *exc: object) -> None: ...


def open_ledger(settings: Settings | None = None) -> Ledger:
    """The ledger of the configured backend: PostgreSQL when `REACTOR_DATABASE_URL` is set,
    else SQLite in the coordination dir. Close it (or use `with`) when done."""
    settings = settings or get_settings()
    if settings.database_dsn:
        from tasks.claims.postgres import PostgresLedger

        return PostgresLedger(settings.database_dsn, settings.coordination_dir)
    return ClaimLedger(settings.coordination_dir)
