"""Auto-recovery: the monitor notices a SIGKILLed service and restarts it after 3 failures."""

from __future__ import annotations

import asyncio
import os
import signal

import httpx
import psutil
import pytest

from flows.health_monitor import health_monitor
from flows.worktree_deployment import worktree_deployment
from flows.worktree_teardown import worktree_teardown
from tasks.worktree.models import DeploymentRequest, MonitorRequest, TeardownRequest
from tasks.worktree.monitor import ALERTS_FILE, read_alerts
from tasks.worktree.registry import open_registry
from tasks.worktree.sample_repo import make_sample_repo
from tests.unit.worktree.helpers import port_range, processes_under, service, worktree_paths

ONCE = {
    "once": True,
    "health_timeout_s": 0.5,
    "restart_health_timeout_s": 10,
    "health_poll_interval_s": 0.1,
    "restart_backoff_s": 0,
}


def monitor(**kw) -> object:
    return asyncio.run(health_monitor(MonitorRequest(**{**ONCE, **kw})))


def deploy(repo, worktrees):
    request = DeploymentRequest(
        repo_path=repo,
        worktrees=worktrees,
        port_range=port_range(),
        health_poll_interval_s=0.1,
        health_check_timeout_s=15,
    )
    return asyncio.run(worktree_deployment(request))


@pytest.fixture
def deployed(tmp_path, reactor_env):
    repo = make_sample_repo(tmp_path / "repo", ["api"])
    result = deploy(repo, [service("api")])
    yield repo, result.service("api")
    asyncio.run(worktree_teardown(TeardownRequest(repo_path=repo, force=True)))
    assert worktree_paths(repo) == [str(repo)] and processes_under(repo) == []


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    psutil.wait_procs([psutil.Process(pid)], timeout=5)


def test_sigkilled_service_is_restarted_after_three_failures(deployed, reactor_env):
    _, api = deployed
    first = monitor()
    assert first.checks[0].healthy and first.checks[0].action == "none"
    kill(api.pid)

    actions = [monitor().checks[0] for _ in range(3)]
    assert [c.consecutive_failures for c in actions[:2]] == [1, 2]
    assert [c.action for c in actions] == ["alert", "none", "restarted"]
    assert not actions[0].process_alive

    env = open_registry().entry("api")
    assert env.pid != api.pid and psutil.pid_exists(env.pid)
    assert env.status == "healthy" and len(env.restarts) == 1
    body = httpx.get(env.health_url).json()
    assert body["pid"] == env.pid and body["port"] == api.port
    kinds = [a["kind"] for a in read_alerts(reactor_env.coordination_dir / ALERTS_FILE)]
    assert kinds == ["unhealthy", "restarted"]


def test_restarts_beyond_the_hourly_cap_are_refused_and_alerted(deployed, reactor_env):
    _, api = deployed
    kill(api.pid)
    check = monitor(max_restarts_per_hour=0, failure_threshold=1).checks[0]
    assert check.action == "capped" and not check.healthy
    assert open_registry().entry("api").status == "restart_capped"
    alerts = read_alerts(reactor_env.coordination_dir / ALERTS_FILE)
    assert [a["kind"] for a in alerts] == ["restart_capped"]
