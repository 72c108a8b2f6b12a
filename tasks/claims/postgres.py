"""The shared ledger: PostgreSQL, for workers on several hosts (`REACTOR_DATABASE_URL`).

Same interface and rules as the SQLite ledger (`tasks.claims.sqlite`), built on row locks
instead of one write lock:

- `claim_next` is one statement: `UPDATE … WHERE seq = COALESCE((expired lease … FOR UPDATE
  SKIP LOCKED LIMIT 1), (first ready pending … FOR UPDATE SKIP LOCKED LIMIT 1)) RETURNING *`.
  Concurrent claimers skip each other's locked rows instead of queueing behind them; both
  subqueries are partial-index lookups (`reactor_work_items_lease`, `…_ready`), so a claim
  touches the same few pages at 1,000 or 50,000 items (tests/contract/test_claim_cost.py).
  `claim_many(agent, n)` claims n rows in the same one statement; with `complete_many` it is
  how a worker gets the throughput of a batch queue (bench/claims_bench.py).
- Holder operations are one `UPDATE … WHERE work_item_id = … AND claim_id = …` (the fencing
  token); no row means the token is stale, and a second query says why.
- Leases are judged by the database's clock (`now()`), so hosts with skewed clocks agree.
- `add` locks the rows it depends on (`FOR SHARE`) so a dependency completing concurrently
  cannot be missed; `complete` decrements its dependents' `unmet` in a second statement (a
  fresh snapshot) for the same reason. Statements that wait for row locks take them in `seq`
  order, so two of them cannot deadlock; the claiming statements never wait (SKIP LOCKED).

Connections come from one pool per process (`tasks.claims.pg`). Pure module (no Prefect).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tasks.claims.models import (
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
    stored_error,
    stored_result,
)
from tasks.claims.pg import connection, describe, pool
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
from tasks.claims.snapshot import Snapshot, write_snapshot
from tasks.coordination_log import insert_pg
from tasks.errors import CoordinationConflict, InvalidInput
from tasks.ids import new_id

T = "reactor_work_items"
DEPS = "reactor_work_item_deps"
_LEASE = "now() + %(lease_s)s * interval '1 second'"
_EXPIRED = "status IN ('claimed', 'in_progress') AND lease_expires < now()"
# an expired lease another holder may take over: not at its last attempt (that one is failed
# for good by `_dead_letter`, in the same statement, instead)
_RECLAIMABLE = f"{_EXPIRED} AND attempts + 1 < max_attempts"


def _lapsed_error(alias: str) -> str:
    """What a lapsed lease leaves as `last_error` (SQL over the row's old values)."""
    return (
        f"'{LEASE_LAPSED} under claim ' || {alias}.claim_id || ' by ' || "
        f"COALESCE({alias}.agent_id, '?') || ' (its holder died or hung)'"
    )


_LAPSED_NOW = "w.status IN ('claimed', 'in_progress') AND w.lease_expires < now()"
_TAKE = (
    # a lapsed lease taken over counts an attempt (SET reads the row's old values)
    f"UPDATE {T} w SET attempts = w.attempts + CASE WHEN {_LAPSED_NOW} THEN 1 ELSE 0 END, "
    f"last_error = CASE WHEN {_LAPSED_NOW} THEN {_lapsed_error('w')} ELSE w.last_error END, "
    "status = 'claimed', agent_id = %(agent)s, claim_id = %(token)s, "
    f"claimed_at = now(), lease_expires = {_LEASE}, last_heartbeat = now(), progress = 0, "
    "claims = w.claims + 1, trace_id = %(trace)s, span_id = %(span)s"
)


def _dead_letter(extra: str = "") -> str:
    """A CTE failing for good every lapsed lease at its last attempt (rows matching `extra`):
    a holder that keeps dying on an item (OOM, segfault) must not get it back for ever."""
    return (
        f"dead AS (UPDATE {T} d SET status = 'failed', attempts = d.attempts + 1, "
        f"last_error = {_lapsed_error('d')}, "
        f"result = jsonb_build_object('error', {_lapsed_error('d')}), completed_at = now(), "
        f"lease_expires = NULL WHERE d.seq IN (SELECT seq FROM {T} WHERE {_EXPIRED} AND "
        f"attempts + 1 >= max_attempts {extra} ORDER BY seq FOR UPDATE SKIP LOCKED) "
        "RETURNING d.seq)"
    )


def claim_next_statement(
    agent_id: str, lease_s: float = DEFAULT_LEASE_S, work_type: str | None = None
) -> tuple[str, dict[str, Any]]:
    """The one statement `claim_next` runs, and its parameters (tests EXPLAIN it)."""
    lease_s = checked_lease(lease_s)
    typed = "AND work_type = %(type)s" if work_type else ""
    sql = (
        f"WITH {_dead_letter(typed)} {_TAKE} WHERE w.seq = COALESCE("
        f"(SELECT seq FROM {T} WHERE {_RECLAIMABLE} AND unmet = 0 {typed} "
        "ORDER BY lease_expires LIMIT 1 FOR UPDATE SKIP LOCKED), "
        f"(SELECT seq FROM {T} WHERE status = 'pending' AND unmet = 0 {typed} "
        "ORDER BY rank, seq LIMIT 1 FOR UPDATE SKIP LOCKED)) RETURNING w.*"
    )
    trace_id, span_id = current_telemetry()
    args = {
        "agent": agent_id, "token": new_id("claim"), "lease_s": lease_s,
        "trace": trace_id, "span": span_id, "type": work_type,
    }  # fmt: skip
    return sql, args


class PostgresLedger:
    """Exclusive, leased, fenced claims on work items in PostgreSQL, shared by processes on
    any number of hosts. `coordination_dir` is where `snapshot()` writes work_claims.json."""

    backend = "postgres"

    def __init__(self, dsn: str, coordination_dir: Path | str = "coordination") -> None:
        self._dsn = dsn
        self.coordination_dir = Path(coordination_dir)
        pool(dsn)  # connect and migrate now: a bad URL fails here, in one line

    @property
    def where(self) -> str:
        return describe(self._dsn)

    def __repr__(self) -> str:
        return f"PostgresLedger({self.where})"

    @contextlib.contextmanager
    def _conn(self) -> Iterator[Any]:
        with connection(self._dsn) as conn:
            yield conn

    def close(self) -> None:
        """Nothing to release per ledger: connections belong to the process's pool (closed at
        exit, or by `tasks.claims.pg.close_pools`)."""

    def __enter__(self) -> PostgresLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- producers ---------------------------------------------------------------------------
    def add(self, items: Iterable[WorkItem | dict[str, Any]]) -> list[str]:
        """Add pending items, all or none (see `selection.validate_new_items`)."""
        import psycopg

        rows = coerce_items(items)
        if not rows:
            return []
        ids = [r.work_item_id for r in rows]
        try:
            with self._conn() as conn, conn.transaction():
                known = {
                    r["work_item_id"]: r["status"]
                    for r in conn.execute(
                        f"SELECT work_item_id, status FROM {T} WHERE work_item_id = ANY(%s) "
                        "ORDER BY seq FOR SHARE",
                        (referenced_ids(rows),),
                    )
                }
                unmet = validate_new_items(rows, known)
                with conn.cursor() as cur:
                    with cur.copy(
                        f"COPY {T} (work_item_id, work_type, priority, rank, description, "
                        "estimated_duration, team, payload, dependencies, unmet, max_attempts) "
                        "FROM STDIN"
                    ) as copy:
                        for r in rows:
                            copy.write_row(
                                (r.work_item_id, r.work_type, r.priority,
                                 PRIORITY_RANK[r.priority], r.description, r.estimated_duration,
                                 r.team, _dumps(r.payload), _dumps(r.dependencies),
                                 unmet[r.work_item_id], r.max_attempts)
                            )  # fmt: skip
                    deps = [(r.work_item_id, d) for r in rows for d in r.dependencies]
                    if deps:
                        with cur.copy(f"COPY {DEPS} (work_item_id, depends_on) FROM STDIN") as c:
                            for pair in deps:
                                c.write_row(pair)
        except psycopg.errors.UniqueViolation:
            # another producer added one of these ids between our check and our insert
            with self._conn() as conn:
                taken = [
                    r["work_item_id"]
                    for r in conn.execute(
                        f"SELECT work_item_id FROM {T} WHERE work_item_id = ANY(%s)", (ids,)
                    )
                ]
            raise InvalidInput(
                f"work items already in the ledger: {sorted(taken)[:10]}; nothing was added"
            ) from None
        return ids

    # -- claiming ----------------------------------------------------------------------------
    def claim_next(
        self, agent_id: str, lease_s: float = DEFAULT_LEASE_S, work_type: str | None = None
    ) -> Claim | None:
        """Claim the most urgent claimable item — one whose lease expired, else the first
        ready pending one by priority then insertion order — or None. One statement."""
        sql, args = claim_next_statement(agent_id, lease_s, work_type)
        with self._conn() as conn:
            row = conn.execute(sql, args).fetchone()
        return None if row is None else _claim(row)

    def claim_many(
        self, agent_id: str, n: int, lease_s: float = DEFAULT_LEASE_S, work_type: str | None = None
    ) -> list[Claim]:
        """Claim up to `n` items in `claim_next` order, each with its own token, in one
        statement."""
        lease_s = checked_lease(lease_s)
        if n <= 0:
            return []
        typed = "AND work_type = %(type)s" if work_type else ""
        sql = (
            f"WITH {_dead_letter(typed)}, "
            f"expired AS (SELECT seq, lease_expires FROM {T} WHERE {_RECLAIMABLE} AND "
            f"unmet = 0 {typed} ORDER BY lease_expires LIMIT %(n)s FOR UPDATE SKIP LOCKED), "
            f"ready AS (SELECT seq, rank FROM {T} WHERE status = 'pending' AND unmet = 0 "
            f"{typed} ORDER BY rank, seq LIMIT %(n)s - (SELECT count(*) FROM expired) "
            "FOR UPDATE SKIP LOCKED), "
            "numbered AS (SELECT seq, row_number() OVER (ORDER BY grp, lease_expires, rank, seq) "
            "AS i FROM (SELECT seq, 0 AS grp, lease_expires, 0 AS rank FROM expired UNION ALL "
            "SELECT seq, 1, NULL, rank FROM ready) p) "
            + _TAKE.replace("%(token)s", "(%(tokens)s::text[])[numbered.i]")
            + " FROM numbered WHERE w.seq = numbered.seq RETURNING w.*, numbered.i AS pick"
        )
        trace_id, span_id = current_telemetry()
        args = {
            "agent": agent_id, "tokens": [new_id("claim") for _ in range(n)], "n": n,
            "lease_s": lease_s, "trace": trace_id, "span": span_id, "type": work_type,
        }  # fmt: skip
        with self._conn() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [_claim(r) for r in sorted(rows, key=lambda r: r["pick"])]

    def claim(self, work_item_id: str, agent_id: str, lease_s: float = DEFAULT_LEASE_S) -> Claim:
        """Claim one named item, whatever its dependencies (the caller orders execution);
        CoordinationConflict if another agent holds a live lease or it is finished. Claiming an
        item this agent already holds re-claims it: the old token becomes stale."""
        lease_s = checked_lease(lease_s)
        trace_id, span_id = current_telemetry()
        args = {
            "agent": agent_id, "token": new_id("claim"), "lease_s": lease_s,
            "trace": trace_id, "span": span_id, "id": work_item_id,
        }  # fmt: skip
        with self._conn() as conn:
            conn.execute(
                f"WITH {_dead_letter('AND work_item_id = %(id)s')} SELECT count(*) FROM dead",
                args,
            )
            row = conn.execute(
                f"{_TAKE} WHERE w.work_item_id = %(id)s AND (w.status = 'pending' OR "
                "(w.status IN ('claimed', 'in_progress') AND (w.lease_expires < now() "
                "OR w.agent_id = %(agent)s))) RETURNING w.*",
                args,
            ).fetchone()
            if row is not None:
                return _claim(row)
            current = self._row(conn, work_item_id)
        raise CoordinationConflict(
            f"{work_item_id} is {current['status']} by {current['agent_id']}; "
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
        dependencies, in priority order. Every row read is locked (`FOR UPDATE SKIP LOCKED`)
        until the claim commits, so concurrent takes never share an item."""
        lease_s = checked_lease(lease_s)
        if limit <= 0:
            return []
        where, fargs = _filters(types, priority_at_least)
        cols = f"SELECT work_item_id, rank, seq, unmet FROM {T}"
        seq_of: dict[str, int] = {}

        def rows(cursor: Any) -> list[Row]:
            out = [Row(r["work_item_id"], r["rank"], r["seq"], r["unmet"]) for r in cursor]
            seq_of.update((r.work_item_id, r.seq) for r in out)
            return out

        with self._conn() as conn, conn.transaction():

            def fetch_page(after: tuple[int, int] | None, n: int) -> list[Row]:
                keyset = "AND (rank, seq) > (%(rank)s, %(seq)s)" if after else ""
                rank, seq = after or (0, 0)
                return rows(
                    conn.execute(
                        f"{cols} WHERE status = 'pending' {keyset} {where} ORDER BY rank, seq "
                        "LIMIT %(n)s FOR UPDATE SKIP LOCKED",
                        {**fargs, "rank": rank, "seq": seq, "n": n},
                    )
                )

            def fetch_ids(ids: list[str]) -> list[Row]:
                return rows(
                    conn.execute(
                        f"{cols} WHERE work_item_id = ANY(%(ids)s) AND (status = 'pending' OR "
                        f"({_RECLAIMABLE})) {where} FOR UPDATE SKIP LOCKED",
                        {**fargs, "ids": ids},
                    )
                )

            def waiting_on(ids: list[str]) -> dict[str, tuple[str, ...]]:
                out: dict[str, list[str]] = {}
                if ids:
                    for r in conn.execute(
                        f"SELECT d.work_item_id, d.depends_on FROM {DEPS} d JOIN {T} w ON "
                        "w.work_item_id = d.depends_on WHERE d.work_item_id = ANY(%s) AND "
                        "w.status <> 'completed'",
                        (ids,),
                    ):
                        out.setdefault(r["work_item_id"], []).append(r["depends_on"])
                return {k: tuple(v) for k, v in out.items()}

            conn.execute(f"WITH {_dead_letter(where)} SELECT count(*) FROM dead", fargs)
            expired = rows(
                conn.execute(
                    f"{cols} WHERE {_RECLAIMABLE} {where} ORDER BY lease_expires "
                    "FOR UPDATE SKIP LOCKED",
                    fargs,
                )
            )
            chosen = plan_take(limit, expired, fetch_page, fetch_ids, waiting_on)
            if not chosen:
                return []
            trace_id, span_id = current_telemetry()
            taken = conn.execute(
                "WITH numbered AS (SELECT seq, ord AS i FROM unnest(%(seqs)s::bigint[]) "
                "WITH ORDINALITY AS u(seq, ord)) "
                + _TAKE.replace("%(token)s", "(%(tokens)s::text[])[numbered.i]")
                + " FROM numbered WHERE w.seq = numbered.seq RETURNING w.*, numbered.i AS pick",
                {
                    "seqs": [seq_of[w] for w in chosen],
                    "tokens": [new_id("claim") for _ in chosen],
                    "agent": holder,
                    "lease_s": lease_s,
                    "trace": trace_id,
                    "span": span_id,
                },
            ).fetchall()
        return [_claim(r) for r in sorted(taken, key=lambda r: r["pick"])]

    def assign(self, work_item_id: str, claim_id: str, agent_id: str) -> Claim:
        """Hand a held claim (e.g. taken by a drain run) to `agent_id`, keeping its token."""
        return self._fenced(work_item_id, claim_id, "agent_id = %(agent)s", {"agent": agent_id})

    # -- holder operations (fenced by the claim id) ------------------------------------------
    def heartbeat(
        self, work_item_id: str, claim_id: str, lease_s: float = DEFAULT_LEASE_S
    ) -> Claim:
        """Extend the holder's lease by `lease_s` from now."""
        lease_s = checked_lease(lease_s)
        return self._fenced(
            work_item_id,
            claim_id,
            f"lease_expires = {_LEASE}, last_heartbeat = now()",
            {"lease_s": lease_s},
        )

    def resume_claim(
        self, work_item_id: str, claim_id: str, lease_s: float = DEFAULT_LEASE_S
    ) -> Claim:
        """Take back a claim a dead attempt of the same run held (`claim_id` is the token it
        got): still held under that token, expired or not, its lease is renewed from now; already
        finished under it (completed, or failed for good), the item is returned as it is (its
        status says which); anything else is a CoordinationConflict saying who has it now."""
        lease_s = checked_lease(lease_s)
        with self._conn() as conn:
            row = conn.execute(
                f"UPDATE {T} SET lease_expires = {_LEASE}, last_heartbeat = now() "
                "WHERE work_item_id = %(wid)s AND claim_id = %(token)s "
                "AND status IN ('claimed', 'in_progress') RETURNING *",
                {"lease_s": lease_s, "wid": work_item_id, "token": claim_id},
            ).fetchone()
            if row is not None:
                return _claim(row)
            current = self._row(conn, work_item_id)
            if current["claim_id"] == claim_id and current["status"] in FINISHED:
                return _claim(current)
            raise CoordinationConflict(resume_refused(work_item_id, claim_id, current))

    def progress(
        self, work_item_id: str, claim_id: str, percent: int, lease_s: float | None = None
    ) -> Claim:
        """Record progress (0-100); the item becomes in_progress (and its lease is renewed by
        `lease_s` when given)."""
        if not 0 <= percent <= 100:
            raise InvalidInput(f"progress must be within 0..100, got {percent}")
        if lease_s is not None:
            lease_s = checked_lease(lease_s)
        lease = f", lease_expires = {_LEASE}" if lease_s else ""
        return self._fenced(
            work_item_id,
            claim_id,
            f"status = 'in_progress', progress = %(p)s, last_heartbeat = now(){lease}",
            {"p": percent, "lease_s": lease_s},
        )

    def complete(
        self,
        work_item_id: str,
        claim_id: str,
        result: Any = None,
        log_entry: dict[str, Any] | None = None,
    ) -> Claim:
        """Mark the item completed with `result`; only the current claim may. `log_entry` goes
        to the coordination log in the same transaction: a host killed right after cannot
        leave a completion unlogged."""
        logged = [log_entry] if log_entry else []
        return self.complete_many([(work_item_id, claim_id, result)], logged)[0]

    def complete_many(
        self,
        completions: Iterable[tuple[str, str, Any]],
        log_entries: Iterable[dict[str, Any]] = (),
    ) -> list[Claim]:
        """Complete several held items in one transaction, all or none: any stale token is a
        CoordinationConflict naming it, an item named twice is an InvalidInput, and nothing is
        completed (nor logged)."""
        batch = list(completions)
        if not batch:
            return []
        import psycopg

        distinct_completions(batch)
        results = [stored_result(r) for _, _, r in batch]  # refused before any write
        ids = [w for w, _, _ in batch]
        stale: list[tuple[str, str]] = []
        with self._conn() as conn, conn.transaction():
            marked = conn.execute(
                "WITH v AS (SELECT * FROM unnest(%s::text[], %s::text[], %s::jsonb[]) "
                "AS v(wid, token, result)), "
                f"locked AS (SELECT w.seq, v.result FROM {T} w JOIN v ON w.work_item_id = v.wid "
                "AND w.claim_id = v.token WHERE w.status IN ('claimed', 'in_progress') "
                "ORDER BY w.seq FOR UPDATE OF w) "
                f"UPDATE {T} w SET status = 'completed', progress = 100, result = locked.result, "
                "completed_at = now(), lease_expires = NULL FROM locked WHERE w.seq = locked.seq "
                "RETURNING w.*",
                (ids, [c for _, c, _ in batch], results),
            )
            # a second statement, so a fresh snapshot: it sees every dependent added while the
            # first one waited for these rows' locks
            conn.execute(
                f"WITH d AS (SELECT work_item_id, count(*) AS n FROM {DEPS} "
                "WHERE depends_on = ANY(%s) GROUP BY work_item_id), "
                f"locked AS (SELECT w.seq, d.n FROM {T} w JOIN d USING (work_item_id) "
                "ORDER BY w.seq FOR UPDATE OF w) "
                f"UPDATE {T} w SET unmet = w.unmet - locked.n FROM locked WHERE w.seq = locked.seq",
                (ids,),
            )
            done = marked.fetchall()
            if len(done) != len(batch):  # whatever the cause: all or none
                finished = {r["work_item_id"] for r in done}
                stale = [(w, c) for w, c, _ in batch if w not in finished] or [("", "")]
                raise psycopg.Rollback()
            insert_pg(conn, log_entries)
        if stale:
            if not stale[0][0]:
                raise CoordinationConflict(
                    f"complete_many completed {len(done)} of {len(batch)} items; nothing was "
                    "completed"
                )
            with self._conn() as conn:
                raise CoordinationConflict(self._why_stale(conn, *stale[0]))
        by_id = {r["work_item_id"]: _claim(r) for r in done}
        return [by_id[w] for w in ids]

    def flush_log(self) -> int:
        """Nothing waits: a completion's log entry is written in its own transaction."""
        return 0

    def fail(self, work_item_id: str, claim_id: str, error: str) -> Claim:
        """Count a failed attempt: below `max_attempts` the item is pending again (with
        `last_error`); at `max_attempts` it is failed for good."""
        final = "attempts + 1 >= max_attempts"
        return self._fenced(
            work_item_id,
            claim_id,
            f"attempts = attempts + 1, last_error = %(e)s, lease_expires = NULL, "
            f"status = CASE WHEN {final} THEN 'failed' ELSE 'pending' END, "
            f"agent_id = CASE WHEN {final} THEN agent_id END, "
            f"claim_id = CASE WHEN {final} THEN claim_id END, "
            f"result = CASE WHEN {final} THEN jsonb_build_object('error', %(e)s::text) "
            "ELSE result END, "
            f"completed_at = CASE WHEN {final} THEN now() END, "
            f"progress = CASE WHEN {final} THEN progress ELSE 0 END",
            {"e": stored_error(error)},
        )

    def release(self, work_item_id: str, claim_id: str) -> Claim:
        """Give the claim back: the item is pending again (no attempt is counted)."""
        return self._fenced(
            work_item_id,
            claim_id,
            "status = 'pending', agent_id = NULL, claim_id = NULL, lease_expires = NULL, "
            "progress = 0",
            {},
        )

    # -- reading -----------------------------------------------------------------------------
    def get(self, work_item_id: str) -> Claim:
        with self._conn() as conn:
            return _claim(self._row(conn, work_item_id))

    def statuses(self, work_item_ids: Iterable[str]) -> dict[str, str]:
        with self._conn() as conn:
            rows = conn.execute(
                f"SELECT work_item_id, status FROM {T} WHERE work_item_id = ANY(%s)",
                (list(work_item_ids),),
            )
            return {r["work_item_id"]: r["status"] for r in rows}

    def list(self, status: str | None = None, limit: int | None = None) -> list[Claim]:
        limit = checked_limit(limit)
        sql = f"SELECT * FROM {T}"
        args: dict[str, Any] = {"status": status, "limit": limit}
        if status:
            sql += " WHERE status = %(status)s"
        sql += " ORDER BY seq"
        if limit:
            sql += " LIMIT %(limit)s"
        with self._conn() as conn:
            return [_claim(r) for r in conn.execute(sql, args)]

    def holdings(self, holders: Iterable[str]) -> list[Claim]:
        """Every item held, or finished, under a claim of one of `holders` (agents, or a drain
        run's id): what a resumed run's dead attempt had, in insertion order. An item given
        back (released, a failed attempt) is no one's."""
        with self._conn() as conn:
            rows = conn.execute(
                f"SELECT * FROM {T} WHERE agent_id = ANY(%s) AND claim_id IS NOT NULL ORDER BY seq",
                (list(holders),),
            )
            return [_claim(r) for r in rows]

    def counts(self) -> dict[str, int]:
        with self._conn() as conn:
            rows = conn.execute(f"SELECT status, count(*) AS n FROM {T} GROUP BY status")
            return {r["status"]: r["n"] for r in rows}

    def pending_types(self) -> dict[str, int]:
        """Pending items per work type (what a drain must be able to run)."""
        with self._conn() as conn:
            rows = conn.execute(
                f"SELECT work_type, count(*) AS n FROM {T} WHERE status = 'pending' "
                "GROUP BY work_type ORDER BY work_type"
            )
            return {r["work_type"]: r["n"] for r in rows}

    def queue_depth(self) -> int:
        """Pending items (ready or waiting on dependencies)."""
        with self._conn() as conn:
            row = conn.execute(f"SELECT count(*) AS n FROM {T} WHERE status = 'pending'")
            return row.fetchone()["n"]

    def oldest_pending_age_s(self) -> float | None:
        """Seconds since the oldest pending item was added (None when none is pending)."""
        with self._conn() as conn:
            row = conn.execute(
                "SELECT extract(epoch FROM now() - min(created_at))::float8 AS age "
                f"FROM {T} WHERE status = 'pending'"
            ).fetchone()
        return None if row["age"] is None else max(0.0, row["age"])

    def blocked(self) -> dict[str, list[str]]:
        """Pending items that can never run: id -> the failed-for-good items it (transitively)
        depends on."""
        with self._conn() as conn:
            rows = conn.execute(
                "WITH RECURSIVE bad(id, root) AS ("
                f" SELECT work_item_id, work_item_id FROM {T} WHERE status = 'failed'"
                f" UNION SELECT d.work_item_id, bad.root FROM {DEPS} d"
                " JOIN bad ON d.depends_on = bad.id)"
                f" SELECT w.work_item_id, bad.root FROM {T} w JOIN bad"
                " ON w.work_item_id = bad.id WHERE w.status = 'pending' ORDER BY w.seq, bad.root"
            ).fetchall()
        out: dict[str, list[str]] = {}
        for r in rows:
            out.setdefault(r["work_item_id"], []).append(r["root"])
        return out

    def snapshot(self) -> Snapshot:
        """Materialise `work_claims.json` in the coordination dir (seed shape: every item that
        was ever claimed)."""
        with self._conn() as conn:
            rows = conn.execute(f"SELECT * FROM {T} WHERE claims > 0 ORDER BY seq")
            records = [_claim(r).seed_record() for r in rows]
        return write_snapshot(self.coordination_dir, records)

    # -- internals ---------------------------------------------------------------------------
    def _row(self, conn: Any, work_item_id: str) -> dict[str, Any]:
        row = conn.execute(f"SELECT * FROM {T} WHERE work_item_id = %s", (work_item_id,))
        found = row.fetchone()
        if found is None:
            raise InvalidInput(f"no work item {work_item_id!r} in {self.where}")
        return found

    def _why_stale(self, conn: Any, work_item_id: str, claim_id: str) -> str:
        row = self._row(conn, work_item_id)
        return stale_message(
            work_item_id, claim_id, row["status"], row["agent_id"], row["claim_id"]
        )

    def _fenced(self, work_item_id: str, claim_id: str, assignments: str, args: dict) -> Claim:
        """One UPDATE of the item if `claim_id` is its current claim, else the reason."""
        with self._conn() as conn:
            row = conn.execute(
                f"UPDATE {T} SET {assignments} WHERE work_item_id = %(wid)s AND "
                "claim_id = %(token)s AND status IN ('claimed', 'in_progress') RETURNING *",
                {**args, "wid": work_item_id, "token": claim_id},
            ).fetchone()
            if row is None:
                raise CoordinationConflict(self._why_stale(conn, work_item_id, claim_id))
        return _claim(row)


def _claim(row: dict[str, Any]) -> Claim:
    return claim_from_row(row, decode_json=False)


def _dumps(value: Any) -> str:
    import json

    return json.dumps(value, default=str)


def _filters(types: Iterable[str] | None, priority_at_least: str | None) -> tuple[str, dict]:
    where, args = "", {}
    if types is not None:
        where += " AND work_type = ANY(%(types)s)"
        args["types"] = list(types)
    if priority_at_least is not None:
        if priority_at_least not in PRIORITY_RANK:
            raise InvalidInput(
                f"priority_at_least must be one of {list(PRIORITY_RANK)}, got {priority_at_least!r}"
            )
        where += " AND rank <= %(max_rank)s"
        args["max_rank"] = PRIORITY_RANK[priority_at_least]
    return where, args


__all__ = ["HELD", "PostgresLedger"]
