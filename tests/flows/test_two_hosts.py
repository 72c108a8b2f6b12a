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
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
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
from tests.loopback import free_port
from tests.postgres import drop_database, fresh_database

HOSTS = ("host-a", "host-b")
POOL = "reactor-process"  # the work pool prefect.yaml names
DEPLOYMENT = "swarm-hourly"
FLOW = "swarm-coordination"
HANDLER = "tests.flows.two_host_handler:record"
ITEMS = 24
RUNS = 4
LEASE_S = 10.0  # short, so the killed worker's claims expire within the test


def _wait(what: str, check: Callable[[], Any], timeout_s: float, every_s: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if got := check():
            return got
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")


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


@pytest.fixture(scope="module")
def prefect_on_pg(pg_url, tmp_path_factory) -> Iterator[PrefectOnPostgres]:
    """`deployments.server.start_server` with PREFECT_SERVER_DATABASE_CONNECTION_URL set to a
    fresh database (in the plain `postgresql://` form: the server gets asyncpg)."""
    root = tmp_path_factory.mktemp("prefect-on-pg")
    database = fresh_database(pg_url, "prefect")
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env |= {"PREFECT_HOME": str(root / "home"), local.DATABASE_ENV: database}
    state = root / "state"
    try:
        server = local.start_server(state, timeout_s=300, port=free_port(), env=env)
        yield PrefectOnPostgres(server.api_url, database, root / "home")
    finally:
        # killed, not `prefect server stop`ped (which waits ~20 s here for a graceful end)
        pidfile = root / "home" / "server.pid"
        if pidfile.exists() and pidfile.read_text().strip().isdigit():
            _kill_tree(int(pidfile.read_text().strip()))
        drop_database(database, pg_url)


def _api(prefect: PrefectOnPostgres, method: str, path: str, **kwargs) -> Any:
    response = httpx.request(method, f"{prefect.api_url}{path}", timeout=30, **kwargs)
    response.raise_for_status()
    return response.json() if response.content else None


def test_server_started_with_a_postgres_url_stores_its_runs_in_that_database(prefect_on_pg):
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


def _deploy(prefect: PrefectOnPostgres) -> str:
    """The work pool and the swarm deployment of prefect.yaml (`prefect deploy --name`)."""
    with contextlib.suppress(httpx.HTTPStatusError):  # 409: it exists
        _api(prefect, "POST", "/work_pools/", json={"name": POOL, "type": "process"})
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
    return _api(prefect, "GET", f"/deployments/name/{FLOW}/{DEPLOYMENT}")["id"]


@pytest.fixture
def cluster(prefect_on_pg, pg_url, tmp_path) -> Iterator[Cluster]:
    database = fresh_database(pg_url, "reactor_two_hosts")
    hosts: dict[str, Host] = {}
    try:
        print("T server up", time.strftime("%X"))
        deployment_id = _deploy(prefect_on_pg)
        print("T deployed", time.strftime("%X"))
        for name in HOSTS:
            hosts[name] = _start_worker(name, tmp_path / name, prefect_on_pg.api_url, database)
        cluster = Cluster(prefect_on_pg, database, tmp_path, hosts, deployment_id)
        _wait("both workers online", lambda: cluster.online_workers() >= set(HOSTS), 120, 1)
        print("T workers online", time.strftime("%X"))
        yield cluster
    finally:
        for host in hosts.values():
            host.kill()
        drop_database(database, pg_url)


def test_infra_inline(cluster, tmp_path):  # TEMPORARY
    log = tmp_path / "handler.jsonl"
    tasks = [
        {"id": f"t{i}", "type": "twohost.record", "estimated_duration_ms": 100,
         "payload": {"item": f"t{i}", "log": str(log), "sleep_s": 0.2}}
        for i in range(3)
    ]  # fmt: skip
    request = {
        "tasks": tasks,
        "handlers": {"twohost.record": {"kind": "python", "target": HANDLER}},
    }
    runs = [cluster.trigger(request) for _ in range(4)]
    t0 = time.monotonic()
    done = _wait(
        "runs done",
        lambda: all(
            cluster.flow_run(r)["state_type"] in ("COMPLETED", "FAILED", "CRASHED") for r in runs
        ),
        300,
        1,
    )
    print("runs took", time.monotonic() - t0)
    states = [cluster.flow_run(r)["state_type"] for r in runs]
    recs = list(iter_jsonl(log))
    print(states, {r["host"] for r in recs}, len(recs))
    for h in cluster.hosts.values():
        print(h.name, (h.root / "worker.log").read_text()[-1500:])
    assert states == ["COMPLETED"] * 4
