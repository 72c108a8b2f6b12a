"""The embedded ledger: one SQLite database, `claims.sqlite3` in the coordination dir, for the
threads and processes of one host (SQLite's WAL does not work over a network filesystem).

WAL, `BEGIN IMMEDIATE` for every mutation, writers queued on a bounded `flock` first (fair
shares, `LockTimeout` naming the lock file); one connection and lock descriptor per ledger and
process. Why, with the measurements: docs/ledger.md. The contract: `tasks.claims.ledger.Ledger`;
the statements: `sqlite.sql`. Pure module (no Prefect).
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
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from tasks.claims import queries
from tasks.claims.ledger import Check, Completion, DbRow, Grant, Ledger, TakeSource, only
from tasks.claims.models import DB_FILE, PRIORITY_RANK, WorkItem, now_iso
from tasks.claims.schema import SQLITE_MIGRATIONS, SQLITE_VERSION, migrate_sqlite
from tasks.claims.snapshot import ensure_dir
from tasks.coordination_log import append_to_dir
from tasks.errors import CorruptStore, LockTimeout

Q = queries.load("sqlite.sql")
# result codes that mean the file is not a usable database (not "busy" or "locked")
_CORRUPT_CODES = {"SQLITE_CORRUPT", "SQLITE_NOTADB"}
log = logging.getLogger(__name__)


def _to_wal(conn: sqlite3.Connection, timeout_s: float) -> None:
    """Put the file in WAL mode, retrying within `timeout_s`: processes opening a new ledger at
    once all switch it, and SQLite answers some of them BUSY at once, without waiting its busy
    timeout (4 openers of a fresh file: 25 failures in 400)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorname != "SQLITE_BUSY" or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


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
            _to_wal(self.conn, timeout_s)
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


def _close_handle(box: list[_Handle | None]) -> None:
    handle, box[0] = box[0], None
    if handle is not None:
        handle.close()


def _bind(params: Mapping[str, Any]) -> dict[str, Any]:
    """Statement parameters with the clock added and lists as JSON arrays (for json_each)."""
    bound = {k: json.dumps(v) if isinstance(v, list | tuple) else v for k, v in params.items()}
    return {"now": time.time(), "stamp": now_iso(), **bound}


class SqliteLedger(Ledger):
    """The `Ledger` in `claims.sqlite3`, shared by threads and processes of one host."""

    backend = "sqlite"
    decode_json = True

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
            with self._reading() as db:
                version = db.execute("PRAGMA user_version").fetchone()[0]
            if version != SQLITE_VERSION:
                with self._writing() as db:
                    migrate_sqlite(db, SQLITE_MIGRATIONS, str(self.path))
        except BaseException:
            self.close()
            raise
        self._flush_log_quietly()  # entries a crashed or blocked append left behind

    @property
    def where(self) -> str:
        return str(self.path)

    def close(self) -> None:
        """Close the connection and the lock descriptor (a later call reopens them)."""
        with self._box_lock:
            _close_handle(self._box)

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
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._guard():
            handle = self._handle()
            with handle.mutex:
                yield handle.conn

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction holding SQLite's write lock (exclusive across processes),
        taken after the `flock` of `claims.sqlite3.lock` (the kernel wakes waiters in turn;
        it drops the lock of a killed process)."""
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

    # -- primitives --------------------------------------------------------------------------
    def _read(self, query: str, **params: Any) -> list[DbRow]:
        with self._reading() as db:
            return db.execute(Q[query], _bind(params)).fetchall()

    def _write(self, query: str, **params: Any) -> list[DbRow]:
        with self._writing() as db:
            return db.execute(Q[query], _bind(params)).fetchall()

    def _insert(self, items: list[WorkItem], referenced: list[str], check: Check) -> None:
        with self._writing() as db:
            known = db.execute(Q["statuses"], _bind({"ids": referenced}))
            unmet = check({r["work_item_id"]: r["status"] for r in known})
            db.executemany(
                Q["insert_item"],
                [
                    _bind({
                        "wid": r.work_item_id, "work_type": r.work_type, "priority": r.priority,
                        "rank": PRIORITY_RANK[r.priority], "description": r.description,
                        "estimated_duration": r.estimated_duration, "team": r.team,
                        "payload": json.dumps(r.payload), "dependencies": r.dependencies,
                        "unmet": unmet[r.work_item_id], "max_attempts": r.max_attempts,
                    })
                    for r in items
                ],
            )  # fmt: skip
            db.executemany(
                Q["insert_dependency"],
                [{"wid": r.work_item_id, "depends_on": d} for r in items for d in r.dependencies],
            )

    def _claim_ready(self, grant: Grant, work_type: str | None) -> list[DbRow]:
        with self._writing() as db:
            self._dead_letter(db, work_type=work_type)
            pick = _bind({"work_type": work_type, "n": len(grant.tokens)})
            seqs = [r[0] for r in db.execute(Q["expired_seqs"], pick)]
            if len(seqs) < len(grant.tokens):
                pick["n"] = len(grant.tokens) - len(seqs)
                seqs += [r[0] for r in db.execute(Q["ready_seqs"], pick)]
            return _take(db, seqs, grant)

    def _claim_named(self, grant: Grant, work_item_id: str) -> DbRow | None:
        with self._writing() as db:
            self._dead_letter(db, wid=work_item_id)
            found = db.execute(
                Q["claimable_named"], _bind({"wid": work_item_id, "agent": grant.agent})
            ).fetchone()
            return _take(db, [found[0]], grant)[0] if found else None

    @contextlib.contextmanager
    def _taking(self, types: list[str] | None, max_rank: int) -> Iterator[TakeSource]:
        with self._writing() as db:
            self._dead_letter(db, types=types, max_rank=max_rank)
            yield TakeSource(
                lambda query, params: db.execute(Q[query], _bind(params)).fetchall(),
                {"types": types, "max_rank": max_rank},
                lambda seqs, grant: _take(db, seqs, grant),
            )

    def _complete(self, batch: list[Completion], log_entries: list[dict]) -> list[DbRow]:
        done: list[DbRow] = []
        with contextlib.suppress(_Stale), self._writing() as db:
            for wid, token, result in batch:
                row = db.execute(
                    Q["complete"], _bind({"wid": wid, "token": token, "result": result})
                ).fetchone()
                if row is None:
                    raise _Stale  # rolls the batch back
                done.append(row)
            db.executemany(Q["release_dependents"], [{"wid": w} for w, _, _ in batch])
            db.executemany(
                Q["outbox_add"], [{"entry": json.dumps(e, default=str)} for e in log_entries]
            )
        if len(done) < len(batch):
            return []
        if log_entries:
            self._flush_log_quietly()
        return done

    def flush_log(self) -> int:
        rows = self._read("outbox")
        if not rows:
            return 0
        append_to_dir(self.coordination_dir, [json.loads(r[1]) for r in rows], self.busy_timeout_s)
        self._write("outbox_drop", last=rows[-1][0])
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

    @staticmethod
    def _dead_letter(db: sqlite3.Connection, **filters: Any) -> None:
        """Fail for good the lapsed leases at their last attempt (of what `filters` name)."""
        db.execute(Q["dead_letter"], _bind(only(**filters)))


class _Stale(Exception):
    """A completion's token was stale: the batch is rolled back."""


def _take(db: sqlite3.Connection, seqs: list[int], grant: Grant) -> list[DbRow]:
    """Claim the rows `seqs` for `grant`, in that order, one token each."""
    params = _bind(grant.params())
    return [
        db.execute(Q["take_row"], {**params, "seq": seq, "token": token}).fetchone()
        for seq, token in zip(seqs, grant.tokens, strict=False)
    ]
