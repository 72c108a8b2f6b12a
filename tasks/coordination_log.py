"""The coordination log: the append-only record every scenario writes its outcomes to.

Swarm completions use the classic fields (work_item_id, completed_at, agent_id, result,
velocity_points); other scenarios add an entry with `scenario`, `run_id` and their own fields.

Two backends, chosen like the ledger's:

- Embedded: `coordination_log.jsonl` in the coordination dir, one entry per line, appended in
  one write (`tasks.jsonl`) — an append costs the entry, not the log (the original
  `coordination_log.json` array was rewritten whole on every completion). A log written by
  that older version is still read, before the JSONL entries.
- PostgreSQL (`REACTOR_DATABASE_URL`): the `reactor_coordination_log` table.

Idempotency: an entry may carry `idempotency_key` (e.g. `swarm:<run_id>:<work_item_id>`, see
`idempotency_key()`); appending an entry whose key is already in the log records nothing, so a
task retried after a crash cannot log its completion twice. PostgreSQL enforces it with a
unique index. Embedded, the keys and the entry count live in a small SQLite index beside the
log (`coordination_log.index.sqlite3`, derived data: deleted, it is rebuilt from the log), and
the append, the key check and the index update happen under one file lock. The index records
the log's size after each append, so entries appended by a writer that died before updating
the index are found (a scan of the tail only) before the next append.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import Timeout

from tasks.errors import CorruptStore, LockTimeout
from tasks.jsonl import append_jsonl, iter_jsonl
from tasks.redaction import dumps_redacted
from tasks.settings import Settings, get_settings
from tasks.store import JsonStore, file_lock

LOG_FILE = "coordination_log.jsonl"
LEGACY_FILE = "coordination_log.json"  # the array form of earlier versions, still read
INDEX_FILE = "coordination_log.index.sqlite3"
KEY = "idempotency_key"


def idempotency_key(*parts: object) -> str:
    """A key from its parts, e.g. `idempotency_key("swarm", run_id, work_item_id)`."""
    return ":".join(str(p) for p in parts)


def log_path(settings: Settings | None = None) -> Path:
    return (settings or get_settings()).coordination_dir / LOG_FILE


def append_entries(entries: Iterable[dict[str, Any]], settings: Settings | None = None) -> int:
    """Append `entries` (a `logged_at` timestamp is added when missing), skipping any whose
    `idempotency_key` is already logged; returns the log size."""
    settings = settings or get_settings()
    now = datetime.now(UTC).isoformat()
    new = _distinct([{"logged_at": now, **e} for e in entries])
    if settings.database_dsn:
        return _pg_append(settings.database_dsn, new)
    return _file_append(settings, new)


def read_log(settings: Settings | None = None) -> list[dict[str, Any]]:
    """Every entry, oldest first."""
    settings = settings or get_settings()
    if settings.database_dsn:
        return _pg_read(settings.database_dsn)
    return _distinct(list(_file_entries(settings.coordination_dir)))


def _distinct(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entries without a repeated idempotency key (first wins)."""
    seen: set[str] = set()
    out = []
    for e in entries:
        key = e.get(KEY)
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        out.append(e)
    return out


# -- embedded: JSON Lines + a derived index ------------------------------------------------------
def _file_entries(coordination_dir: Path) -> Iterator[dict[str, Any]]:
    legacy = coordination_dir / LEGACY_FILE
    if legacy.exists():
        yield from JsonStore(legacy, list).read()
    try:
        yield from iter_jsonl(coordination_dir / LOG_FILE)
    except ValueError as exc:
        raise CorruptStore(f"{exc}; it was left untouched — repair or remove that line") from None


def append_to_dir(directory: Path, entries: Iterable[dict[str, Any]], timeout_s: float) -> int:
    """Append to the embedded log in `directory` (what the SQLite ledger logs its completions
    to, whatever the process's settings say)."""
    now = datetime.now(UTC).isoformat()
    rows = _distinct([{"logged_at": now, **e} for e in entries])
    return _append_file(Path(directory), rows, timeout_s)


def _file_append(settings: Settings, entries: list[dict[str, Any]]) -> int:
    return _append_file(settings.coordination_dir, entries, settings.lock_timeout_s)


def _append_file(directory: Path, entries: list[dict[str, Any]], timeout_s: float) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOG_FILE
    lock = file_lock(f"{path}.lock")
    try:
        lock.acquire(timeout=timeout_s)
    except Timeout as exc:
        raise LockTimeout(f"could not lock {path} within {timeout_s:.1f} s") from exc
    try:
        with _index(directory) as index:
            _catch_up(index, path)
            fresh = [e for e in entries if e.get(KEY) is None or not _has_key(index, e[KEY])]
            if fresh:
                append_jsonl(path, fresh)
                _record(index, fresh, path.stat().st_size)
            return index.execute("SELECT value FROM meta WHERE name = 'entries'").fetchone()[0]
    finally:
        lock.release()


@contextlib.contextmanager
def _index(directory: Path) -> Iterator[sqlite3.Connection]:
    path = directory / INDEX_FILE
    created = not path.exists()
    db = sqlite3.connect(path, isolation_level=None)
    try:
        try:
            db.execute("CREATE TABLE IF NOT EXISTS keys (key TEXT PRIMARY KEY) WITHOUT ROWID")
            db.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER)")
        except sqlite3.DatabaseError as exc:
            raise CorruptStore(
                f"{path} is not a readable SQLite database ({exc}); it is derived from the "
                "log: delete it and it is rebuilt"
            ) from None
        if created or db.execute("SELECT COUNT(*) FROM meta").fetchone()[0] == 0:
            _rebuild(db, directory)
        yield db
    finally:
        db.close()


def _rebuild(db: sqlite3.Connection, directory: Path) -> None:
    """Index every entry already in the legacy array and the JSONL log."""
    entries = list(_file_entries(directory))
    log = directory / LOG_FILE
    size = log.stat().st_size if log.exists() else 0
    db.execute("BEGIN")
    db.execute("DELETE FROM keys")
    db.executemany(
        "INSERT OR IGNORE INTO keys VALUES (?)", [(e[KEY],) for e in entries if e.get(KEY)]
    )
    db.execute("INSERT OR REPLACE INTO meta VALUES ('entries', ?)", (len(_distinct(entries)),))
    db.execute("INSERT OR REPLACE INTO meta VALUES ('log_bytes', ?)", (size,))
    db.execute("COMMIT")


def _catch_up(db: sqlite3.Connection, path: Path) -> None:
    """Bring the index up to date with lines appended after its last update (a writer that
    died in between), and cut a torn last line (a writer killed mid-write) so the next append
    starts on a line of its own."""
    size = path.stat().st_size if path.exists() else 0
    indexed = db.execute("SELECT value FROM meta WHERE name = 'log_bytes'").fetchone()[0]
    if size < indexed:  # the log was truncated or replaced: index it again
        _rebuild(db, path.parent)
        return
    if size == indexed:
        return
    with open(path, "rb+") as fh:
        fh.seek(indexed)
        tail = fh.read()
        whole = tail[: tail.rfind(b"\n") + 1]
        if len(whole) < len(tail):
            fh.truncate(indexed + len(whole))
    lines = [json.loads(line) for line in whole.splitlines() if line.strip()]
    _record(db, lines, indexed + len(whole))


def _has_key(db: sqlite3.Connection, key: str) -> bool:
    return db.execute("SELECT 1 FROM keys WHERE key = ?", (key,)).fetchone() is not None


def _record(db: sqlite3.Connection, entries: list[dict[str, Any]], log_bytes: int) -> None:
    db.execute("BEGIN")
    db.executemany(
        "INSERT OR IGNORE INTO keys VALUES (?)", [(e[KEY],) for e in entries if e.get(KEY)]
    )
    db.execute("UPDATE meta SET value = value + ? WHERE name = 'entries'", (len(entries),))
    db.execute("UPDATE meta SET value = ? WHERE name = 'log_bytes'", (log_bytes,))
    db.execute("COMMIT")


# -- PostgreSQL --------------------------------------------------------------------------------
def _pg_append(dsn: str, entries: list[dict[str, Any]]) -> int:
    from tasks.claims.pg import connection

    with connection(dsn) as conn:
        insert_pg(conn, entries)
        return conn.execute("SELECT count(*) AS n FROM reactor_coordination_log").fetchone()["n"]


def insert_pg(conn: Any, entries: Iterable[dict[str, Any]]) -> None:
    """Insert `entries` on an open psycopg connection, inside the caller's transaction (the
    ledger completes an item and logs it in one), skipping keys already logged."""
    from psycopg.types.json import Jsonb

    now = datetime.now(UTC).isoformat()
    rows = _distinct([{"logged_at": now, **e} for e in entries])
    if rows:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO reactor_coordination_log (idempotency_key, logged_at, entry) "
                "VALUES (%s, %s, %s) ON CONFLICT (idempotency_key) DO NOTHING",
                [(e.get(KEY), e["logged_at"], Jsonb(e, dumps=_dumps)) for e in rows],
            )


def _pg_read(dsn: str) -> list[dict[str, Any]]:
    from tasks.claims.pg import connection

    with connection(dsn) as conn:
        rows = conn.execute("SELECT entry FROM reactor_coordination_log ORDER BY seq")
        return [r["entry"] for r in rows]


def _dumps(value: Any) -> str:
    return dumps_redacted(value, default=str)  # no known secret in the table either


__all__ = [
    "KEY",
    "LOG_FILE",
    "append_entries",
    "append_to_dir",
    "idempotency_key",
    "insert_pg",
    "log_path",
    "read_log",
]
