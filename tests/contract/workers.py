"""Child-process bodies for the ledger contract tests (fork server children: importable by
module path, which the server preloads).

Each gets the backend as `(coordination_dir, dsn)` — dsn None means SQLite; a child sees the fork
server's environment, not the test's — and reports what it was told it got through a queue."""

from __future__ import annotations

import time

from tasks.claims import open_ledger
from tasks.settings import Settings


def ledger_of(where: tuple[str, str | None]):
    coordination_dir, dsn = where
    return open_ledger(Settings(coordination_dir=coordination_dir, database_url=dsn))


def drain(where, agent: str, batch: int, start, out) -> None:
    """Claim and complete until nothing is claimable: one at a time (batch 1) or in batches."""
    got: list[tuple[str, str]] = []
    with ledger_of(where) as ledger:
        start.wait()
        while True:
            if batch > 1:
                claims = ledger.claim_many(agent, batch)
            else:
                claims = [c for c in [ledger.claim_next(agent)] if c is not None]
            if not claims:
                break
            ledger.complete_many([(c.work_item_id, c.claim_id, {"by": agent}) for c in claims])
            got += [(c.work_item_id, c.claim_id) for c in claims]
    out.put((agent, got))


def hold_until_killed(where, lease_s: float) -> None:
    """Claim one item and keep it (no heartbeat) until SIGKILLed."""
    with ledger_of(where) as ledger:
        ledger.claim_next("agent_victim", lease_s=lease_s)
        time.sleep(600)


def take_and_complete(where, holder: str, limit: int, start, out) -> None:
    """A drain run: take up to `limit` items, complete them, again until the queue is empty."""
    got: list[str] = []
    with ledger_of(where) as ledger:
        start.wait()
        while True:
            taken = ledger.take(holder, limit)
            if not taken:
                if not ledger.queue_depth():
                    break
                time.sleep(0.01)  # the rest waits on items the other run holds
                continue
            ledger.complete_many([(c.work_item_id, c.claim_id, None) for c in taken])
            got += [c.work_item_id for c in taken]
    out.put((holder, got))
