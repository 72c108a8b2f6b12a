"""Pure rules of the queue, shared by both backends: what `add` accepts and what `take` selects.

No I/O here: the backends fetch rows under their lock and ask these functions what to do, so
the two backends cannot drift apart on the rules.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from tasks.claims.models import FINISHED, HELD, WorkItem
from tasks.errors import InvalidInput
from tasks.graph import batches

NOTHING_ADDED = "nothing was added"


def coerce_items(items: Iterable[WorkItem | dict[str, Any]]) -> list[WorkItem]:
    """WorkItems from models or dicts; the first invalid one is one `InvalidInput` line."""
    out: list[WorkItem] = []
    for number, item in enumerate(items):
        if isinstance(item, WorkItem):
            out.append(item)
            continue
        try:
            out.append(WorkItem.model_validate(item))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "item"
            message = first["msg"].removeprefix("Value error, ")
            name = item.get("work_item_id", f"#{number}") if isinstance(item, dict) else number
            raise InvalidInput(f"work item {name}: {where}: {message}; {NOTHING_ADDED}") from None
    return out


def referenced_ids(items: Sequence[WorkItem]) -> list[str]:
    """Every id the batch names (its own and its dependencies), for one lookup in the ledger."""
    ids = {i.work_item_id for i in items}
    ids.update(d for i in items for d in i.dependencies)
    return sorted(ids)


def validate_new_items(items: Sequence[WorkItem], known: Mapping[str, str]) -> dict[str, int]:
    """Check a batch against the ledger (`known`: id -> status of the referenced ids already in
    it) and return, per new item, how many of its dependencies are not completed yet.

    Raises one `InvalidInput` line for a duplicate id (in the batch or already in the ledger),
    a dependency that is neither in the batch nor in the ledger, a payload that is not a JSON
    object, and `DependencyCycle` (naming the cycle) for a cycle. Items already in the ledger
    can only depend on items older than themselves, so a cycle can only lie inside the batch.
    """
    ids = [i.work_item_id for i in items]
    seen: set[str] = set()
    duplicates = sorted({i for i in ids if i in seen or seen.add(i)})
    if duplicates:
        raise InvalidInput(f"duplicate work_item_id in the batch: {duplicates}; {NOTHING_ADDED}")
    taken = sorted(i for i in ids if i in known)
    if taken:
        raise InvalidInput(f"work items already in the ledger: {taken[:10]}; {NOTHING_ADDED}")
    batch = set(ids)
    for item in items:
        unknown = [d for d in item.dependencies if d not in batch and d not in known]
        if unknown:
            raise InvalidInput(
                f"{item.work_item_id!r} depends on unknown work item "
                f"{', '.join(map(repr, unknown))} (neither in this batch nor in the ledger); "
                f"{NOTHING_ADDED}"
            )
        try:
            json.dumps(item.payload, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(
                f"work item {item.work_item_id}: payload must be a JSON object ({exc}); "
                f"{NOTHING_ADDED}"
            ) from None
    batches({i.work_item_id: [d for d in i.dependencies if d in batch] for i in items}, "work item")
    return {
        i.work_item_id: sum(1 for d in i.dependencies if known.get(d) != "completed") for i in items
    }


def distinct_completions(batch: Sequence[tuple[str, str, Any]]) -> None:
    """A completion batch names each item once: a repeat would count its dependents' unmet
    dependency twice (SQLite) or make the row count differ (PostgreSQL). One `InvalidInput`
    naming the repeated ids; nothing is completed."""
    seen: set[str] = set()
    repeated = sorted({w for w, _, _ in batch if w in seen or seen.add(w)})
    if repeated:
        raise InvalidInput(
            f"complete_many names work item(s) {repeated[:10]} more than once; each item is "
            "completed once per batch; nothing was completed"
        )


@dataclass(frozen=True)
class Candidate:
    """A claimable item `take` may select: its priority order key and the dependencies that
    are not completed yet."""

    work_item_id: str
    key: tuple[int, int]  # (rank, seq): priority, then insertion order
    waiting_on: tuple[str, ...] = ()


def closed_selection(pool: Mapping[str, Candidate], limit: int) -> list[str]:
    """Up to `limit` ids from `pool`, in priority order, closed under dependencies: an item is
    selected only with every dependency it still waits on (deps first in the result). An item
    waiting on something outside the pool is not selectable."""
    chosen: dict[str, None] = {}
    unselectable: set[str] = set()
    for candidate in sorted(pool.values(), key=lambda c: c.key):
        if len(chosen) >= limit:
            break
        if candidate.work_item_id in chosen or candidate.work_item_id in unselectable:
            continue
        closure = _closure(candidate.work_item_id, pool, chosen)
        if closure is None:
            unselectable.add(candidate.work_item_id)
        elif len(chosen) + len(closure) <= limit:
            chosen.update(dict.fromkeys(closure))
    return list(chosen)


def _closure(start: str, pool: Mapping[str, Candidate], chosen: Mapping[str, None]):
    """`start` and what it transitively waits on that is not chosen yet, dependencies first;
    None when something it waits on is not in the pool."""
    order: list[str] = []
    seen: set[str] = set()
    stack: list[tuple[str, bool]] = [(start, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if node in seen or node in chosen:
            continue
        if node not in pool:
            return None
        seen.add(node)
        stack.append((node, True))
        stack.extend((d, False) for d in pool[node].waiting_on)
    return order


@dataclass(frozen=True)
class Row:
    """What `take` reads of a claimable item."""

    work_item_id: str
    rank: int
    seq: int
    unmet: int  # dependencies not completed yet


def plan_take(
    limit: int,
    expired: Sequence[Row],
    fetch_page: Callable[[tuple[int, int] | None, int], Sequence[Row]],
    fetch_ids: Callable[[list[str]], Sequence[Row]],
    waiting_on: Callable[[list[str]], Mapping[str, tuple[str, ...]]],
) -> list[str]:
    """The ids `take` claims: the items whose lease expired (`expired`) and pages of pending
    items in priority order (`fetch_page(after, n)`, keyset after `(rank, seq)`), grown by the
    claimable dependencies they wait on (`fetch_ids`), until `limit` items closed under
    dependencies are found or nothing is left.
    The backend calls this inside its transaction, its fetches locking what they return."""
    page_size = max(2 * limit, 100)
    pool: dict[str, Candidate] = {}
    after: tuple[int, int] | None = None
    _grow(pool, expired, fetch_ids, waiting_on)
    while True:
        page = fetch_page(after, page_size)
        _grow(pool, page, fetch_ids, waiting_on)
        chosen = closed_selection(pool, limit)
        if len(chosen) >= limit or len(page) < page_size:
            return chosen
        after = (page[-1].rank, page[-1].seq)


def _grow(pool: dict[str, Candidate], rows: Sequence[Row], fetch_ids, waiting_on) -> None:
    new = [r for r in rows if r.work_item_id not in pool]
    while new:
        waits = waiting_on([r.work_item_id for r in new if r.unmet])
        for r in new:
            pool[r.work_item_id] = Candidate(
                r.work_item_id, (r.rank, r.seq), tuple(waits.get(r.work_item_id, ()))
            )
        missing = sorted({d for ds in waits.values() for d in ds if d not in pool})
        new = [r for r in fetch_ids(missing) if r.work_item_id not in pool] if missing else []


def stale_message(work_item_id: str, claim_id: str, status: str, holder: str | None, token):
    """Why a holder operation with `claim_id` was refused (the item's current state)."""
    if status in HELD:
        return (
            f"claim {claim_id} on {work_item_id} is stale: the item is {status} under claim "
            f"{token} by {holder}"
        )
    return f"claim {claim_id} on {work_item_id} is stale: the item is {status}"


def resume_refused(work_item_id: str, claim_id: str, row: Mapping[str, Any]) -> str:
    """Why `resume_claim(work_item_id, claim_id)` was refused: what became of the item."""
    status, holder, token = row["status"], row["agent_id"], row["claim_id"]
    if status in HELD or status in FINISHED:
        now = f"{status} under claim {token}" + (f" by {holder}" if holder else "")
    else:  # pending again: released, a failed attempt, or never claimed
        now = f"{status} (given back: released, or a failed attempt)"
    return f"cannot resume claim {claim_id} on {work_item_id}: the item is {now}"
