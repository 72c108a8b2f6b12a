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
        local.stop_server(state, env)
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
