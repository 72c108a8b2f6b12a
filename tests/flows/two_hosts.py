"""The two hosts of tests/flows/test_two_hosts.py: the Prefect server on PostgreSQL they share,
a process worker per host (`python -m deployments.worker`, behind `make worker`) as a process
tree of its own, the swarm deployment they run, and what the test reads back (the handler's
records of tests/flows/two_host_handler.py, the claims in PostgreSQL)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg

from deployments.deploy import PROJECT_DIR
from deployments.server import ServerRecord
from tasks.jsonl import iter_jsonl
from tasks.settings import Settings

HOSTS = ("host-a", "host-b")
POOL = "reactor-process"  # the work pool prefect.yaml names
DEPLOYMENT = "swarm-hourly"
FLOW = "swarm-coordination"
HANDLER = "tests.flows.two_host_handler:record"
WORK_TYPE = "twohost.record"
RUNS = 2  # drains started at once


def kill_tree(pid: int) -> set[int]:
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


@dataclass
class PrefectOnPostgres:
    """The server `make server` started on a PostgreSQL database."""

    database_url: str  # postgresql://… (psycopg's form)
    state: Path  # REACTOR_SERVER_DIR: the record, the server's Prefect home and its log
    env: dict[str, str]  # the environment `make server` ran in (and the commands beside it)
    started: subprocess.CompletedProcess  # what `make server` said
    record: ServerRecord

    @property
    def api_url(self) -> str:
        return self.record.api_url

    def api(self, method: str, path: str, **kwargs) -> Any:
        response = httpx.request(method, f"{self.api_url}{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None


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
        self.killed |= kill_tree(self.process.pid)
        self.process.wait(timeout=30)
        return self.killed


def start_worker(name: str, root: Path, api_url: str, database_url: str) -> Host:
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
        run = self.prefect.api(
            "POST", f"/deployments/{self.deployment_id}/create_flow_run",
            json={"parameters": {"request": request}},
        )  # fmt: skip
        return run["id"]

    def flow_run(self, run_id: str) -> dict[str, Any]:
        return self.prefect.api("GET", f"/flow_runs/{run_id}")

    def online_workers(self) -> set[str]:
        workers = self.prefect.api("POST", f"/work_pools/{POOL}/workers/filter", json={})
        return {w["name"] for w in workers if w.get("status") == "ONLINE"}

    def held(self) -> dict[str, tuple[str, datetime]]:
        """Items held right now: work_item_id -> (claim id, lease end), from PostgreSQL."""
        with psycopg.connect(self.database_url) as conn:
            rows = conn.execute(
                "SELECT work_item_id, claim_id, lease_expires FROM reactor_work_items"
                " WHERE status IN ('claimed', 'in_progress')"
            ).fetchall()
        return {w: (c, e) for w, c, e in rows}

    def live_leases(self) -> int:
        with psycopg.connect(self.database_url) as conn:
            return conn.execute(
                "SELECT count(*) FROM reactor_work_items"
                " WHERE status IN ('claimed', 'in_progress') AND lease_expires > now()"
            ).fetchone()[0]


def ensure_pool(prefect: PrefectOnPostgres) -> None:
    with contextlib.suppress(httpx.HTTPStatusError):  # 409: it exists
        prefect.api("POST", "/work_pools/", json={"name": POOL, "type": "process"})


def deploy(prefect: PrefectOnPostgres) -> str:
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
    deployment = prefect.api("GET", f"/deployments/name/{FLOW}/{DEPLOYMENT}")
    # prefect.yaml runs one hourly drain at a time; N hosts draining at once is N runs
    prefect.api("PATCH", f"/deployments/{deployment['id']}", json={"concurrency_limit": RUNS + 2})
    return deployment["id"]


def drain_request(limit: int, lease_s: float) -> dict[str, Any]:
    return {
        "queue": {"limit": limit, "types": [WORK_TYPE], "timeout_s": 120},
        "handlers": {WORK_TYPE: {"kind": "python", "target": HANDLER}},
        "lease_s": lease_s,
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


def executions(log: Path) -> dict[str, list[Execution]]:
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


def final(state: str | None) -> bool:
    return state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


def infra_pid(flow_run: dict[str, Any]) -> int | None:
    """The pid of a flow run's process, from the `host:pid` its worker reported."""
    pid = (flow_run.get("infrastructure_pid") or "").rpartition(":")[2]
    return int(pid) if pid.isdigit() else None
