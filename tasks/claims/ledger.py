"""The ledger contract: every public method, its checks, its errors and its results, written
once. A backend (`tasks.claims.sqlite.SqliteLedger`, `tasks.claims.postgres.PostgresLedger`)
implements only the primitives below the line — transactions, locking and its named queries —
and hands back rows (mappings with the ledger's column names). Pure module (no Prefect).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

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
from tasks.errors import CoordinationConflict, InvalidInput
from tasks.ids import new_id

DbRow = Mapping[str, Any]
# `add`'s rule: known (id -> status of the referenced ids in the ledger) -> unmet per new item
Check = Callable[[Mapping[str, str]], dict[str, int]]
Completion = tuple[str, str, str]  # work_item_id, claim_id, the result as stored JSON
# what a lapsed lease leaves as `last_error`; the statements fill in its claim and holder
LAPSED_ERROR = f"{LEASE_LAPSED} under claim {{claim}} by {{agent}} (its holder died or hung)"
LOWEST_RANK = max(PRIORITY_RANK.values())


def only(**filters: Any) -> dict[str, Any]:
    """Parameters for the statements' filters: every row a claiming call may look at
    (`wid`, `work_type`, `types` None, `max_rank` the lowest), narrowed by `filters`."""
    every = {"wid": None, "work_type": None, "types": None, "max_rank": LOWEST_RANK}
    return {**every, "lapsed": LAPSED_ERROR, **filters}


@dataclass(frozen=True)
class Grant:
    """What a claiming statement stamps on the rows it takes: the holder, the lease, one fresh
    fencing token per row, the claimer's span."""

    agent: str
    lease_s: float
    tokens: list[str]
    trace_id: str | None
    span_id: str | None

    def params(self) -> dict[str, Any]:
        return {
            "agent": self.agent, "lease_s": self.lease_s, "token": self.tokens[0],
            "tokens": self.tokens, "n": len(self.tokens), "trace": self.trace_id,
            "span": self.span_id, "lapsed": LAPSED_ERROR,
        }  # fmt: skip


class TakeSource:
    """`take`'s reads of claimable rows, inside the backend's write transaction (every read
    locks what it returns): `run(query, params)` runs one of the backend's named statements
    with `filters` (types, max_rank) added, `claim(seqs, grant)` takes the chosen rows."""

    def __init__(
        self,
        run: Callable[[str, dict[str, Any]], Iterable[DbRow]],
        filters: dict[str, Any],
        claim: Callable[[list[int], Grant], list[DbRow]],
    ) -> None:
        self.run, self.filters, self.claim = run, filters, claim

    def _rows(self, query: str, **params: Any) -> list[Row]:
        rows = self.run(query, {**self.filters, **params})
        return [Row(r["work_item_id"], r["rank"], r["seq"], r["unmet"]) for r in rows]

    def expired(self) -> list[Row]:
        return self._rows("take_expired")

    def page(self, after: tuple[int, int] | None, n: int) -> list[Row]:
        rank, seq = after or (None, None)
        return self._rows("take_page", after_rank=rank, after_seq=seq, n=n)

    def by_ids(self, ids: list[str]) -> list[Row]:
        return self._rows("take_ids", ids=ids)

    def waiting_on(self, ids: list[str]) -> dict[str, tuple[str, ...]]:
        out: dict[str, list[str]] = {}
        for r in self.run("waiting_on", {"ids": ids}):
            out.setdefault(r["work_item_id"], []).append(r["depends_on"])
        return {k: tuple(v) for k, v in out.items()}


class Ledger(abc.ABC):
    """Exclusive, leased, fenced claims on work items, with priorities, dependencies and
    bounded attempts. Holder operations take the claim id (the fencing token a claim returned)
    and raise `CoordinationConflict` when it is not the item's current claim: any later
    (re-)claim makes every earlier token stale. An unknown item is an `InvalidInput` naming
    the store. Use it as a context manager (or call `close()`)."""

    backend: ClassVar[str]  # "sqlite" | "postgres"
    decode_json: ClassVar[bool]  # rows hold JSON as text (SQLite), not decoded (psycopg)
    coordination_dir: Path  # where snapshot() writes work_claims.json

    @property
    @abc.abstractmethod
    def where(self) -> str:
        """The store, for messages (a path, or postgresql://host:port/db: never a password)."""

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- producers ---------------------------------------------------------------------------
    def add(self, items: Iterable[WorkItem | dict[str, Any]]) -> list[str]:
        """Add pending items, all or none; returns their ids. One `InvalidInput` line for a
        duplicate id (in the batch or already in the ledger), a dependency neither in the batch
        nor in the ledger, a payload that is not a JSON object; `DependencyCycle` naming a
        cycle (`selection.validate_new_items`); "nothing was added"."""
        rows = coerce_items(items)
        if rows:
            self._insert(rows, referenced_ids(rows), lambda known: validate_new_items(rows, known))
        return [r.work_item_id for r in rows]

    # -- claiming ----------------------------------------------------------------------------
    def claim_next(
        self, agent_id: str, lease_s: float = DEFAULT_LEASE_S, work_type: str | None = None
    ) -> Claim | None:
        """Claim the most urgent claimable item — one whose lease expired (its claimer died;
        taking it over counts an attempt), else the first ready pending item by priority then
        insertion order — or None. A lapsed lease at its item's last attempt is failed for good
        instead (a dead letter)."""
        rows = self._claim_ready(self._grant(agent_id, lease_s, 1), work_type)
        return self._claim(rows[0]) if rows else None

    def claim_many(
        self, agent_id: str, n: int, lease_s: float = DEFAULT_LEASE_S, work_type: str | None = None
    ) -> list[Claim]:
        """Claim up to `n` items at once, in `claim_next` order, each with its own token."""
        lease_s = checked_lease(lease_s)
        if n <= 0:
            return []
        rows = self._claim_ready(self._grant(agent_id, lease_s, n), work_type)
        return [self._claim(r) for r in rows]

    def claim(self, work_item_id: str, agent_id: str, lease_s: float = DEFAULT_LEASE_S) -> Claim:
        """Claim one named item, whatever its dependencies (the caller orders execution);
        CoordinationConflict if another agent holds a live lease or it is finished. Claiming an
        item this agent already holds re-claims it: the old token becomes stale."""
        row = self._claim_named(self._grant(agent_id, lease_s, 1), work_item_id)
        if row is not None:
            return self._claim(row)
        current = self._current(work_item_id)  # refused: a lapsed lease failed for good stays so
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
        dependencies: each item's dependencies are completed or taken with it. Priority order,
        dependencies before their dependents (`selection.plan_take`). Atomic: concurrent takes
        never share an item."""
        lease_s = checked_lease(lease_s)
        if limit <= 0:
            return []
        if priority_at_least is not None and priority_at_least not in PRIORITY_RANK:
            raise InvalidInput(
                f"priority_at_least must be one of {list(PRIORITY_RANK)}, got {priority_at_least!r}"
            )
        max_rank = PRIORITY_RANK[priority_at_least] if priority_at_least else LOWEST_RANK
        seq_of: dict[str, int] = {}

        def seen(rows: Sequence[Row]) -> Sequence[Row]:
            seq_of.update((r.work_item_id, r.seq) for r in rows)
            return rows

        with self._taking(None if types is None else list(types), max_rank) as source:
            chosen = plan_take(
                limit,
                seen(source.expired()),
                lambda after, n: seen(source.page(after, n)),
                lambda ids: seen(source.by_ids(ids)),
                source.waiting_on,
            )
            if not chosen:
                return []
            grant = self._grant(holder, lease_s, len(chosen))
            rows = source.claim([seq_of[w] for w in chosen], grant)
        return [self._claim(r) for r in rows]

    def assign(self, work_item_id: str, claim_id: str, agent_id: str) -> Claim:
        """Hand a held claim (e.g. taken by a drain run) to `agent_id`, keeping its token."""
        return self._held("assign", work_item_id, claim_id, agent=agent_id)

    # -- holder operations (fenced by the claim id) ------------------------------------------
    def heartbeat(
        self, work_item_id: str, claim_id: str, lease_s: float = DEFAULT_LEASE_S
    ) -> Claim:
        """Extend the holder's lease by `lease_s` from now."""
        return self._held("renew", work_item_id, claim_id, lease_s=checked_lease(lease_s))

    def resume_claim(
        self, work_item_id: str, claim_id: str, lease_s: float = DEFAULT_LEASE_S
    ) -> Claim:
        """Take back a claim a dead attempt of the same run held (`claim_id` is the token it
        got): still held under that token, expired or not, its lease is renewed from now (same
        token, `claims` unchanged); already finished under it (completed, or failed for good),
        the item is returned as it is (its status says which); anything else is a
        CoordinationConflict saying what became of it."""
        lease_s = checked_lease(lease_s)
        rows = self._write("renew", wid=work_item_id, token=claim_id, lease_s=lease_s)
        if rows:
            return self._claim(rows[0])
        current = self._current(work_item_id)
        if current["claim_id"] == claim_id and current["status"] in FINISHED:
            return self._claim(current)
        raise CoordinationConflict(resume_refused(work_item_id, claim_id, current))

    def progress(
        self, work_item_id: str, claim_id: str, percent: int, lease_s: float | None = None
    ) -> Claim:
        """Record progress (0-100); the item becomes in_progress (and its lease is renewed by
        `lease_s` from now when given)."""
        if not 0 <= percent <= 100:
            raise InvalidInput(f"progress must be within 0..100, got {percent}")
        lease = None if lease_s is None else checked_lease(lease_s)
        return self._held("progress", work_item_id, claim_id, percent=percent, lease_s=lease)

    def complete(
        self,
        work_item_id: str,
        claim_id: str,
        result: Any = None,
        log_entry: dict[str, Any] | None = None,
    ) -> Claim:
        """Mark the item completed with `result` (JSON: a NaN or Infinity anywhere in it is an
        `InvalidInput` naming where, before anything is written); only the current claim may.
        Its dependents lose one unmet dependency. `log_entry` is committed with the completion
        (see `complete_many`)."""
        logged = [log_entry] if log_entry else []
        return self.complete_many([(work_item_id, claim_id, result)], logged)[0]

    def complete_many(
        self,
        completions: Iterable[tuple[str, str, Any]],
        log_entries: Iterable[dict[str, Any]] = (),
    ) -> list[Claim]:
        """Complete several held items in one transaction, all or none: any stale token is a
        CoordinationConflict naming it, an item named twice is an InvalidInput (a repeat would
        count its dependents' dependency twice), and nothing is completed (nor logged).
        `log_entries` go to the coordination log with the completions: PostgreSQL inserts them
        in the same transaction; SQLite keeps them in its outbox in the same transaction and
        appends them to `coordination_log.jsonl` right after the commit (an append that fails
        leaves them there for `flush_log`: the next completion or opening of the ledger)."""
        batch = list(completions)
        if not batch:
            return []
        distinct_completions(batch)
        stored = [(w, c, stored_result(r)) for w, c, r in batch]  # refused before any write
        done = self._complete(stored, list(log_entries))
        if len(done) == len(batch):
            by_id = {r["work_item_id"]: r for r in done}
            return [self._claim(by_id[w]) for w, _, _ in batch]
        for work_item_id, claim_id, _ in batch:  # rolled back: say which token was stale
            row = self._current(work_item_id)
            if row["status"] not in HELD or row["claim_id"] != claim_id:
                raise CoordinationConflict(self._stale(work_item_id, claim_id, row))
        raise CoordinationConflict(
            f"complete_many completed {len(done)} of {len(batch)} items; nothing was completed"
        )

    @abc.abstractmethod
    def flush_log(self) -> int:
        """Append the log entries completions left waiting (SQLite's outbox) to the
        coordination log; how many were appended (0 on PostgreSQL, which logs in the
        completion's transaction)."""

    def fail(self, work_item_id: str, claim_id: str, error: str) -> Claim:
        """Count a failed attempt: below `max_attempts` the item is pending again (with
        `last_error`); at `max_attempts` it is failed for good (`result = {"error": …}`)."""
        error = stored_error(error)
        result = stored_result({"error": error})
        return self._held("fail", work_item_id, claim_id, error=error, result=result)

    def release(self, work_item_id: str, claim_id: str) -> Claim:
        """Give the claim back: the item is pending again (no attempt is counted)."""
        return self._held("release", work_item_id, claim_id)

    # -- reading -----------------------------------------------------------------------------
    def get(self, work_item_id: str) -> Claim:
        return self._claim(self._current(work_item_id))

    def statuses(self, work_item_ids: Iterable[str]) -> dict[str, str]:
        """id -> status of the ids that are in the ledger."""
        rows = self._read("statuses", ids=list(work_item_ids))
        return {r["work_item_id"]: r["status"] for r in rows}

    def list(self, status: str | None = None, limit: int | None = None) -> list[Claim]:
        """Items in insertion order, of `status` when given, at most `limit` (None or >= 1)."""
        limit = checked_limit(limit)
        rows = self._read("list_status" if status else "list_all", status=status, limit=limit)
        return [self._claim(r) for r in rows]

    def holdings(self, holders: Iterable[str]) -> list[Claim]:
        """Every item held, or finished, under a claim of one of `holders` (agents, or a drain
        run's id): what a resumed run's dead attempt had, in insertion order. An item given
        back (released, a failed attempt) is no one's. Scans the table (a resume does it once)."""
        rows = self._read("holdings", holders=list(dict.fromkeys(holders)))
        return [self._claim(r) for r in rows]

    def counts(self) -> dict[str, int]:
        """Items per status (statuses with none are left out)."""
        return {r["status"]: r["n"] for r in self._read("counts")}

    def pending_types(self) -> dict[str, int]:
        """Pending items per work type (what a drain must be able to run)."""
        return {r["work_type"]: r["n"] for r in self._read("pending_types")}

    def queue_depth(self) -> int:
        """Pending items (ready or waiting on dependencies)."""
        return self._read("queue_depth")[0]["n"]

    def oldest_pending_age_s(self) -> float | None:
        """Seconds since the oldest pending item was added (None when none is pending)."""
        age = self._read("oldest_pending_age")[0]["age"]
        return None if age is None else max(0.0, age)

    def blocked(self) -> dict[str, list[str]]:
        """Pending items that can never run: id -> the failed-for-good items it (transitively)
        depends on."""
        out: dict[str, list[str]] = {}
        for r in self._read("blocked"):
            out.setdefault(r["work_item_id"], []).append(r["root"])
        return out

    def snapshot(self) -> Snapshot:
        """Materialise `work_claims.json` in the coordination dir (seed shape: every item that
        was ever claimed); an unreadable file there is renamed aside first."""
        rows = self._read("ever_claimed")
        return write_snapshot(self.coordination_dir, [self._claim(r).seed_record() for r in rows])

    @abc.abstractmethod
    def close(self) -> None:
        """Release what this ledger holds in this process (a later call reopens it)."""

    # -- shared shaping ----------------------------------------------------------------------
    def _claim(self, row: DbRow) -> Claim:
        return claim_from_row(row, decode_json=self.decode_json)

    def _grant(self, agent_id: str, lease_s: float, n: int) -> Grant:
        trace_id, span_id = current_telemetry()
        tokens = [new_id("claim") for _ in range(n)]
        return Grant(agent_id, checked_lease(lease_s), tokens, trace_id, span_id)

    def _current(self, work_item_id: str) -> DbRow:
        rows = self._read("get", wid=work_item_id)
        if not rows:
            raise InvalidInput(f"no work item {work_item_id!r} in {self.where}")
        return rows[0]

    @staticmethod
    def _stale(work_item_id: str, claim_id: str, row: DbRow) -> str:
        return stale_message(
            work_item_id, claim_id, row["status"], row["agent_id"], row["claim_id"]
        )

    def _held(self, query: str, work_item_id: str, claim_id: str, **params: Any) -> Claim:
        """One fenced statement: it changes the item only under its current claim `claim_id`."""
        rows = self._write(query, wid=work_item_id, token=claim_id, **params)
        if rows:
            return self._claim(rows[0])
        current = self._current(work_item_id)
        raise CoordinationConflict(self._stale(work_item_id, claim_id, current))

    # -- backend primitives ------------------------------------------------------------------
    @abc.abstractmethod
    def _read(self, query: str, **params: Any) -> list[DbRow]:
        """The rows of a named read-only query."""

    @abc.abstractmethod
    def _write(self, query: str, **params: Any) -> list[DbRow]:
        """The rows a named statement returns, run in a write transaction of its own. The
        holder statements (`renew`, `progress`, `assign`, `fail`, `release`) take `wid` and
        `token` and change the row only while it is held under that token."""

    @abc.abstractmethod
    def _insert(self, items: list[WorkItem], referenced: list[str], check: Check) -> None:
        """In one transaction: read the status of the `referenced` ids already in the ledger
        (held until the commit), `check(known)` them (-> unmet dependencies per new item, or
        an error), insert the items and their dependency rows."""

    @abc.abstractmethod
    def _claim_ready(self, grant: Grant, work_type: str | None) -> list[DbRow]:
        """Dead-letter the lapsed leases at their last attempt (of `work_type`), then take up
        to `len(grant.tokens)` claimable items (ready, of `work_type`) in `claim_next` order."""

    @abc.abstractmethod
    def _claim_named(self, grant: Grant, work_item_id: str) -> DbRow | None:
        """Dead-letter the item if its lapsed lease is at its last attempt, else take it if it
        is pending, its lease lapsed, or `grant.agent` holds it; None when refused."""

    @abc.abstractmethod
    def _taking(self, types: list[str] | None, max_rank: int) -> AbstractContextManager[TakeSource]:
        """A write transaction for `take` (lapsed leases at their last attempt of these types
        and ranks dead-lettered first) and its reads of claimable rows of these types with
        `rank <= max_rank`."""

    @abc.abstractmethod
    def _complete(self, batch: list[Completion], log_entries: list[dict]) -> list[DbRow]:
        """In one transaction: complete each `(work_item_id, claim_id, result JSON)` held under
        its token, decrement its dependents' unmet count, record `log_entries`. Every row, or
        none (rolled back) if any token was stale."""
