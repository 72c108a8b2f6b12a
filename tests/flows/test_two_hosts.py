"""Two hosts, one queue: the multi-host topology of the README on one machine.

One Prefect server on PostgreSQL (its own database on the session's test PostgreSQL, started by
`deployments.server`, the code behind `make server`, on a free loopback port), the swarm
deployment registered on the process work pool, and two process workers (`deployments.worker`,
behind `make worker`) as separate process trees, each with its own working directory, Prefect
home and `REACTOR_COORDINATION_DIR`, as two machines would have: they share only
`PREFECT_API_URL` and `REACTOR_DATABASE_URL` (a database of their own). Several drain runs
start at once over one queue; one worker is SIGKILLed with its flow-run processes mid-run.

Every process this module starts is killed at the end, and both databases are dropped, even
when a test fails.

A completion and its coordination-log entry are one PostgreSQL transaction, so a host killed at
any point leaves either both or neither.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
import pytest

from deployments import server as local
from deployments.deploy import PROJECT_DIR
from tasks.claims import open_ledger
from tasks.jsonl import iter_jsonl
from tasks.settings import Settings
from tasks.swarm.models import SwarmRequest
from tests.flows.test_server import expect_prefect_toml_settings
from tests.loopback import free_port
from tests.postgres import drop_database, fresh_database
from tests.waiting import wait_until

HOSTS = ("host-a", "host-b")
POOL = "reactor-process"  # the work pool prefect.yaml names
DEPLOYMENT = "swarm-hourly"
FLOW = "swarm-coordination"
HANDLER = "tests.flows.two_host_handler:record"
WORK_TYPE = "twohost.record"
ITEMS = 8
RUNS = 2  # drains started at once, ITEMS / RUNS items each
SLEEP_S = 1.0  # each handler call's work
LEASE_S = 15.0  # short, so the killed host's claims expire within the test


def _kill_tree(pid: int) -> set[int]:
    """SIGKILL `pid` and every descendant, process group by process group (Prefect starts each
    flow run in a session of its own); the pids that were killed."""
    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return set()
    groups = set()
    for proc in tree:
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            groups.add(os.getpgid(proc.pid))
    for group in groups - {os.getpgrp()}:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
    for proc in tree:  # anything that left its group
        with contextlib.suppress(psutil.Error):
            proc.kill()
    return {p.pid for p in tree}


# -- the Prefect server on PostgreSQL ------------------------------------------------------------
@dataclass
class PrefectOnPostgres:
    api_url: str
    database_url: str  # postgresql://… (psycopg's form)
    home: Path
    state: Path  # deployments.server's record of the process
    server: local.Server


@pytest.fixture(scope="module")
def prefect_on_pg(pg_url, tmp_path_factory) -> Iterator[PrefectOnPostgres]:
    """`deployments.server.start_server` with PREFECT_SERVER_DATABASE_CONNECTION_URL set to a
    fresh database (in the plain `postgresql://` form: the server gets asyncpg)."""
    root = tmp_path_factory.mktemp("prefect-on-pg")
    database = fresh_database(pg_url, "prefect")
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env |= {"PREFECT_HOME": str(root / "home"), local.DATABASE_ENV: database}
    # no scheduled runs: the test triggers every run itself (swarm-hourly is scheduled)
    env["PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED"] = "false"
    state = root / "state"
    try:
        server = local.start_server(state, timeout_s=300, port=free_port(), env=env)
        yield PrefectOnPostgres(server.api_url, database, root / "home", state, server)
    finally:
        local.stop_server(state)  # the process its record names (and what it spawned)
        drop_database(database, pg_url)


def _api(prefect: PrefectOnPostgres, method: str, path: str, **kwargs) -> Any:
    response = httpx.request(method, f"{prefect.api_url}{path}", timeout=30, **kwargs)
    response.raise_for_status()
    return response.json() if response.content else None


@pytest.mark.timeout(900)  # includes a real server start: minutes on loaded cores
def test_server_started_with_a_postgres_url_stores_its_runs_in_that_database(prefect_on_pg):
    """Also `make server`'s own checks (once tests/flows/test_server.py's, on a second server of
    its own): it records the process it started, reads prefect.toml and points the UI at its
    API when it is not on 127.0.0.1:4200."""
    server, state = prefect_on_pg.server, prefect_on_pg.state
    assert server.started_here and local.running_server(state).api_url == server.api_url
    settings = _api(prefect_on_pg, "GET", "/admin/settings")
    expect_prefect_toml_settings(settings)
    assert settings["server"]["ui"]["api_url"] == server.api_url
    flow = _api(prefect_on_pg, "POST", "/flows/", json={"name": "two-hosts-probe"})
    run = _api(prefect_on_pg, "POST", "/flow_runs/", json={"flow_id": flow["id"]})
    with psycopg.connect(prefect_on_pg.database_url) as conn:
        stored = conn.execute(
            "SELECT flow_run.name, flow.name FROM flow_run JOIN flow ON flow.id = flow_run.flow_id"
            " WHERE flow_run.id = %s",
            (run["id"],),
        ).fetchone()
    assert stored == (run["name"], "two-hosts-probe")
    assert not list(prefect_on_pg.home.rglob("*.db")), "the server also wrote a SQLite database"


# -- two hosts: workers, the deployment, the queue -------------------------------------------------
@dataclass
class Host:
    name: str
    root: Path
    process: subprocess.Popen
    killed: set[int] = field(default_factory=set)

    @property
    def coordination_dir(self) -> Path:
        return self.root / "coordination"

    def processes(self) -> set[int]:
        with contextlib.suppress(psutil.NoSuchProcess):
            me = psutil.Process(self.process.pid)
            return {me.pid, *(c.pid for c in me.children(recursive=True))}
        return set()

    def send(self, sig: signal.Signals) -> None:
        """Send `sig` to the worker and all its flow runs (again to any started meanwhile)."""
        sent: set[int] = set()
        while new := self.processes() - sent:
            for pid in new:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            sent |= new

    def kill(self) -> set[int]:
        """SIGKILL the worker and its flow runs (each in its own process group)."""
        self.killed |= _kill_tree(self.process.pid)
        self.process.wait(timeout=30)
        return self.killed


def _start_worker(name: str, root: Path, api_url: str, database_url: str) -> Host:
    """`python -m deployments.worker` (what `make worker` runs) for one "host": its own working
    directory, Prefect home and coordination dir; the shared API and database URLs."""
    (root / "work").mkdir(parents=True)
    env = {
        **os.environ,
        "PREFECT_API_URL": api_url,
        "PREFECT_HOME": str(root / "prefect"),
        "PREFECT_WORKER_QUERY_SECONDS": "1",  # poll every second (10 s by default)
        "PREFECT_WORKER_PREFETCH_SECONDS": "1",
        "REACTOR_COORDINATION_DIR": str(root / "coordination"),
        "REACTOR_EXPORTS_DIR": str(root / "exports"),
        "REACTOR_DATABASE_URL": database_url,
        "REACTOR_MAX_WORKERS": "2",  # two handler processes per flow run (2 loaded cores)
        # the handler module lives in this repository's tests package, as a user's handler
        # package is installed on each host
        "PYTHONPATH": str(PROJECT_DIR),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    log = open(root / "worker.log", "w", encoding="utf-8")  # noqa: SIM115 (the worker's own)
    process = subprocess.Popen(
        [sys.executable, "-m", "deployments.worker", "--pool", POOL, "--name", name,
         "--limit", "2"],
        cwd=root / "work", env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    return Host(name, root, process)


@dataclass
class Cluster:
    prefect: PrefectOnPostgres
    database_url: str  # REACTOR_DATABASE_URL of both hosts
    root: Path
    hosts: dict[str, Host]
    deployment_id: str

    def settings(self) -> Settings:
        return Settings(coordination_dir=self.root / "observer", database_url=self.database_url)

    def trigger(self, request: dict[str, Any]) -> str:
        run = _api(
            self.prefect, "POST", f"/deployments/{self.deployment_id}/create_flow_run",
            json={"parameters": {"request": request}},
        )  # fmt: skip
        return run["id"]

    def flow_run(self, run_id: str) -> dict[str, Any]:
        return _api(self.prefect, "GET", f"/flow_runs/{run_id}")

    def online_workers(self) -> set[str]:
        workers = _api(self.prefect, "POST", f"/work_pools/{POOL}/workers/filter", json={})
        return {w["name"] for w in workers if w.get("status") == "ONLINE"}


def _ensure_pool(prefect: PrefectOnPostgres) -> None:
    with contextlib.suppress(httpx.HTTPStatusError):  # 409: it exists
        _api(prefect, "POST", "/work_pools/", json={"name": POOL, "type": "process"})


def _deploy(prefect: PrefectOnPostgres) -> str:
    """The swarm deployment of prefect.yaml (`prefect deploy --name`), on the work pool."""
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect.api_url,
        "REACTOR_PROJECT_DIR": str(PROJECT_DIR),
    }
    done = subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--name", DEPLOYMENT],
        cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    deployment = _api(prefect, "GET", f"/deployments/name/{FLOW}/{DEPLOYMENT}")
    # prefect.yaml runs one hourly drain at a time; N hosts draining at once is N runs
    _api(prefect, "PATCH", f"/deployments/{deployment['id']}", json={"concurrency_limit": RUNS + 2})
    return deployment["id"]


@pytest.fixture
def cluster(prefect_on_pg, pg_url, tmp_path) -> Iterator[Cluster]:
    database = fresh_database(pg_url, "reactor_two_hosts")
    hosts: dict[str, Host] = {}
    try:
        _ensure_pool(prefect_on_pg)
        for name in HOSTS:  # the workers start while the deployment registers
            hosts[name] = _start_worker(name, tmp_path / name, prefect_on_pg.api_url, database)
        deployment_id = _deploy(prefect_on_pg)
        cluster = Cluster(prefect_on_pg, database, tmp_path, hosts, deployment_id)
        wait_until("both workers online", lambda: cluster.online_workers() >= set(HOSTS), 120, 1)
        yield cluster
    finally:
        for host in hosts.values():
            host.kill()
        drop_database(database, pg_url)


def _drain(log: Path, limit: int) -> dict[str, Any]:
    return {
        "queue": {"limit": limit, "types": [WORK_TYPE], "timeout_s": 120},
        "handlers": {WORK_TYPE: {"kind": "python", "target": HANDLER}},
        "lease_s": LEASE_S,
        "max_agents": 2,
        "min_success_rate": 0.0,  # what a run cannot finish goes back to the queue
    }


@dataclass
class Execution:
    item: str
    host: str
    execution: str
    started: float
    ended: float | None


def _executions(log: Path) -> dict[str, list[Execution]]:
    """item -> its handler executions, from the handler's own records."""
    by_id: dict[str, Execution] = {}
    for r in iter_jsonl(log):
        if r["event"] == "start":
            by_id[r["execution"]] = Execution(r["item"], r["host"], r["execution"], r["at"], None)
        else:
            by_id[r["execution"]].ended = r["at"]
    out: dict[str, list[Execution]] = {}
    for e in by_id.values():
        out.setdefault(e.item, []).append(e)
    return out


def _held(cluster: Cluster) -> dict[str, tuple[str, datetime]]:
    """Items held right now: work_item_id -> (claim id, lease end), from PostgreSQL."""
    with psycopg.connect(cluster.database_url) as conn:
        rows = conn.execute(
            "SELECT work_item_id, claim_id, lease_expires FROM reactor_work_items"
            " WHERE status IN ('claimed', 'in_progress')"
        ).fetchall()
    return {w: (c, e) for w, c, e in rows}


def _live_leases(cluster: Cluster) -> int:
    with psycopg.connect(cluster.database_url) as conn:
        return conn.execute(
            "SELECT count(*) FROM reactor_work_items"
            " WHERE status IN ('claimed', 'in_progress') AND lease_expires > now()"
        ).fetchone()[0]


def _final(state: str | None) -> bool:
    return state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


@pytest.mark.skipif(
    "queue" not in SwarmRequest.model_fields, reason="needs the swarm's drain runs (branch queue)"
)
@pytest.mark.timeout(900)  # a Prefect server, a deploy, two workers, 4+ flow runs: loaded cores
def test_two_hosts_drain_one_queue_and_take_over_a_killed_hosts_claims(cluster, tmp_path):
    log = tmp_path / "handler-records.jsonl"  # outside both hosts' coordination dirs
    ids = [f"item-{i:02d}" for i in range(ITEMS)]
    with open_ledger(cluster.settings()) as ledger:  # the producer
        ledger.add(
            {"work_item_id": i, "work_type": WORK_TYPE, "estimated_duration": 1000,
             "payload": {"item": i, "log": str(log), "sleep_s": SLEEP_S}}
            for i in ids
        )  # fmt: skip

    # several drains at once over the one queue, the workers of both hosts picking them up
    runs = [cluster.trigger(_drain(log, ITEMS // RUNS)) for _ in range(RUNS)]

    # mid-run: some item done, and a host with an execution in flight; kill that host
    def in_flight() -> str | None:
        executions = [e for es in _executions(log).values() for e in es]
        if not any(e.ended for e in executions):
            return None
        busy = sorted({e.host for e in executions if e.ended is None})
        return busy[0] if busy else None

    def victim_in_flight() -> tuple[Host, set[str]] | None:
        """Freeze the busy host (SIGSTOP), so what it holds cannot change before the kill; if
        its execution ended in the meantime, let it go on and look again."""
        victim = cluster.hosts[
            wait_until("an item done and another in flight", in_flight, 600, 0.1)
        ]
        victim.send(signal.SIGSTOP)
        items = {
            item
            for item, es in _executions(log).items()
            for e in es
            if e.host == victim.name and e.ended is None
        }
        if items:
            return victim, items
        victim.send(signal.SIGCONT)
        return None

    victim, in_flight_at_kill = wait_until("a host frozen mid-item", victim_in_flight, 600, 0)
    killed_at = time.time()
    held_at_kill = _held(cluster)
    victim.kill()
    survivor = next(h for h in cluster.hosts.values() if h is not victim)

    # the next drains (what the hourly schedule would start) take over once the leases of the
    # killed host's claims have run out
    def drained() -> bool:
        with open_ledger(cluster.settings()) as ledger:
            if ledger.counts().get("completed", 0) == ITEMS:
                return True
        pending = [r for r in runs if not _final(cluster.flow_run(r)["state_type"])]
        live = [r for r in pending if _infra_pid(cluster.flow_run(r)) not in victim.killed]
        if not live and _live_leases(cluster) == 0:
            runs.append(cluster.trigger(_drain(log, ITEMS)))
        return False

    wait_until("every item completed", drained, 600, 1)
    wait_until(
        "the survivor's runs finished",
        lambda: all(
            _final(cluster.flow_run(r)["state_type"])
            for r in runs
            if _infra_pid(cluster.flow_run(r)) not in victim.killed
        ),
        300,
        1,
    )

    with open_ledger(cluster.settings()) as ledger:
        final = {c.work_item_id: c for c in ledger.list()}
    executions = _executions(log)

    # every item completed exactly once, by one execution the handler recorded
    assert sorted(final) == ids and {c.status for c in final.values()} == {"completed"}
    for item, claim in final.items():
        done = [e for e in executions.get(item, []) if e.execution == claim.result["execution"]]
        assert len(done) == 1 and done[0].ended is not None, item

    # never held by two live agents: no two executions of an item overlap in time (an
    # execution the kill cut short ends at the kill), and the dead host ran nothing after it
    for item, es in executions.items():
        spans = sorted((e.started, e.ended or killed_at) for e in es)
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert end <= start, f"{item}: two executions overlap: {es}"
        assert all(e.started < killed_at for e in es if e.host == victim.name), item

    # the killed host's claims were taken over, after their lease, by the other host
    taken_over = {i for i, (claim_id, _) in held_at_kill.items() if final[i].claim_id != claim_id}
    assert in_flight_at_kill and in_flight_at_kill <= taken_over
    for item in taken_over:
        claim = final[item]
        reclaimed_at = datetime.fromisoformat(claim.claimed_at)
        assert reclaimed_at >= held_at_kill[item][1], f"{item} reclaimed before its lease ended"
        assert claim.claims >= 2 and claim.result["host"] == survivor.name, claim

    # the coordination log in PostgreSQL has each completion once
    with psycopg.connect(cluster.database_url) as conn:
        logged = conn.execute(
            "SELECT entry->>'work_item_id', count(*) FROM reactor_coordination_log GROUP BY 1"
        ).fetchall()
    counts = dict(logged)
    assert set(counts) <= set(ids) and all(n == 1 for n in counts.values()), counts
    assert sorted(counts) == sorted(ids), f"completed, never logged: {set(ids) - set(counts)}"

    # each host kept its own local state: the survivor's span log, never the other's dir
    assert (survivor.coordination_dir / "telemetry_spans.jsonl").exists()
    assert not (survivor.coordination_dir / "claims.sqlite3").exists()


def _infra_pid(flow_run: dict[str, Any]) -> int | None:
    """The pid of a flow run's process, from the `host:pid` its worker reported."""
    pid = (flow_run.get("infrastructure_pid") or "").rpartition(":")[2]
    return int(pid) if pid.isdigit() else None


def test_stop_server_stops_the_server_it_started(prefect_on_pg):
    """Last in this module: it stops the module's server."""
    state = prefect_on_pg.state
    assert local.stop_server(state)
    assert local.running_server(state) is None
    assert not local.api_healthy(prefect_on_pg.api_url)
