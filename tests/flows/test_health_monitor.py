"""Auto-recovery: the monitor notices a SIGKILLed service and restarts it after 3 failures,
once even when passes overlap, with the service's real environment; one active run at a time."""

from __future__ import annotations

import asyncio
import os
import signal
import threading

import httpx
import psutil
import pytest
import yaml

from flows.health_monitor import health_monitor
from flows.worktree_deployment import worktree_deployment
from flows.worktree_teardown import worktree_teardown
from tasks.worktree.environment import read_env_file
from tasks.worktree.identity import OWNER_VAR, owner
from tasks.worktree.models import DeploymentRequest, MonitorRequest, TeardownRequest
from tasks.worktree.monitor import ALERTS_FILE, read_alerts
from tasks.worktree.registry import open_registry
from tasks.worktree.sample_repo import make_sample_repo
from tests.flows.run_helpers import line_with
from tests.prefect_api import run_logs
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


def test_two_overlapping_monitor_passes_restart_a_failing_service_once(tmp_path, reactor_env):
    repo = make_sample_repo(tmp_path / "repo", ["slow"])
    # a restart takes over a second (the app "boots"), so the second pass overlaps it
    deploy(repo, [service("slow", env={"START_DELAY_S": "1.5"})])
    try:
        kill(open_registry().entry("slow").pid)
        start = threading.Barrier(2)
        results: list = []

        def one_pass() -> None:
            start.wait()
            results.append(monitor(failure_threshold=1))

        passes = [threading.Thread(target=one_pass) for _ in range(2)]
        for t in passes:
            t.start()
        for t in passes:
            t.join(timeout=120)
        actions = sorted(r.checks[0].action for r in results if r.checks)
        restarts = [a for a in actions if a in ("restarted", "restart_failed")]
        assert restarts == ["restarted"], actions
        entry = open_registry().entry("slow")
        assert entry.status == "healthy" and len(entry.restarts) == 1
        listening = [p for p in processes_under(repo) if p.pid != entry.pid]
        assert listening == [], "a second copy of the service was started"
    finally:
        asyncio.run(worktree_teardown(TeardownRequest(repo_path=repo, force=True)))
        strays = processes_under(repo)  # a second copy the registry never knew of
        for proc in strays:
            proc.kill()
        psutil.wait_procs(strays, timeout=5)
    assert strays == [], "a service process was left running"


def test_a_restart_takes_the_secret_from_the_restarting_process_environment(
    tmp_path, reactor_env, monkeypatch
):
    """The secret is stored nowhere (registry: [REDACTED]; `.env`: named only): the monitor
    restarts the service with the value from its own environment, and without it refuses with
    a reason naming the variable instead of starting the service with `[REDACTED]`."""
    repo = make_sample_repo(tmp_path / "repo", ["api"])
    secret = "tok-5b0e9d13c7"
    deploy(repo, [service("api", env={"GITHUB_TOKEN": secret})])
    try:
        old = open_registry().entry("api")
        assert old.service_env["GITHUB_TOKEN"] == "[REDACTED]"
        assert secret not in (old.worktree_path / ".env").read_text()
        monkeypatch.delenv("GITHUB_TOKEN", raising=False)
        kill(old.pid)
        refused = monitor(failure_threshold=1, restart_backoff_s=0).checks[0]
        assert refused.action == "restart_failed"
        assert "GITHUB_TOKEN is not stored anywhere" in refused.detail
        monkeypatch.setenv("GITHUB_TOKEN", secret)
        check = monitor(failure_threshold=1, restart_backoff_s=0).checks[0]
        assert check.action == "restarted"
        new = open_registry().entry("api")
        assert psutil.Process(new.pid).environ()["GITHUB_TOKEN"] == secret
    finally:
        asyncio.run(worktree_teardown(TeardownRequest(repo_path=repo, force=True)))


def test_a_restart_keeps_the_mix_env_the_service_was_deployed_with(
    tmp_path, reactor_env, monkeypatch
):
    """Deployed with the caller's MIX_ENV=test, recorded as such (registry and `.env`), and
    restarted in test by a monitor whose own environment has no MIX_ENV (it came back in dev),
    carrying the deployment's mark like the process it replaces."""
    repo = make_sample_repo(tmp_path / "repo", ["api"])
    monkeypatch.setenv("MIX_ENV", "test")
    deploy(repo, [service("api", type="phoenix", install_command=["python", "-c", "pass"])])
    try:
        old = open_registry().entry("api")
        assert psutil.Process(old.pid).environ()["MIX_ENV"] == "test"
        assert old.service_env["MIX_ENV"] == "test"
        assert read_env_file(old.worktree_path)["MIX_ENV"] == "test"
        monkeypatch.delenv("MIX_ENV")  # the monitor runs elsewhere, without it
        kill(old.pid)
        check = monitor(failure_threshold=1).checks[0]
        assert check.action == "restarted"
        new = open_registry().entry("api")
        restarted = psutil.Process(new.pid).environ()
        assert restarted["MIX_ENV"] == "test"
        assert restarted[OWNER_VAR] == owner(old.run_id, "api")
    finally:
        asyncio.run(worktree_teardown(TeardownRequest(repo_path=repo, force=True)))


def test_the_monitor_logs_its_decisions(deployed):
    _, api = deployed
    kill(api.pid)
    state = asyncio.run(
        health_monitor(MonitorRequest(**{**ONCE, "failure_threshold": 1}), return_state=True)
    )
    logs = run_logs(state.state_details.flow_run_id, expect="round 1")
    (check,) = state.result().checks
    assert check.action == "restarted" and check.pid != api.pid
    assert line_with(logs, "api", "unhealthy", api.pid), logs  # the process that was gone
    assert line_with(logs, "restarted", check.pid), logs  # the one that replaced it
    assert line_with(logs, "round 1", "1 service(s)", "api:restarted"), logs


def test_the_health_monitor_deployment_is_limited_to_one_active_run_cancelling_new_ones():
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

    from deployments.deploy import PROJECT_DIR

    entries = yaml.safe_load((PROJECT_DIR / "prefect.yaml").read_text())["deployments"]
    entry = next(e for e in entries if e["name"] == "health-monitor")
    limit = ConcurrencyLimitConfig(**entry["concurrency_limit"])
    assert limit.limit == 1 and limit.collision_strategy is ConcurrencyLimitStrategy.CANCEL_NEW

    async def registered():
        deployment = await health_monitor.ato_deployment(
            name="health-monitor-limit-check", concurrency_limit=limit
        )
        deployment_id = await deployment.apply()
        async with get_client() as client:
            return await client.read_deployment(deployment_id)

    got = asyncio.run(registered())
    assert got.global_concurrency_limit.limit == 1
    assert got.concurrency_options.collision_strategy == ConcurrencyLimitStrategy.CANCEL_NEW
