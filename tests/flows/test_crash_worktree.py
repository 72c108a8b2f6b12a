"""A worktree deployment SIGKILLed at three points of its own progress, resumed under the same
flow-run id: it adopts the worktrees, ports and running services the dead attempt made, starts
only the rest, and leaves nothing behind; a retry that fails rolls back both attempts' work. A
health monitor SIGKILLed in the middle of a restart leaves nothing teardown cannot find."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

import psutil
import pytest

from flows.worktree_deployment import worktree_deployment
from flows.worktree_teardown import worktree_teardown
from tasks.worktree.models import (
    DeploymentRequest,
    EnvironmentStatus,
    MonitorRequest,
    TeardownRequest,
)
from tasks.worktree.process import log_path_for
from tasks.worktree.registry import open_registry
from tasks.worktree.sample_repo import make_sample_repo
from tests.crash import resume, run_and_kill
from tests.flows.test_worktree_deployment import assert_nothing_left
from tests.unit.worktree.helpers import (
    branches,
    port_range,
    ports_free,
    processes_under,
    service,
    worktree_paths,
)

# a spawned Prefect process starts in ~30 s on loaded shared cores; the kill tests wait for it
pytestmark = pytest.mark.timeout(600)

ENTRY = "flows.worktree_deployment:worktree_deployment"
MONITOR = "flows.health_monitor:health_monitor"
NAMES = ["db", "api", "web"]
FAST = {"health_poll_interval_s": 0.1, "health_check_timeout_s": 20}


@pytest.fixture
def repo(tmp_path, reactor_env):
    repo = make_sample_repo(tmp_path / "repo", NAMES)
    yield repo
    asyncio.run(worktree_teardown(TeardownRequest(repo_path=repo, force=True)))
    assert processes_under(repo) == []


def chain(repo, web_boot_s: float = 0.5) -> DeploymentRequest:
    """db -> api -> web, each booting for a moment like a real app; web warms up for 3 s once
    listening, so a kill when all three listen comes before the run could finish."""
    return DeploymentRequest(
        repo_path=repo,
        worktrees=[
            service("db", env={"START_DELAY_S": "0.5"}),
            service("api", ["db"], env={"START_DELAY_S": "0.5"}),
            service("web", ["api"], env={"START_DELAY_S": str(web_boot_s), "READY_DELAY_S": "3"}),
        ],
        port_range=port_range(),
        **FAST,
    )


def starts(repo, name: str) -> int:
    """How many times the service began listening: its own log."""
    log = log_path_for(repo / "worktrees" / name, name)
    return log.read_text().count("listening on") if log.exists() else 0


def listening(repo) -> list[str]:
    return [n for n in NAMES if starts(repo, n) > 0]


KILL_POINTS = {
    "first-service-up": lambda repo: len(listening(repo)) >= 1,
    "midway": lambda repo: len(listening(repo)) >= 2,
    "all-services-up": lambda repo: len(listening(repo)) == 3,
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_killed_deploy_resumes_adopting_what_the_dead_attempt_made(repo, point):
    before = branches(repo)
    req = chain(repo)
    killed = run_and_kill(
        ENTRY, {"request": req.model_dump(mode="json")}, lambda: KILL_POINTS[point](repo)
    )
    up_at_kill = set(listening(repo))

    outcome = resume(killed.flow_run_id)

    assert outcome.flow_run_id == killed.flow_run_id and outcome.state == "Completed"
    assert {n: starts(repo, n) for n in NAMES} == dict.fromkeys(NAMES, 1), "a service started twice"
    assert up_at_kill <= set(NAMES)
    entries = open_registry().environments()
    assert {n: e.status for n, e in entries.items()} == dict.fromkeys(
        NAMES, EnvironmentStatus.healthy
    )
    assert {e.run_id for e in entries.values()} == {str(killed.flow_run_id)}
    running = sorted(p.pid for p in processes_under(repo))
    assert running == sorted(e.process.pid for e in entries.values()), "an orphaned process"
    assert sorted(worktree_paths(repo)) == sorted(
        [str(repo), *(str(repo / "worktrees" / n) for n in NAMES)]
    )
    assert branches(repo) == before  # the service branches existed; none was added


def test_failed_retry_rolls_back_what_both_attempts_made(repo):
    before = branches(repo)
    req = chain(repo, web_boot_s=5)  # killed midway: web is not up yet
    killed = run_and_kill(
        ENTRY, {"request": req.model_dump(mode="json")}, lambda: KILL_POINTS["midway"](repo)
    )
    assert starts(repo, "web") == 0
    ports = list(open_registry().read().port_allocations.values())
    # web's start fails in the retry, so the retry fails and rolls back. The dead attempt may
    # have spawned web just before the kill (it boots slowly, so it never finished starting):
    # that process dies with its host here, and the retry starts web again.
    for proc in processes_under(repo / "worktrees" / "web"):
        proc.kill()
    (repo / "worktrees" / "web" / "service.py").write_text("raise SystemExit(3)\n")

    outcome = resume(killed.flow_run_id)

    assert outcome.flow_run_id == killed.flow_run_id and outcome.state == "Failed"
    assert_nothing_left(repo, ports, before)
    assert ports_free(ports)


def test_a_service_started_but_never_recorded_is_adopted_not_orphaned(repo):
    """A kill between spawning a service and recording it leaves a process no registry entry
    names: the retry finds it by the run's mark in its environment and adopts it."""
    req = chain(repo)

    def api_recorded() -> bool:
        entry = open_registry().entry("api")
        return entry is not None and entry.process is not None

    killed = run_and_kill(ENTRY, {"request": req.model_dump(mode="json")}, api_recorded)
    registry = open_registry()
    orphan = registry.entry("api").process
    # the registry as it is when the kill comes a moment earlier, before that write
    registry.update_environment(
        "api", process=None, started_at=None, status=EnvironmentStatus.worktree_created
    )

    outcome = resume(killed.flow_run_id)

    assert outcome.flow_run_id == killed.flow_run_id and outcome.state == "Completed"
    assert {n: starts(repo, n) for n in NAMES} == dict.fromkeys(NAMES, 1), "a service started twice"
    entries = open_registry().environments()
    assert entries["api"].process.pid == orphan.pid
    running = sorted(p.pid for p in processes_under(repo))
    assert running == sorted(e.process.pid for e in entries.values()), "an orphaned process"


def test_a_service_restarted_by_a_monitor_killed_mid_restart_is_stopped_by_teardown(repo):
    """The monitor restarts a dead service and is killed while it waits for the new process to
    become healthy: the registry never hears of that process, and teardown still finds and
    stops it by the mark it carries (it kept running on its port)."""
    req = DeploymentRequest(
        repo_path=repo, worktrees=[service("db")], port_range=port_range(), **FAST
    )
    old = asyncio.run(worktree_deployment(req)).service("db")
    worktree = old.worktree_path
    # the restarted copy answers 503 for ten minutes: the monitor is still waiting when killed
    with open(worktree / ".env", "a") as env_file:
        env_file.write("READY_DELAY_S=600\n")
    os.kill(old.pid, signal.SIGKILL)
    psutil.wait_procs([psutil.Process(old.pid)], timeout=10)
    monitor = MonitorRequest(
        once=True,
        failure_threshold=1,
        restart_backoff_s=0,
        health_timeout_s=0.5,
        restart_health_timeout_s=600,
        health_poll_interval_s=0.2,
    )

    def restarted() -> bool:
        return any(p.pid != old.pid for p in processes_under(worktree))

    run_and_kill(MONITOR, {"request": monitor.model_dump(mode="json")}, restarted)
    strays = processes_under(worktree)
    try:
        assert open_registry().entry("db").pid == old.pid  # the new process is unrecorded
        asyncio.run(worktree_teardown(TeardownRequest(repo_path=repo, force=True)))
        assert processes_under(repo) == [], "the restarted service outlived its teardown"
        assert ports_free([old.port])
    finally:
        for proc in strays:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        psutil.wait_procs(strays, timeout=10)
