"""Two hosts, one queue: the multi-host topology of the README on one machine.

One Prefect server on PostgreSQL (its own database on the session's test PostgreSQL, started by
`make server`, i.e. `python -m deployments.server start`, on a machine where port 4200 is taken
and a crash left a stale record), the swarm deployment registered on the process work pool, and
two process workers (`deployments.worker`, behind `make worker`) as separate process trees,
each with its own working directory, Prefect home and `REACTOR_COORDINATION_DIR`, as two
machines would have: they share only `PREFECT_API_URL` and `REACTOR_DATABASE_URL` (a database
of their own). Several drain runs start at once over one queue; one worker is SIGKILLed with
its flow-run processes mid-run.

Every process this module starts is killed at the end, and both databases are dropped, even
when a test fails.

A completion and its coordination-log entry are one PostgreSQL transaction, so a host killed at
any point leaves either both or neither.
"""

from __future__ import annotations

import itertools
import signal
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime

import httpx
import psutil
import psycopg
import pytest

from deployments import server as local
from deployments.server import ServerRecord
from tasks.claims import open_ledger
from tasks.net import port_is_free
from tasks.swarm.models import SwarmRequest
from tests.flows.cli_run import REACTOR, cli_env, one_error_line, run, stale_record
from tests.flows.test_server import expect_prefect_toml_settings
from tests.flows.two_hosts import (
    HOSTS,
    RUNS,
    WORK_TYPE,
    Cluster,
    Host,
    PrefectOnPostgres,
    deploy,
    drain_request,
    ensure_pool,
    executions,
    final,
    infra_pid,
    start_worker,
)
from tests.postgres import drop_database, fresh_database
from tests.waiting import wait_until

ITEMS = 8  # RUNS drains of ITEMS / RUNS items each
SLEEP_S = 1.0  # each handler call's work
# short, so the killed host's claims expire within the test; longer than the wait between a
# drain's take and its items' first heartbeat (its handler processes start in between: 7.7 s
# measured at load 7), since a lease lapsing there twice fails the item for good
LEASE_S = 15.0


@pytest.fixture(scope="module")
def busy_4200() -> Iterator[socket.socket | None]:
    """Port 4200 taken, as on a machine where another checkout's server runs: our listener,
    or None when another program (another test's server) already holds it."""
    sock = None
    if port_is_free(4200):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 4200))
        sock.listen()
    try:
        yield sock
    finally:
        if sock is not None:
            sock.close()


@pytest.fixture(scope="module")
def prefect_on_pg(pg_url, busy_4200, tmp_path_factory) -> Iterator[PrefectOnPostgres]:
    """`make server` with PREFECT_SERVER_DATABASE_CONNECTION_URL set to a fresh database (in
    the plain `postgresql://` form: the server gets asyncpg), beside a busy 4200 and the stale
    record of a server that crashed."""
    root = tmp_path_factory.mktemp("prefect-on-pg")
    database = fresh_database(pg_url, "prefect")
    # no scheduled runs: the test triggers every run itself (swarm-hourly is scheduled)
    env = cli_env(root, PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED="false")
    env[local.DATABASE_ENV] = database
    state = root / "server"
    stale_record(state, pid=2**22 - 7)
    start = [sys.executable, "-m", "deployments.server", "start", "--timeout", "600"]
    try:
        started = run(start, env)
        assert started.returncode == 0, started.stdout + started.stderr
        record = ServerRecord.model_validate_json((state / "server.json").read_text())
        yield PrefectOnPostgres(database, state, env, started, record)
    finally:
        local.stop_server(state)  # the process its record names (and what it spawned)
        drop_database(database, pg_url)


@pytest.mark.timeout(900)  # includes a real server start: minutes on loaded cores
def test_server_started_with_a_postgres_url_stores_its_runs_in_that_database(prefect_on_pg):
    """Also `make server`'s own checks (once tests/flows/test_server.py's, on a second server of
    its own): it records the process it started and reads prefect.toml."""
    server = local.running_server(prefect_on_pg.state)
    assert server is not None and server.started_here and server.api_url == prefect_on_pg.api_url
    assert server.pid == prefect_on_pg.record.process.pid
    expect_prefect_toml_settings(prefect_on_pg.api("GET", "/admin/settings"))
    flow = prefect_on_pg.api("POST", "/flows/", json={"name": "two-hosts-probe"})
    flow_run = prefect_on_pg.api("POST", "/flow_runs/", json={"flow_id": flow["id"]})
    with psycopg.connect(prefect_on_pg.database_url) as conn:
        stored = conn.execute(
            "SELECT flow_run.name, flow.name FROM flow_run JOIN flow ON flow.id = flow_run.flow_id"
            " WHERE flow_run.id = %s",
            (flow_run["id"],),
        ).fetchone()
    assert stored == (flow_run["name"], "two-hosts-probe")
    home = prefect_on_pg.state / local.HOME
    assert home.is_dir() and not list(home.rglob("*.db")), "the server wrote a SQLite database"


def test_make_server_beside_a_busy_4200_and_a_stale_record(prefect_on_pg):
    """The README's UI steps on a machine where 4200 is taken and a crash left a record: the
    server comes up on another port, says where, its UI answers and finds its API, and commands
    of this checkout use it (`make stop`: the last test of this module)."""
    started, api, env = prefect_on_pg.started, prefect_on_pg.api_url, prefect_on_pg.env
    assert "stale" in started.stderr
    assert ":4200/" not in api and f"Prefect API {api}" in started.stdout
    ui = httpx.get(api.removesuffix("/api") + "/", timeout=30, follow_redirects=True)
    assert ui.status_code == 200
    settings = prefect_on_pg.api("GET", "/admin/settings")
    assert settings["server"]["ui"]["api_url"] == api  # the UI looks for this API
    # a command of this checkout uses it and says so (an unknown run: one error line)
    done = run([str(REACTOR), "runs", "resume", str(uuid.uuid4())], env, timeout=300)
    assert api in done.stderr.splitlines()[0] and "this checkout" in done.stderr
    one_error_line(done)
    url = run([sys.executable, "-m", "deployments.server", "url"], env)
    assert url.stdout.strip() == api


@pytest.fixture
def cluster(prefect_on_pg, pg_url, tmp_path) -> Iterator[Cluster]:
    database = fresh_database(pg_url, "reactor_two_hosts")
    hosts: dict[str, Host] = {}
    try:
        ensure_pool(prefect_on_pg)
        for name in HOSTS:  # the workers start while the deployment registers
            hosts[name] = start_worker(name, tmp_path / name, prefect_on_pg.api_url, database)
        deployment_id = deploy(prefect_on_pg)
        cluster = Cluster(prefect_on_pg, database, tmp_path, hosts, deployment_id)
        wait_until("both workers online", lambda: cluster.online_workers() >= set(HOSTS), 120, 0.2)
        yield cluster
    finally:
        for host in hosts.values():
            host.kill()
        drop_database(database, pg_url)


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
    runs = [cluster.trigger(drain_request(ITEMS // RUNS, LEASE_S)) for _ in range(RUNS)]

    # mid-run: some item done, and a host with an execution in flight; kill that host
    def in_flight() -> str | None:
        started = [e for es in executions(log).values() for e in es]
        if not any(e.ended for e in started):
            return None
        busy = sorted({e.host for e in started if e.ended is None})
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
            for item, es in executions(log).items()
            for e in es
            if e.host == victim.name and e.ended is None
        }
        if items:
            return victim, items
        victim.send(signal.SIGCONT)
        return None

    victim, in_flight_at_kill = wait_until("a host frozen mid-item", victim_in_flight, 600, 0)
    killed_at = time.time()
    held_at_kill = cluster.held()
    victim.kill()
    survivor = next(h for h in cluster.hosts.values() if h is not victim)

    def survivors_runs() -> list[str]:
        return [r for r in runs if infra_pid(cluster.flow_run(r)) not in victim.killed]

    # the next drains (what the hourly schedule would start) take over once the leases of the
    # killed host's claims have run out
    def drained() -> bool:
        if observer.counts().get("completed", 0) == ITEMS:
            return True
        pending = [r for r in runs if not final(cluster.flow_run(r)["state_type"])]
        live = [r for r in pending if infra_pid(cluster.flow_run(r)) not in victim.killed]
        if not live and cluster.live_leases() == 0:
            runs.append(cluster.trigger(drain_request(ITEMS, LEASE_S)))
        return False

    # one connection for the whole wait: a ledger opened per look cost a PostgreSQL backend each
    with open_ledger(cluster.settings()) as observer:
        wait_until("every item completed", drained, 600, 0.5)
    wait_until(
        "the survivor's runs finished",
        lambda: all(final(cluster.flow_run(r)["state_type"]) for r in survivors_runs()),
        300,
        0.5,
    )

    with open_ledger(cluster.settings()) as ledger:
        claims = {c.work_item_id: c for c in ledger.list()}
    ran = executions(log)

    # every item completed exactly once, by one execution the handler recorded
    assert sorted(claims) == ids and {c.status for c in claims.values()} == {"completed"}
    for item, claim in claims.items():
        done = [e for e in ran.get(item, []) if e.execution == claim.result["execution"]]
        assert len(done) == 1 and done[0].ended is not None, item

    # never held by two live agents: no two executions of an item overlap in time (an
    # execution the kill cut short ends at the kill), and the dead host ran nothing after it
    for item, es in ran.items():
        spans = sorted((e.started, e.ended or killed_at) for e in es)
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert end <= start, f"{item}: two executions overlap: {es}"
        assert all(e.started < killed_at for e in es if e.host == victim.name), item

    # the killed host's claims were taken over, after their lease, by the other host
    taken_over = {i for i, (claim_id, _) in held_at_kill.items() if claims[i].claim_id != claim_id}
    assert in_flight_at_kill and in_flight_at_kill <= taken_over
    for item in taken_over:
        claim = claims[item]
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


def test_stop_server_stops_the_server_it_started(prefect_on_pg, busy_4200):
    """Last in this module: `make stop` stops the module's server, and leaves the program on
    port 4200 alone."""
    stopped = run([sys.executable, "-m", "deployments.server", "stop"], prefect_on_pg.env)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stdout + stopped.stderr
    pid = prefect_on_pg.record.process.pid
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert local.running_server(prefect_on_pg.state) is None
    assert not local.api_healthy(prefect_on_pg.api_url)
    if busy_4200 is not None:  # ours: still listening (another holder may stop on its own)
        assert busy_4200.fileno() != -1 and not port_is_free(4200)
