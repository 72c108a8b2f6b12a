"""The shared ledger: PostgreSQL, for workers on several hosts (`REACTOR_DATABASE_URL`).

The contract is `tasks.claims.ledger.Ledger`; this module runs it on row locks instead of one
write lock. Claiming is one statement (`FOR UPDATE SKIP LOCKED` over partial indexes: a claim
touches the same few pages at 1,000 or 50,000 items, tests/contract/test_claim_cost.py);
holder operations are one fenced `UPDATE`, and so is completing an item nothing depends on
(`dependents`, counted by `add`). The statements: `postgres.sql`; why: docs/ledger.md.
Connections come from one pool per process (`tasks.claims.pg`). Pure module (no Prefect).
"""

from __future__ import annotations

import contextlib
import json
import weakref
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tasks.claims import queries
from tasks.claims.ledger import Check, Completion, DbRow, Grant, Ledger, TakeSource, only
from tasks.claims.models import DEFAULT_LEASE_S, PRIORITY_RANK, WorkItem, checked_lease
from tasks.claims.pg import connection, describe, pool
from tasks.coordination_log import insert_pg
from tasks.ids import new_id

Q = queries.load("postgres.sql")
CLAIM_COLUMNS = tuple(c.strip().removeprefix("w.") for c in Q["claim_columns"].split(","))
# one tuple-row cursor per pooled connection for the single-item path (a fresh dict-row
# cursor per call costs more client CPU than the row itself)
_cursors: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def claim_next_statement(
    agent_id: str, lease_s: float = DEFAULT_LEASE_S, work_type: str | None = None
) -> tuple[str, dict[str, Any]]:
    """The statement `claim_next` runs once a lease has lapsed, and its parameters (tests
    EXPLAIN it); while none has, the cheaper `claim_one` takes the first ready item."""
    grant = Grant(agent_id, checked_lease(lease_s), [new_id("claim")], None, None)
    return Q["claim_next"], {**grant.params(), **only(work_type=work_type)}


class PostgresLedger(Ledger):
    """The `Ledger` in PostgreSQL, shared by processes on any number of hosts.
    `coordination_dir` is where `snapshot()` writes work_claims.json."""

    backend = "postgres"
    decode_json = False

    def __init__(self, dsn: str, coordination_dir: Path | str = "coordination") -> None:
        self._dsn = dsn
        self.coordination_dir = Path(coordination_dir)
        pool(dsn)  # connect and migrate now: a bad URL fails here, in one line

    @property
    def where(self) -> str:
        return describe(self._dsn)

    def __repr__(self) -> str:
        return f"PostgresLedger({self.where})"

    def close(self) -> None:
        """Nothing to release per ledger: connections belong to the process's pool (closed at
        exit, or by `tasks.claims.pg.close_pools`)."""

    def flush_log(self) -> int:
        return 0  # nothing waits: a completion's log entries are written in its transaction

    # -- primitives --------------------------------------------------------------------------
    def _read(self, query: str, **params: Any) -> list[DbRow]:
        with connection(self._dsn) as conn:
            return conn.execute(Q[query], only(**params), binary=True).fetchall()

    _write = _read  # autocommit: each statement is its own transaction

    def _claims(self, query: str, params: dict[str, Any]) -> list[DbRow]:
        """The single-item path (`claim_next`, completing a leaf): a statement returning
        `claim_columns`, on the connection's kept cursor."""
        from psycopg.rows import tuple_row

        with connection(self._dsn) as conn:
            if (cur := _cursors.get(conn)) is None:
                cur = _cursors[conn] = conn.cursor(row_factory=tuple_row)
            rows = cur.execute(Q[query], params, binary=True).fetchall()
        return [dict(zip(CLAIM_COLUMNS, row, strict=True)) for row in rows]

    def _insert(self, items: list[WorkItem], referenced: list[str], check: Check) -> None:
        import psycopg

        try:
            with connection(self._dsn) as conn, conn.transaction(), conn.cursor() as cur:
                new = {r.work_item_id for r in items}
                edges = [d for r in items for d in r.dependencies]
                outside = [d for d in edges if d not in new]
                dependents = Counter(edges)
                known = cur.execute(Q["referenced"], {"ids": referenced, "deps": outside})
                unmet = check({r["work_item_id"]: r["status"] for r in known})
                with cur.copy(Q["copy_items"]) as copy:
                    for r in items:
                        copy.write_row(
                            (r.work_item_id, r.work_type, r.priority, PRIORITY_RANK[r.priority],
                             r.description, r.estimated_duration, r.team, json.dumps(r.payload),
                             json.dumps(r.dependencies), unmet[r.work_item_id], r.max_attempts,
                             dependents[r.work_item_id])
                        )  # fmt: skip
                deps = [(r.work_item_id, d) for r in items for d in r.dependencies]
                if deps:
                    with cur.copy(Q["copy_dependencies"]) as copy:
                        for pair in deps:
                            copy.write_row(pair)
        except psycopg.errors.UniqueViolation:
            # another producer added one of these ids between our check and our insert
            taken = self._read("statuses", ids=[r.work_item_id for r in items])
            check({r["work_item_id"]: r["status"] for r in taken})  # raises, naming them
            raise

    def _claim_ready(self, grant: Grant, work_type: str | None) -> list[DbRow]:
        if len(grant.tokens) == 1:
            params = only(**grant.params(), work_type=work_type)
            return self._claims("claim_one", params) or self._claims("claim_next", params)
        rows = self._read("claim_many", **grant.params(), work_type=work_type)
        return sorted(rows, key=lambda r: r["pick"])

    def _claim_named(self, grant: Grant, work_item_id: str) -> DbRow | None:
        rows = self._read("claim_named", **grant.params(), wid=work_item_id)
        return rows[0] if rows else None

    @contextlib.contextmanager
    def _taking(self, types: list[str] | None, max_rank: int) -> Iterator[TakeSource]:
        with connection(self._dsn) as conn, conn.transaction():
            filters = only(types=types, max_rank=max_rank)
            conn.execute(Q["dead_letter"], filters)

            def run(query: str, params: dict[str, Any]) -> list[DbRow]:
                return conn.execute(Q[query], params).fetchall()

            def claim(seqs: list[int], grant: Grant) -> list[DbRow]:
                rows = run("take_seqs", {**grant.params(), "seqs": seqs})
                return sorted(rows, key=lambda r: r["pick"])

            yield TakeSource(run, filters, claim)

    def _complete(self, batch: list[Completion], log_entries: list[dict]) -> list[DbRow]:
        if len(batch) == 1 and not log_entries:  # the single-item path: one statement
            ((wid, token, result),) = batch
            if rows := self._claims(
                "complete_leaf", {"wid": wid, "token": token, "result": result}
            ):
                return rows
        ids = [w for w, _, _ in batch]
        params = {"ids": ids, "tokens": [c for _, c, _ in batch], "results": [r for *_, r in batch]}
        with connection(self._dsn) as conn, conn.transaction():
            done = conn.execute(Q["complete"], params).fetchall()
            if len(done) != len(batch):
                return []  # the statement is all or none: nothing was completed
            # the rows are locked now: their `dependents` counts are final until the commit
            if waited := [r["work_item_id"] for r in done if r["dependents"]]:
                conn.execute(Q["release_dependents"], {"ids": waited})
            insert_pg(conn, log_entries)
        return done


__all__ = ["PostgresLedger", "claim_next_statement"]
