"""The agent registry: which agents exist, their status, workload, heartbeat and real metrics.

Two backends, chosen like the ledger's (`open_registry(settings)`):

- Embedded: `agent_status.json` in the coordination dir, in its classic shape (agent_id, team,
  status, capacity, current_workload, specialization, last_heartbeat, performance_metrics),
  every mutation under the locked JSON store.
- PostgreSQL (`REACTOR_DATABASE_URL`): the `reactor_agents` table; each record is kept whole
  (JSONB, the same shape) with its status and heartbeat as columns, and every mutation is
  one statement.

The module-level functions (`register(agents, where)`, …) take `where`: a coordination dir
(embedded, at that dir), or Settings / None (the configured backend). An agent whose
heartbeat is older than a timeout can be marked `dead` (`mark_lapsed`): only `active` agents
(a finished run's agents are `idle` and do not beat), each by its own `heartbeat_timeout_s` when
its run registered one, else by the caller's. Registering an agent that is already there (a
resumed run re-registering its agents) makes it `active` again and keeps its metrics.

Agents of finished runs (`idle`) leave the registry when the next run registers its own: their
numbers live on in the run's datasets and the coordination log, so the registry holds the live
runs' agents, the last finished run's and the dead agents of crashed runs (a resume finds its
agents by them), and a write costs the same after one run as after a thousand
(bench/registry_bench.py). Pure module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from tasks.settings import Settings, get_settings
from tasks.store import JsonStore

if TYPE_CHECKING:
    from tasks.swarm.models import Agent

AGENTS_FILE = "agent_status.json"
DEAD = "dead"
ACTIVE = "active"
IDLE = "idle"  # the status of a finished run's agents
TIMEOUT_FIELD = "heartbeat_timeout_s"
Where = Settings | Path | str | None


def _now() -> str:
    return datetime.now(UTC).isoformat()


def agent_record(
    agent: Agent,
    now: str | None = None,
    heartbeat_timeout_s: float | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """A new agent's record, in the classic fields (plus name, speed and, when given, the run
    that formed it and the heartbeat timeout after which it counts as dead)."""
    extra: dict[str, Any] = {"run_id": run_id} if run_id else {}
    if heartbeat_timeout_s:
        extra[TIMEOUT_FIELD] = heartbeat_timeout_s
    return {
        "agent_id": agent.agent_id,
        "team": agent.team,
        "status": "active",
        "capacity": agent.concurrency,
        "current_workload": 0,
        "specialization": ",".join(agent.specializations) or "general",
        "last_heartbeat": now or _now(),
        "performance_metrics": {
            "tasks_completed": 0,
            "tasks_failed": 0,
            "average_completion_time": None,
            "success_rate": None,
            "total_busy_ms": 0.0,
        },
        "name": agent.name,
        "speed": agent.speed,
        **extra,
    }


def fold_outcome(record: dict[str, Any], duration_ms: float, succeeded: bool) -> None:
    """Fold one finished task into an agent record's real metrics (in place)."""
    m = record.setdefault("performance_metrics", {})
    done = int(m.get("tasks_completed", 0)) + (1 if succeeded else 0)
    failed = int(m.get("tasks_failed", 0)) + (0 if succeeded else 1)
    busy = float(m.get("total_busy_ms", 0.0)) + duration_ms
    m.update(
        tasks_completed=done,
        tasks_failed=failed,
        total_busy_ms=round(busy, 3),
        average_completion_time=round(busy / (done + failed), 3),
        success_rate=round(done / (done + failed), 4),
    )


class AgentRegistry(Protocol):
    name: str  # the store, for messages

    def add(self, records: list[dict[str, Any]]) -> None:
        """Store new agents' records (`agent_record`) as the module's `register` says."""

    def deregister(self, agent_ids: Iterable[str]) -> int: ...
    def set_status(self, agent_ids: Iterable[str], status: str) -> None: ...
    def set_workload(self, agent_id: str, delta: int) -> None: ...
    def record_outcome(self, agent_id: str, duration_ms: float, succeeded: bool) -> None: ...
    def heartbeat(self, agent_ids: Iterable[str]) -> None: ...
    def mark_lapsed(self, heartbeat_timeout_s: float) -> list[str]: ...
    def agents(self) -> list[dict[str, Any]]: ...


class JsonAgentRegistry:
    """`agent_status.json` in `coordination_dir`."""

    name = AGENTS_FILE

    def __init__(self, coordination_dir: Path | str, settings: Settings | None = None) -> None:
        kwargs = {}
        if settings is not None:
            kwargs = {"lock_timeout_s": settings.lock_timeout_s, "lock_tries": settings.lock_tries}
        self.store: JsonStore[list[dict[str, Any]]] = JsonStore(
            Path(coordination_dir) / AGENTS_FILE, list, **kwargs
        )

    def _each(self, ids: Iterable[str], change: Callable[[dict[str, Any]], None]) -> None:
        wanted = set(ids)

        def mutate(rows: list[dict[str, Any]]) -> None:
            for r in rows:
                if r.get("agent_id") in wanted:
                    change(r)

        self.store.update(mutate)

    def add(self, records: list[dict[str, Any]]) -> None:
        new_records = {r["agent_id"]: r for r in records}

        def upsert(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
            # finished runs' agents leave; ours, if already there (a resumed run), stay
            pending = dict(new_records)
            kept = [r for r in rows if r.get("status") != IDLE or r.get("agent_id") in pending]
            for r in kept:  # already registered (a resumed run): active again, metrics kept
                if (new := pending.pop(r.get("agent_id"), None)) is not None:
                    r.update(status=ACTIVE, last_heartbeat=new["last_heartbeat"])
                    if TIMEOUT_FIELD in new:
                        r[TIMEOUT_FIELD] = new[TIMEOUT_FIELD]
            return kept + list(pending.values())

        self.store.update(upsert)

    def deregister(self, agent_ids: Iterable[str]) -> int:
        gone = set(agent_ids)
        removed: list[int] = []

        def drop(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
            kept = [r for r in rows if r.get("agent_id") not in gone]
            removed.append(len(rows) - len(kept))
            return kept

        self.store.update(drop)
        return removed[0]

    def set_status(self, agent_ids: Iterable[str], status: str) -> None:
        now = _now()
        self._each(agent_ids, lambda r: r.update(status=status, last_heartbeat=now))

    def set_workload(self, agent_id: str, delta: int) -> None:
        def bump(r: dict[str, Any]) -> None:
            r["current_workload"] = max(0, int(r.get("current_workload", 0)) + delta)
            r["last_heartbeat"] = _now()

        self._each([agent_id], bump)

    def record_outcome(self, agent_id: str, duration_ms: float, succeeded: bool) -> None:
        def fold(r: dict[str, Any]) -> None:
            fold_outcome(r, duration_ms, succeeded)
            r["last_heartbeat"] = _now()

        self._each([agent_id], fold)

    def heartbeat(self, agent_ids: Iterable[str]) -> None:
        now = _now()
        self._each(agent_ids, lambda r: r.update(last_heartbeat=now))

    def mark_lapsed(self, heartbeat_timeout_s: float) -> list[str]:
        cutoff = datetime.now(UTC) - timedelta(seconds=heartbeat_timeout_s)
        lapsed: list[str] = []

        def mark(rows: list[dict[str, Any]]) -> None:
            now = datetime.now(UTC)
            for r in rows:
                beat, own = r.get("last_heartbeat"), r.get(TIMEOUT_FIELD)
                limit = now - timedelta(seconds=own) if own else cutoff
                if r.get("status") == ACTIVE and beat and datetime.fromisoformat(beat) < limit:
                    r["status"] = DEAD
                    lapsed.append(r["agent_id"])

        self.store.update(mark)
        return lapsed

    def agents(self) -> list[dict[str, Any]]:
        return self.store.read()


class PostgresAgentRegistry:
    """The `reactor_agents` table (one JSONB record per agent, seed shape)."""

    name = "the reactor_agents table"

    def __init__(self, dsn: str) -> None:
        from tasks.claims.pg import pool

        self._dsn = dsn
        pool(dsn)  # connect and migrate now

    def _execute(self, sql: str, args: Any = None) -> list[dict[str, Any]]:
        from tasks.claims.pg import connection

        with connection(self._dsn) as conn:
            cur = conn.execute(sql, args)
            return cur.fetchall() if cur.description else []

    def add(self, records: list[dict[str, Any]]) -> None:
        from psycopg.types.json import Jsonb

        from tasks.claims.pg import connection

        with connection(self._dsn) as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute(  # finished runs' agents leave; ours (a resumed run) stay
                "DELETE FROM reactor_agents WHERE status = %s AND NOT agent_id = ANY(%s)",
                (IDLE, [r["agent_id"] for r in records]),
            )
            cur.executemany(
                "INSERT INTO reactor_agents (agent_id, status, last_heartbeat, record) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (agent_id) DO UPDATE SET "
                "status = EXCLUDED.status, last_heartbeat = EXCLUDED.last_heartbeat, "
                # already registered (a resumed run): active again, its metrics kept
                "record = reactor_agents.record || jsonb_strip_nulls(jsonb_build_object("
                "'status', EXCLUDED.status, 'last_heartbeat', EXCLUDED.record->'last_heartbeat',"
                f" '{TIMEOUT_FIELD}', EXCLUDED.record->'{TIMEOUT_FIELD}'))",
                [(r["agent_id"], ACTIVE, r["last_heartbeat"], Jsonb(r)) for r in records],
            )

    def deregister(self, agent_ids: Iterable[str]) -> int:
        rows = self._execute(
            "DELETE FROM reactor_agents WHERE agent_id = ANY(%s) RETURNING agent_id",
            (list(agent_ids),),
        )
        return len(rows)

    def set_status(self, agent_ids: Iterable[str], status: str) -> None:
        self._execute(
            "UPDATE reactor_agents SET status = %(s)s, last_heartbeat = now(), record = record "
            "|| jsonb_build_object('status', %(s)s::text, 'last_heartbeat', %(now)s::text) "
            "WHERE agent_id = ANY(%(ids)s)",
            {"s": status, "now": _now(), "ids": list(agent_ids)},
        )

    def set_workload(self, agent_id: str, delta: int) -> None:
        self._execute(
            "UPDATE reactor_agents SET last_heartbeat = now(), record = record || "
            "jsonb_build_object('current_workload', greatest(0, coalesce((record->>"
            "'current_workload')::int, 0) + %(d)s), 'last_heartbeat', %(now)s::text) "
            "WHERE agent_id = %(id)s",
            {"d": delta, "now": _now(), "id": agent_id},
        )

    def record_outcome(self, agent_id: str, duration_ms: float, succeeded: bool) -> None:
        from psycopg.types.json import Jsonb

        from tasks.claims.pg import connection

        with connection(self._dsn) as conn, conn.transaction():
            row = conn.execute(
                "SELECT record FROM reactor_agents WHERE agent_id = %s FOR UPDATE", (agent_id,)
            ).fetchone()
            if row is None:
                return
            record = row["record"]
            fold_outcome(record, duration_ms, succeeded)
            record["last_heartbeat"] = _now()
            conn.execute(
                "UPDATE reactor_agents SET record = %s, last_heartbeat = now() WHERE agent_id = %s",
                (Jsonb(record), agent_id),
            )

    def heartbeat(self, agent_ids: Iterable[str]) -> None:
        self._execute(
            "UPDATE reactor_agents SET last_heartbeat = now(), record = record || "
            "jsonb_build_object('last_heartbeat', %(now)s::text) WHERE agent_id = ANY(%(ids)s)",
            {"now": _now(), "ids": list(agent_ids)},
        )

    def mark_lapsed(self, heartbeat_timeout_s: float) -> list[str]:
        rows = self._execute(
            "UPDATE reactor_agents SET status = 'dead', record = record || "
            "jsonb_build_object('status', 'dead') WHERE status = 'active' AND "
            f"last_heartbeat < now() - coalesce((record->>'{TIMEOUT_FIELD}')::float, %s) "
            "* interval '1 second' RETURNING agent_id",
            (heartbeat_timeout_s,),
        )
        return sorted(r["agent_id"] for r in rows)

    def agents(self) -> list[dict[str, Any]]:
        rows = self._execute("SELECT record FROM reactor_agents ORDER BY seq")
        return [r["record"] for r in rows]


def open_registry(where: Where = None) -> AgentRegistry:
    """The registry at a coordination dir (embedded), or the configured backend's."""
    if isinstance(where, Path | str):
        return JsonAgentRegistry(where)
    settings = where or get_settings()
    if settings.database_dsn:
        return PostgresAgentRegistry(settings.database_dsn)
    return JsonAgentRegistry(settings.coordination_dir, settings)


def register(
    agents: list[Agent],
    where: Where = None,
    heartbeat_timeout_s: float | None = None,
    run_id: str | None = None,
) -> None:
    """Add the agents (status `active`, zeroed metrics); one already there is `active` again
    with its metrics kept; agents of finished runs (`idle`) leave the registry.
    `heartbeat_timeout_s`: after that long without a heartbeat the agent counts as dead
    (`mark_lapsed`), whatever timeout the sweeper uses; `run_id`: the run that formed them (a
    resumed run finds its agents by it, `agents_of_run`)."""
    now = _now()
    open_registry(where).add([agent_record(a, now, heartbeat_timeout_s, run_id) for a in agents])


def agents_of_run(run_id: str, where: Where = None) -> dict[str, str]:
    """name -> agent id of the agents registered for `run_id`, in registration order."""
    return {
        r["name"]: r["agent_id"]
        for r in open_registry(where).agents()
        if r.get("run_id") == run_id and r.get("name")
    }


def deregister(agent_ids: Iterable[str], where: Where = None) -> int:
    """Remove the agents; returns how many were removed."""
    return open_registry(where).deregister(agent_ids)


def set_status(agent_ids: Iterable[str], status: str, where: Where = None) -> None:
    """Set the agents' status (e.g. `idle` once their run is over)."""
    open_registry(where).set_status(agent_ids, status)


def set_workload(agent_id: str, delta: int, where: Where = None) -> None:
    open_registry(where).set_workload(agent_id, delta)


def record_outcome(agent_id: str, duration_ms: float, succeeded: bool, where: Where = None) -> None:
    """Fold one finished task into the agent's real metrics."""
    open_registry(where).record_outcome(agent_id, duration_ms, succeeded)


def heartbeat(agent_ids: Iterable[str], where: Where = None) -> None:
    """The agents are alive now."""
    open_registry(where).heartbeat(agent_ids)


def mark_lapsed(heartbeat_timeout_s: float, where: Where = None) -> list[str]:
    """Mark `dead` every `active` agent whose last heartbeat is older than its own timeout, or
    `heartbeat_timeout_s` when it has none; returns them."""
    return open_registry(where).mark_lapsed(heartbeat_timeout_s)


def agents(where: Where = None) -> list[dict[str, Any]]:
    return open_registry(where).agents()
