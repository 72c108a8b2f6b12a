"""The embedded ledger: one SQLite database, `claims.sqlite3` in the coordination dir.

Design (why SQLite and not one JSON file). The first design kept every claim in
`work_claims.json` and rewrote the whole file under a lock for each claim: a claim cost O(all
claims) of parsing, serialising and fsyncing (`bench/claims_bench.py` keeps that design as its
baseline). Here:

- WAL journal, `BEGIN IMMEDIATE` for every mutation: SQLite's write lock makes each operation
  atomic and exclusive across threads and processes; readers never block. Writers queue on a
  blocking `flock` first, so contending processes get even shares (fairness 1.1-1.2 instead of
  1.8-2.1 with SQLite's sleep-and-poll busy handler, for ~20 % less throughput). The wait is
  bounded by `busy_timeout_s` (`LockTimeout` naming the lock file): a stopped or hung holder
  cannot freeze every writer, lease keepers included.
  `synchronous=NORMAL` (the default) keeps commits consistent after a process crash (SIGKILL);
  only an OS crash may lose the last commits, never corrupt the ledger. `FULL` fsyncs each
  commit (the bench compares both against the fsync-per-claim baseline).
- `claim_next` is two index lookups — the first expired lease or the first ready pending item
  in priority order — and one UPDATE, so its cost does not grow with the number of items.
- One connection and one lock descriptor per ledger and process, shared by its threads under a
  mutex, closed by `close()` (or the context manager, or garbage collection): a ledger made per
  Prefect task leaves no descriptor behind.

SQLite is for one host: its WAL does not work over a network filesystem. Several hosts share
a PostgreSQL ledger (`tasks.claims.postgres`). Pure module (no Prefect).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from tasks.claims.models import (
    DB_FILE,
    DEFAULT_LEASE_S,
    FINISHED,
    HELD,
    LEASE_LAPSED,
    PRIORITY_RANK,
    Claim,
    WorkItem,
    checked_lease,
    checked_limit,
    claim_from_row,
    current_telemetry,
    now_iso,
    stored_error,
    stored_result,
)
from tasks.claims.schema import SQLITE_MIGRATIONS, SQLITE_VERSION, migrate_sqlite
from tasks.claims.selection import (
    Row,
    coerce_items,
    distinct_completions,
    plan_take,
    referenced_ids,
    resume_refused,
    stale_message,
    validate_new_items,
)
from tasks.claims.snapshot import Snapshot, ensure_dir, write_snapshot
from tasks.coordination_log import append_to_dir
from tasks.errors import CoordinationConflict, CorruptStore, InvalidInput, LockTimeout
from tasks.ids import new_id

_CHUNK = 500  # ids per IN (...) list (SQLite's default limit is 999 parameters)
# result codes that mean the file is not a usable database (not "busy" or "locked")
_CORRUPT_CODES = {"SQLITE_CORRUPT", "SQLITE_NOTADB"}
# what a lapsed lease leaves as `last_error` (SQL over the row's old values)
_LAPSED_ERROR = (
    f"'{LEASE_LAPSED} under claim ' || claim_id || ' by ' || COALESCE(agent_id, '?') || "
    "' (its holder died or hung)'"
)
_LAPSED = "status IN ('claimed','in_progress') AND lease_expires < ?"
log = logging.getLogger(__name__)


class _Handle:
    """The connection and flock descriptor of one ledger in one process."""

    def __init__(self, path: Path, timeout_s: float, synchronous: str) -> None:
        self.pid = os.getpid()
        self.lock_fd: int | None = None
        self.lock_path = f"{path}.lock"
        # shared by the ledger's threads under `mutex` (never concurrently), closable from any
        self.conn = sqlite3.connect(
            path, timeout=timeout_s, isolation_level=None, check_same_thread=False
        )
        self.conn.row_factory = sqlite3.Row
        self.mutex = threading.RLock()
        try:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute(f"PRAGMA synchronous={synchronous}")
        except BaseException:
            self.conn.close()
            raise
        self.lock_fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def lock(self, timeout_s: float) -> Callable[[], None]:
        """Take the exclusive flock within `timeout_s`; returns what releases it.

        Uncontended, one non-blocking flock. Contended, a daemon thread queues on a blocking
        flock of a descriptor of its own (the kernel wakes waiters in turn, which keeps the
        shares even), and the caller waits for it at most `timeout_s`: a holder that is stopped
        (SIGSTOP) or hung makes this a `LockTimeout`, and the thread, once it gets the lock
        after all, drops it at once."""
        assert self.lock_fd is not None
        try:
            fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fd = self.lock_fd
            return lambda: fcntl.flock(fd, fcntl.LOCK_UN)
        except BlockingIOError:
            pass
        waiter = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        got, handoff, abandoned = threading.Event(), threading.Lock(), [False]

        def wait() -> None:
            try:
                fcntl.flock(waiter, fcntl.LOCK_EX)
            except OSError:
                os.close(waiter)
                return
            with handoff:
                if abandoned[0]:
                    os.close(waiter)  # the caller gave up: closing drops the lock
                else:
                    got.set()

        threading.Thread(target=wait, name="ledger-flock", daemon=True).start()
        got.wait(timeout_s)
        with handoff:
            if not got.is_set():
                abandoned[0] = True
                raise LockTimeout(
                    f"could not lock {self.lock_path} within {timeout_s:g} s: another process "
                    "holds the ledger's write lock (stopped or hung?); nothing was changed"
                )
        return lambda: os.close(waiter)

    def close(self) -> None:
        if self.pid != os.getpid():
            return  # inherited across fork: the parent owns it
        self.conn.close()
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None


def _close_handle(box: list[_Handle | None]) -> None:
    handle, box[0] = box[0], None
    if handle is not None:
        handle.close()


class ClaimLedger:
    """Exclusive, leased, fenced claims on work items in `claims.sqlite3`, shared by threads
    and processes of one host. Use it as a context manager (or call `close()`)."""

    backend = "sqlite"

    def __init__(
        self,
        coordination_dir: Path | str,
        busy_timeout_s: float = 60.0,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
    ) -> None:
        self.coordination_dir = Path(coordination_dir)
        self.path = self.coordination_dir / DB_FILE
        self.busy_timeout_s = busy_timeout_s
        self.synchronous = synchronous
        self._box: list[_Handle | None] = [None]
        self._box_lock = threading.Lock()
        self._finalizer = weakref.finalize(self, _close_handle, self._box)
        ensure_dir(self.coordination_dir)
        try:
            with self._read() as db:
                version = db.execute("PRAGMA user_version").fetchone()[0]
            if version != SQLITE_VERSION:
                with self._write() as db:
                    migrate_sqlite(db, SQLITE_MIGRATIONS, str(self.path))
        except BaseException:
            self.close()
            raise
        self._flush_log_quietly()  # entries a crashed or blocked append left behind

    @property
    def where(self) -> str:
        return str(self.path)

    # -- connection, locking, errors ---------------------------------------------------------
    def _handle(self) -> _Handle:
        with self._box_lock:
            handle = self._box[0]
            if handle is None or handle.pid != os.getpid():
                handle = self._box[0] = _Handle(self.path, self.busy_timeout_s, self.synchronous)
            return handle

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """Turn SQLite's "not a database"/"malformed" into one line naming the file."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            if getattr(exc, "sqlite_errorname", None) in _CORRUPT_CODES:
                raise CorruptStore(
                    f"{self.path} is not a readable SQLite database ({exc}); it was left "
                    "untouched — restore it from a backup, or move it aside to start an empty "
                    "ledger"
                ) from None
            raise

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._guard():
            handle = self._handle()
            with handle.mutex:
                yield handle.conn

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction holding SQLite's write lock (exclusive across processes).

        Writers first queue on a blocking `flock` of `claims.sqlite3.lock`: the kernel wakes a
        waiter as soon as the lock is free, where SQLite's own busy handler sleeps and polls —
        which left one of 8 contending processes with 1.8x its fair share of claims
        (bench/claims_bench.py). The kernel drops the lock of a killed process."""
        with self._guard():
            handle = self._handle()
            with handle.mutex:
                unlock = handle.lock(self.busy_timeout_s)
                try:
                    db = handle.conn
                    db.execute("BEGIN IMMEDIATE")
                    try:
                        yield db
                    except BaseException:
                        db.execute("ROLLBACK")
                        raise
                    db.execute("COMMIT")
                finally:
                    unlock()

    def close(self) -> None:
        """Close the connection and the lock descriptor (a later call reopens them)."""
        with self._box_lock:
            _close_handle(self._box)

    def __enter__(self) -> ClaimLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- producers ---------------------------------------------------------------------------
    def add(self, items: Iterable[WorkItem | dict[str, Any]]) -> list[str]:
        """Add pending items, all or none (see `selection.validate_new_items` for what is
        rejected); returns their ids."""
        rows = coerce_items(items)
        if not rows:
            return []
        now = time.time()
        with self._write() as db:
            unmet = validate_new_items(rows, self._statuses(db, referenced_ids(rows)))
            db.executemany(
                "INSERT INTO work_items (work_item_id, work_type, priority, rank, description,"
                " estimated_duration, team, payload, dependencies, unmet, max_attempts,"
                " created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                [
                    (r.work_item_id, r.work_type, r.priority, PRIORITY_RANK[r.priority],
                     r.description, r.estimated_duration, r.team, json.dumps(r.payload),
                     json.dumps(r.dependencies), unmet[r.work_item_id], r.max_attempts, now)
                    for r in rows
                ],
            )  # fmt: skip
            db.executemany(
                "INSERT INTO work_item_deps (work_item_id, depends_on) VALUES (?, ?)",
                [(r.work_item_id, d) for r in rows for d in r.dependencies],
            )
        return [r.work_item_id for r in rows]

    # -- claiming ----------------------------------------------------------------------------
    def claim_next(
        self, agent_id: str, lease_s: float = DEFAULT_LEASE_S, work_type: str | None = None
    ) -> Claim | None:
        """Claim the most urgent claimable item — one whose lease expired (its claimer died),
        else the first ready pending one by priority then insertion order — or None."""
        got = self.claim_many(agent_id, 1, lease_s, work_type)
        return got[0] if got else None

    def claim_many(
        self, agent_id: str, n: int, lease_s: float = DEFAULT_LEASE_S, work_type: str | None = None
    ) -> list[Claim]:
        """Claim up to `n` items at once, in `claim_next` order, each with its own token."""
        lease_s = checked_lease(lease_s)
        now = time.time()
        type_filter, args = ("AND work_type = ?", [work_type]) if work_type else ("", [])
        with self._write() as db:
            self._dead_letter(db, now, type_filter, args)
            seqs = [
                r[0]
                for r in db.execute(
                    "SELECT seq FROM work_items WHERE status IN ('claimed','in_progress') "
                    f"AND lease_expires < ? AND unmet = 0 {type_filter} "
                    "ORDER BY lease_expires LIMIT ?",
                    [now, *args, n],
                )
            ]
            if len(seqs) < n:
                seqs += [
                    r[0]
                    for r in db.execute(
                        "SELECT seq FROM work_items WHERE status = 'pending' AND unmet = 0 "
                        f"{type_filter} ORDER BY rank, seq LIMIT ?",
                        [*args, n - len(seqs)],
                    )
                ]
            return self._take_rows(db, seqs, agent_id, lease_s, now)

    def claim(self, work_item_id: str, agent_id: str, lease_s: float = DEFAULT_LEASE_S) -> Claim:
        """Claim one named item, whatever its dependencies (the caller orders execution);
        CoordinationConflict if another agent holds a live lease or it is finished. Claiming an
        item this agent already holds re-claims it: the old token becomes stale."""
        lease_s = checked_lease(lease_s)
        now = time.time()
        with self._write() as db:
            self._dead_letter(db, now, "AND work_item_id = ?", [work_item_id])
            row = self._row(db, work_item_id)
            lease = row["lease_expires"]
            held = row["status"] in HELD and (lease is None or lease >= now)
            if not (row["status"] in FINISHED or (held and row["agent_id"] != agent_id)):
                return self._take_rows(db, [row["seq"]], agent_id, lease_s, now)[0]
        # refused after the commit: a lapsed lease failed for good above stays failed
        raise CoordinationConflict(
            f"{work_item_id} is {row['status']} by {row['agent_id']}; "
            "only a pending item or an expired lease can be claimed"
        )

    def take(
        self,
        holder: str,
        limit: int,
        types: Iterable[str] | None = None,
        priority_at_least: str | None = None,
        lease_s: float = DEFAULT_LEASE_S,
    ) -> list[Claim]:
        """Claim, for `holder` (a drain run), up to `limit` claimable items — pending, or with
        an expired lease — of `types` and at least `priority_at_least`, closed under
        dependencies: each item's dependencies are completed or taken with it. Priority order,
        dependencies before their dependents. Atomic: concurrent takes never share an item."""
        lease_s = checked_lease(lease_s)
        if limit <= 0:
            return []
        now = time.time()
        where, args = _filters(types, priority_at_least)
        cols = "SELECT work_item_id, rank, seq, unmet FROM work_items"
        claimable = (
            "(status = 'pending' OR (status IN ('claimed','in_progress') AND lease_expires < ?))"
        )
        seq_of: dict[str, int] = {}

        def rows(cursor: sqlite3.Cursor) -> list[Row]:
            out = [Row(*r) for r in cursor]
            seq_of.update((r.work_item_id, r.seq) for r in out)
            return out

        def fetch_page(after: tuple[int, int] | None, n: int) -> list[Row]:
            keyset, more = ("AND (rank, seq) > (?, ?)", list(after)) if after else ("", [])
            return rows(
                db.execute(
                    f"{cols} WHERE status = 'pending' {keyset} {where} ORDER BY rank, seq LIMIT ?",
                    [*more, *args, n],
                )
            )

        def fetch_ids(ids: list[str]) -> list[Row]:
            out: list[Row] = []
            for chunk in range(0, len(ids), _CHUNK):
                part = ids[chunk : chunk + _CHUNK]
                marks = ",".join("?" * len(part))
                out += rows(
                    db.execute(
                        f"{cols} WHERE work_item_id IN ({marks}) AND {claimable} {where}",
                        [*part, now, *args],
                    )
                )
            return out

        with self._write() as db:
            self._dead_letter(db, now, where, args)
            expired = rows(
                db.execute(
                    f"{cols} WHERE status IN ('claimed','in_progress') AND lease_expires < ? "
                    f"{where} ORDER BY lease_expires",
                    [now, *args],
                )
            )
            chosen = plan_take(
                limit, expired, fetch_page, fetch_ids, lambda ids: self._waiting_on(db, ids)
            )
            return self._take_rows(db, [seq_of[w] for w in chosen], holder, lease_s, now)

    def assign(self, work_item_id: str, claim_id: str, agent_id: str) -> Claim:
        """Hand a held claim (e.g. taken by a drain run) to `agent_id`, keeping its token."""
        with self._write() as db:
            self._owned(db, work_item_id, claim_id)
            db.execute(
                "UPDATE work_items SET agent_id = ? WHERE work_item_id = ?",
                (agent_id, work_item_id),
            )
            return self._claim(db, work_item_id)

    # -- holder operations (fenced by the claim id) ------------------------------------------
    def heartbeat(
        self, work_item_id: str, claim_id: str, lease_s: float = DEFAULT_LEASE_S
    ) -> Claim:
        """Extend the holder's lease by `lease_s` from now."""
        lease_s = checked_lease(lease_s)
        with self._write() as db:
            self._owned(db, work_item_id, claim_id)
            return self._renew(db, work_item_id, lease_s)

    def resume_claim(
        self, work_item_id: str, claim_id: str, lease_s: float = DEFAULT_LEASE_S
    ) -> Claim:
        """Take back a claim a dead attempt of the same run held (`claim_id` is the token it
        got): still held under that token, expired or not, its lease is renewed from now; already
        finished under it (completed, or failed for good), the item is returned as it is (its
        status says which); anything else is a CoordinationConflict saying who has it now."""
        lease_s = checked_lease(lease_s)
        with self._write() as db:
            row = self._row(db, work_item_id)
            if row["claim_id"] == claim_id and row["status"] in FINISHED:
                return claim_from_row(row)
            if row["status"] not in HELD or row["claim_id"] != claim_id:
                raise CoordinationConflict(resume_refused(work_item_id, claim_id, row))
            return self._renew(db, work_item_id, lease_s)

    def _renew(self, db: sqlite3.Connection, work_item_id: str, lease_s: float) -> Claim:
        """The held item's lease runs `lease_s` from now (the caller checked the holder)."""
        db.execute(
            "UPDATE work_items SET lease_expires = ?, last_heartbeat = ? WHERE work_item_id = ?",
            (time.time() + lease_s, now_iso(), work_item_id),
        )
        return self._claim(db, work_item_id)

    def progress(
        self, work_item_id: str, claim_id: str, percent: int, lease_s: float | None = None
    ) -> Claim:
        """Record progress (0-100); the item becomes in_progress (and its lease is renewed by
        `lease_s` when given)."""
        if not 0 <= percent <= 100:
            raise InvalidInput(f"progress must be within 0..100, got {percent}")
        if lease_s is not None:
            lease_s = checked_lease(lease_s)
        with self._write() as db:
            row = self._owned(db, work_item_id, claim_id)
            lease = time.time() + lease_s if lease_s else row["lease_expires"]
            db.execute(
                "UPDATE work_items SET status = 'in_progress', progress = ?, "
                "lease_expires = ?, last_heartbeat = ? WHERE work_item_id = ?",
                (percent, lease, now_iso(), work_item_id),
            )
            return self._claim(db, work_item_id)

    def complete(
        self,
        work_item_id: str,
        claim_id: str,
        result: Any = None,
        log_entry: dict[str, Any] | None = None,
    ) -> Claim:
        """Mark the item completed with `result`; only the current claim may. `log_entry` is
        kept in the ledger's outbox in the same transaction and appended to this directory's
        coordination log right after the commit (a JSONL file cannot share the transaction).
        An append that fails there (the log locked too long, a full disk) leaves the entry in
        the outbox: the completion stands, and the next completion or opening of this ledger
        appends it (its idempotency key makes a repeat harmless)."""
        logged = [log_entry] if log_entry else []
        claim = self._complete([(work_item_id, claim_id, result)], logged)[0]
        if logged:
            self._flush_log_quietly()
        return claim

    def complete_many(self, completions: Iterable[tuple[str, str, Any]]) -> list[Claim]:
        """Complete several held items in one transaction, all or none: any stale token is a
        CoordinationConflict naming it, an item named twice is an InvalidInput, and nothing is
        completed."""
        return self._complete(list(completions), [])

    def _complete(
        self, batch: list[tuple[str, str, Any]], log_entries: list[dict[str, Any]]
    ) -> list[Claim]:
        if not batch:
            return []
        distinct_completions(batch)
        results = [(stored_result(r), w) for w, _, r in batch]  # refused before any write
        finished = now_iso()
        with self._write() as db:
            for wid, claim_id, _ in batch:
                self._owned(db, wid, claim_id)
            db.executemany(
                "UPDATE work_items SET status = 'completed', progress = 100, result = ?, "
                "completed_at = ?, lease_expires = NULL WHERE work_item_id = ?",
                [(r, finished, w) for r, w in results],
            )
            db.executemany(
                "UPDATE work_items SET unmet = unmet - 1 WHERE work_item_id IN "
                "(SELECT work_item_id FROM work_item_deps WHERE depends_on = ?)",
                [(w,) for w, _, _ in batch],
            )
            db.executemany(
                "INSERT INTO log_outbox (entry) VALUES (?)",
                [(json.dumps(e, default=str),) for e in log_entries],
            )
            return [self._claim(db, w) for w, _, _ in batch]

    def flush_log(self) -> int:
        """Append the outbox's log entries to the coordination log, then drop them from the
        outbox; how many were appended (a keyed entry already logged is recorded once)."""
        with self._read() as db:
            rows = db.execute("SELECT id, entry FROM log_outbox ORDER BY id").fetchall()
        if not rows:
            return 0
        append_to_dir(self.coordination_dir, [json.loads(r[1]) for r in rows], self.busy_timeout_s)
        with self._write() as db:
            db.execute("DELETE FROM log_outbox WHERE id <= ?", (rows[-1][0],))
        return len(rows)

    def _flush_log_quietly(self) -> None:
        """`flush_log`, with a failure logged instead of raised: the completions are
        committed, and their entries wait in the outbox for the next try."""
        try:
            self.flush_log()
        except Exception as exc:
            log.warning(
                "the completions are committed; their coordination log entries wait in %s "
                "(appended at the next completion or opening of this ledger): %s",
                self.path,
                exc,
            )

    def fail(self, work_item_id: str, claim_id: str, error: str) -> Claim:
        """Count a failed attempt: below `max_attempts` the item is pending again (with
        `last_error`); at `max_attempts` it is failed for good."""
        error = stored_error(error)
        with self._write() as db:
            row = self._owned(db, work_item_id, claim_id)
            if row["attempts"] + 1 >= row["max_attempts"]:
                db.execute(
                    "UPDATE work_items SET status = 'failed', attempts = attempts + 1, "
                    "last_error = ?, result = ?, completed_at = ?, lease_expires = NULL "
                    "WHERE work_item_id = ?",
                    (error, stored_result({"error": error}), now_iso(), work_item_id),
                )
            else:
                db.execute(
                    "UPDATE work_items SET status = 'pending', attempts = attempts + 1, "
                    "last_error = ?, agent_id = NULL, claim_id = NULL, lease_expires = NULL, "
                    "progress = 0 WHERE work_item_id = ?",
                    (error, work_item_id),
                )
            return self._claim(db, work_item_id)

    def release(self, work_item_id: str, claim_id: str) -> Claim:
        """Give the claim back: the item is pending again (no attempt is counted)."""
        with self._write() as db:
            self._owned(db, work_item_id, claim_id)
            db.execute(
                "UPDATE work_items SET status = 'pending', agent_id = NULL, claim_id = NULL, "
                "lease_expires = NULL, progress = 0 WHERE work_item_id = ?",
                (work_item_id,),
            )
            return self._claim(db, work_item_id)

    # -- reading -----------------------------------------------------------------------------
    def get(self, work_item_id: str) -> Claim:
        with self._read() as db:
            return claim_from_row(self._row(db, work_item_id))

    def statuses(self, work_item_ids: Iterable[str]) -> dict[str, str]:
        with self._read() as db:
            return self._statuses(db, list(work_item_ids))

    def list(self, status: str | None = None, limit: int | None = None) -> list[Claim]:
        limit = checked_limit(limit)
        sql = "SELECT * FROM work_items"
        args: list[Any] = []
        if status:
            sql += " WHERE status = ?"
            args.append(status)
        sql += " ORDER BY seq"
        if limit:
            sql += " LIMIT ?"
            args.append(limit)
        with self._read() as db:
            return [claim_from_row(r) for r in db.execute(sql, args)]

    def holdings(self, holders: Iterable[str]) -> list[Claim]:
        """Every item held, or finished, under a claim of one of `holders` (agents, or a drain
        run's id): what a resumed run's dead attempt had, in insertion order. An item given
        back (released, a failed attempt) is no one's. Scans the table (a resume does it once)."""
        wanted = list(dict.fromkeys(holders))
        rows: list[sqlite3.Row] = []
        with self._read() as db:
            for chunk in range(0, len(wanted), _CHUNK):
                part = wanted[chunk : chunk + _CHUNK]
                marks = ",".join("?" * len(part))
                rows += db.execute(
                    f"SELECT * FROM work_items WHERE agent_id IN ({marks}) "
                    "AND claim_id IS NOT NULL",
                    part,
                ).fetchall()
        return [claim_from_row(r) for r in sorted(rows, key=lambda r: r["seq"])]

    def counts(self) -> dict[str, int]:
        with self._read() as db:
            rows = db.execute("SELECT status, COUNT(*) FROM work_items GROUP BY status")
            return {r[0]: r[1] for r in rows}

    def pending_types(self) -> dict[str, int]:
        """Pending items per work type (what a drain must be able to run)."""
        with self._read() as db:
            rows = db.execute(
                "SELECT work_type, COUNT(*) FROM work_items WHERE status = 'pending' "
                "GROUP BY work_type ORDER BY work_type"
            )
            return {r[0]: r[1] for r in rows}

    def queue_depth(self) -> int:
        """Pending items (ready or waiting on dependencies)."""
        with self._read() as db:
            row = db.execute("SELECT COUNT(*) FROM work_items WHERE status = 'pending'")
            return row.fetchone()[0]

    def oldest_pending_age_s(self) -> float | None:
        """Seconds since the oldest pending item was added (None when none is pending)."""
        with self._read() as db:
            oldest = db.execute(
                "SELECT MIN(created_at) FROM work_items WHERE status = 'pending'"
            ).fetchone()[0]
        return None if oldest is None else max(0.0, time.time() - oldest)

    def blocked(self) -> dict[str, list[str]]:
        """Pending items that can never run: id -> the failed-for-good items it (transitively)
        depends on."""
        with self._read() as db:
            rows = db.execute(
                "WITH RECURSIVE bad(id, root) AS ("
                " SELECT work_item_id, work_item_id FROM work_items WHERE status = 'failed'"
                " UNION SELECT d.work_item_id, bad.root FROM work_item_deps d"
                " JOIN bad ON d.depends_on = bad.id)"
                " SELECT w.work_item_id, bad.root FROM work_items w JOIN bad"
                " ON w.work_item_id = bad.id WHERE w.status = 'pending' ORDER BY w.seq, bad.root"
            ).fetchall()
        out: dict[str, list[str]] = {}
        for wid, root in rows:
            out.setdefault(wid, []).append(root)
        return out

    def snapshot(self) -> Snapshot:
        """Materialise `work_claims.json` (seed shape: every item that was ever claimed)."""
        with self._read() as db:
            rows = db.execute("SELECT * FROM work_items WHERE claims > 0 ORDER BY seq")
            records = [claim_from_row(r).seed_record() for r in rows]
        return write_snapshot(self.coordination_dir, records)

    # -- internals ---------------------------------------------------------------------------
    def _take_rows(
        self, db: sqlite3.Connection, seqs: list[int], agent_id: str, lease_s: float, now: float
    ) -> list[Claim]:
        if not seqs:
            return []
        trace_id, span_id = current_telemetry()
        stamp = now_iso()
        # a lapsed lease taken over counts an attempt (SET reads the row's old values)
        db.executemany(
            f"UPDATE work_items SET attempts = attempts + ({_LAPSED}), "
            f"last_error = CASE WHEN {_LAPSED} THEN {_LAPSED_ERROR} ELSE last_error END, "
            "status = 'claimed', agent_id = ?, claim_id = ?, "
            "claimed_at = ?, lease_expires = ?, last_heartbeat = ?, progress = 0, "
            "claims = claims + 1, trace_id = ?, span_id = ? WHERE seq = ?",
            [(now, now, agent_id, new_id("claim"), stamp, now + lease_s, stamp, trace_id,
              span_id, s) for s in seqs],
        )  # fmt: skip
        by_seq = {}
        for chunk in range(0, len(seqs), _CHUNK):
            part = seqs[chunk : chunk + _CHUNK]
            marks = ",".join("?" * len(part))
            for r in db.execute(f"SELECT * FROM work_items WHERE seq IN ({marks})", part):
                by_seq[r["seq"]] = claim_from_row(r)
        return [by_seq[s] for s in seqs]

    def _dead_letter(
        self, db: sqlite3.Connection, now: float, where: str = "", args: Iterable[Any] = ()
    ) -> None:
        """Fail for good every lapsed lease (matching `where`) at its last attempt: a holder
        that keeps dying on an item (OOM, segfault) must not get it back for ever. The lapse
        counts as the attempt; `last_error` says whose lease it was."""
        rows = db.execute(
            f"SELECT work_item_id, {_LAPSED_ERROR} FROM work_items WHERE {_LAPSED} "
            f"AND attempts + 1 >= max_attempts {where}",
            [now, *args],
        ).fetchall()
        stamp = now_iso()
        db.executemany(
            "UPDATE work_items SET status = 'failed', attempts = attempts + 1, last_error = ?, "
            "result = ?, completed_at = ?, lease_expires = NULL WHERE work_item_id = ?",
            [(e, stored_result({"error": e}), stamp, w) for w, e in rows],
        )

    def _statuses(self, db: sqlite3.Connection, ids: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for chunk in range(0, len(ids), _CHUNK):
            part = ids[chunk : chunk + _CHUNK]
            marks = ",".join("?" * len(part))
            for r in db.execute(
                f"SELECT work_item_id, status FROM work_items WHERE work_item_id IN ({marks})",
                part,
            ):
                out[r[0]] = r[1]
        return out

    def _waiting_on(self, db: sqlite3.Connection, ids: list[str]) -> dict[str, tuple[str, ...]]:
        """For each id, its dependencies that are not completed."""
        out: dict[str, list[str]] = {}
        for chunk in range(0, len(ids), _CHUNK):
            part = ids[chunk : chunk + _CHUNK]
            marks = ",".join("?" * len(part))
            for r in db.execute(
                "SELECT d.work_item_id, d.depends_on FROM work_item_deps d JOIN work_items w "
                f"ON w.work_item_id = d.depends_on WHERE d.work_item_id IN ({marks}) "
                "AND w.status != 'completed'",
                part,
            ):
                out.setdefault(r[0], []).append(r[1])
        return {k: tuple(v) for k, v in out.items()}

    def _row(self, db: sqlite3.Connection, work_item_id: str) -> sqlite3.Row:
        row = db.execute(
            "SELECT * FROM work_items WHERE work_item_id = ?", (work_item_id,)
        ).fetchone()
        if row is None:
            raise InvalidInput(f"no work item {work_item_id!r} in {self.path}")
        return row

    def _claim(self, db: sqlite3.Connection, work_item_id: str) -> Claim:
        return claim_from_row(self._row(db, work_item_id))

    def _owned(self, db: sqlite3.Connection, work_item_id: str, claim_id: str) -> sqlite3.Row:
        """The item's row if `claim_id` is its current claim, else CoordinationConflict."""
        row = self._row(db, work_item_id)
        if row["status"] not in HELD or row["claim_id"] != claim_id:
            raise CoordinationConflict(
                stale_message(
                    work_item_id, claim_id, row["status"], row["agent_id"], row["claim_id"]
                )
            )
        return row


def _filters(types: Iterable[str] | None, priority_at_least: str | None) -> tuple[str, list]:
    where, args = "", []
    if types is not None:
        wanted = list(types)
        where += f" AND work_type IN ({','.join('?' * len(wanted)) or 'NULL'})"
        args += wanted
    if priority_at_least is not None:
        if priority_at_least not in PRIORITY_RANK:
            raise InvalidInput(
                f"priority_at_least must be one of {list(PRIORITY_RANK)}, got {priority_at_least!r}"
            )
        where += " AND rank <= ?"
        args.append(PRIORITY_RANK[priority_at_least])
    return where, args
