"""The designs `claims_bench.py` races the ledger against, beside it: the naive one-JSON-file
ledger, PgQueuer, and the ledger's own single-item statements in a bare loop."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path

from tasks.store import JsonStore


# -- the naive baseline: the original one-JSON-file design --------------------------------
def naive_store(root: Path) -> JsonStore[list[dict]]:
    return JsonStore(root / "work_claims.json", list, lock_timeout_s=600, lock_tries=5)


def naive_claim_next(store: JsonStore[list[dict]], agent_id: str) -> str | None:
    """Read every claim, take the first pending one, rewrite the whole file (under the lock)."""
    taken: list[str] = []

    def mutate(claims: list[dict]) -> None:
        for record in claims:
            if record["status"] == "pending":
                record.update(status="claimed", agent_id=agent_id, claimed_at=time.time())
                taken.append(record["work_item_id"])
                return

    store.update(mutate)
    return taken[0] if taken else None


def naive_complete(store: JsonStore[list[dict]], work_item_id: str, agent_id: str) -> None:
    def mutate(claims: list[dict]) -> None:
        for record in claims:
            if record["work_item_id"] == work_item_id and record["agent_id"] == agent_id:
                record["status"] = "completed"

    store.update(mutate)


# -- PgQueuer, a maintained PostgreSQL queue library ------------------------------------------
async def pgqueuer_worker(url: str, batch: int, ready, start) -> list[str]:
    import psycopg
    from pgqueuer import QueueManager
    from pgqueuer.queries import Queries
    from pgqueuer.types import QueueExecutionMode

    got: list[str] = []
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        qm = QueueManager(Queries.from_psycopg_connection(conn))

        @qm.entrypoint("claim")
        async def claim(job) -> None:
            got.append(job.payload.decode())

        ready.put(url)
        await asyncio.to_thread(start.wait)
        await qm.run(
            batch_size=batch,
            mode=QueueExecutionMode.drain,
            dequeue_timeout=timedelta(seconds=1),
            log_aggregation_interval=timedelta(0),
        )
    return got


async def pgqueuer_setup(url: str, ids: list[str]) -> None:
    import psycopg
    from pgqueuer.queries import Queries

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        queries = Queries.from_psycopg_connection(conn)
        await queries.install()
        for chunk in range(0, len(ids), 5_000):
            part = ids[chunk : chunk + 5_000]
            payloads = [i.encode() for i in part]
            await queries.enqueue(["claim"] * len(part), payloads, [0] * len(part))


# -- the ledger's single-item statements, without the ledger ------------------------------------
def statements_worker(url: str, agent: str, ready, start) -> list[str]:
    """The ledger's two single-item statements (`claim_one`, `complete_leaf`) in a bare psycopg
    loop: what `claim_next` + `complete` cost without the Python layer above them."""
    import psycopg

    from tasks.claims.ledger import only
    from tasks.claims.postgres import Q
    from tasks.ids import new_id

    got: list[str] = []
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        ready.put(agent)
        start.wait()
        while True:
            token = new_id("claim")
            grant = {"agent": agent, "lease_s": 300.0, "token": token, "trace": None, "span": None}
            row = cur.execute(Q["claim_one"], {**only(), **grant}, binary=True).fetchone()
            if row is None:
                break
            done = {"wid": row[0], "token": token, "result": "null"}
            cur.execute(Q["complete_leaf"], done, binary=True).fetchall()
            got.append(row[0])
    return got
