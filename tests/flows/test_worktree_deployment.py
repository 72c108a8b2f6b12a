"""Real deployments: real git worktrees of a real temporary repository, real HTTP services."""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime

import httpx
import psutil
import pytest

from flows.worktree_deployment import worktree_deployment
from flows.worktree_teardown import worktree_teardown
from tasks.errors import InvalidInput, RolledBack
from tasks.telemetry import read_spans, spans_path
from tasks.worktree.models import DeploymentRequest, ServiceStatus, TeardownRequest
from tasks.worktree.registry import open_registry
from tasks.worktree.sample_repo import make_sample_repo
from tests.unit.worktree.helpers import (
    branches,
    port_range,
    ports_free,
    processes_under,
    service,
    worktree_paths,
)

FAST = {"health_poll_interval_s": 0.1, "health_check_timeout_s": 15}


def deploy(req: DeploymentRequest):
    return asyncio.run(worktree_deployment(req))


def teardown(**kw):
    return asyncio.run(worktree_teardown(TeardownRequest(**kw)))


@pytest.fixture
def repo(tmp_path, reactor_env):
    repo = make_sample_repo(tmp_path / "repo", ["db", "api", "web", "gateway", "bad"])
    yield repo
    teardown(repo_path=repo, force=True)  # even when a test failed half-way
    assert processes_under(repo) == []


def request(repo, worktrees, **kw):
    return DeploymentRequest(
        repo_path=repo, worktrees=worktrees, port_range=port_range(), **{**FAST, **kw}
    )


def assert_nothing_left(repo, ports, before_branches):
    assert worktree_paths(repo) == [str(repo)], "a worktree was left behind"
    assert branches(repo) == before_branches, "a created branch was left behind"
    assert processes_under(repo) == [], "a service process was left running"
    assert ports_free(ports), "a port is still in use"
    reg = open_registry().read()
    assert reg.port_allocations == {} and reg.worktree_environments == {}


def test_diamond_deploys_in_dependency_order_and_teardown_leaves_nothing(repo):
    before = branches(repo)
    diamond = [
        service("db", env={"START_DELAY_S": "0.3"}),
        service("api", ["db"], env={"START_DELAY_S": "0.2"}),
        service("web", ["db"]),
        {**service("gateway", ["api", "web"]), "branch": "feature/gateway", "base_ref": "main"},
    ]
    result = deploy(request(repo, diamond))

    assert [s.status for s in result.services] == [ServiceStatus.healthy] * 4
    assert result.batches == [["db"], ["api", "web"], ["gateway"]]
    ports = {s.name: s.port for s in result.services}
    assert len(set(ports.values())) == 4
    # the services' own start timestamps: each started after its dependencies were healthy
    bodies = {
        s.name: httpx.get(f"http://127.0.0.1:{s.port}/health").json() for s in result.services
    }
    started = {n: datetime.fromisoformat(b["started_at"]) for n, b in bodies.items()}
    healthy_at = {s.name: s.healthy_at for s in result.services}
    for name, deps in {"api": ["db"], "web": ["db"], "gateway": ["api", "web"]}.items():
        for dep in deps:
            assert started[name] > healthy_at[dep], f"{name} started before {dep} was healthy"
    # the registry matches reality: the recorded process serves the recorded port from the
    # worktree, and its recorded identity is the running process's
    envs = open_registry().environments()
    for s in result.services:
        env, body = envs[s.name], bodies[s.name]
        assert env.status == "healthy" and env.port == body["port"] == s.port
        assert env.pid == body["pid"] and psutil.pid_exists(env.pid)
        assert env.process.create_time == pytest.approx(psutil.Process(env.pid).create_time())
        assert psutil.Process(env.pid).cwd() == str(env.worktree_path)
        assert str(env.worktree_path) in worktree_paths(repo)
    assert (repo / "worktrees" / "db" / ".env").read_text().startswith(f"PORT={ports['db']}\n")
    assert "feature/gateway" in branches(repo)

    # each service's span is a child of its Prefect task-run span, in the JSONL span file
    spans = [
        r for r in read_spans(spans_path()) if r["operation_name"] == "worktree.deploy_service"
    ]
    assert sorted(r["span_attributes"]["worktree.name"] for r in spans[-4:]) == sorted(ports)
    assert all(r["parent_span_id"] for r in spans)

    pids = [s.pid for s in result.services]
    down = teardown(repo_path=repo)
    assert sorted(i.name for i in down.items) == ["api", "db", "gateway", "web"]
    assert all(i.stopped_pid and i.worktree_removed for i in down.items)
    assert_nothing_left(repo, ports.values(), before)
    assert not any(psutil.pid_exists(p) for p in pids)
    assert not {c.pid for c in psutil.Process().children(recursive=True)} & set(pids)


EXIT_3 = [sys.executable, "-c", "import sys; sys.exit(3)"]


@pytest.mark.parametrize(
    ("step", "bad", "expect"),
    [
        ("worktree", {"branch": "main"}, "git worktree add for 'bad' failed"),
        ("install", {"install_command": EXIT_3}, "bad install_failed"),
        ("start", {"start_command": ["/nonexistent/bin/server"]}, "bad start_failed"),
        ("health", {"environment_variables": {"HEALTH_MODE": "never"}}, "bad unhealthy"),
    ],
)
def test_a_failure_at_each_step_rolls_everything_back(repo, step, bad, expect):
    before = branches(repo)
    worktrees = [
        service("db"),
        {**service("api", ["db"]), "branch": "feature/api-new"},  # a branch the deploy creates
        {**service("bad"), **bad},
    ]
    req = request(repo, worktrees, health_check_timeout_s=1.0)
    with pytest.raises(RolledBack, match=expect) as info:
        deploy(req)
    done = info.value.compensations
    assert any(c.startswith("released port") for c in done)
    assert any(c.startswith("removed worktree") for c in done)
    if step in ("install", "start", "health"):
        assert any(c.startswith("stopped db") for c in done), done
    assert_nothing_left(repo, [], before)


def test_never_healthy_service_is_reported_and_its_dependents_skipped(repo):
    worktrees = [
        service("bad", env={"HEALTH_MODE": "never"}),
        service("api", ["bad"]),
        service("gateway", ["api"]),
        service("db"),
    ]
    result = deploy(request(repo, worktrees, on_failure="keep_healthy", health_check_timeout_s=1.0))
    bad = result.service("bad")
    assert bad.status is ServiceStatus.unhealthy and "status='starting'" in bad.reason
    assert result.skipped == {
        "api": "dependency bad unhealthy",
        "gateway": "dependency api was skipped",
    }
    assert result.service("db").ok and result.healthy == 1 and result.failed == 1
    envs = open_registry().environments()
    assert envs["api"].status == "skipped" and envs["api"].pid is None
    assert envs["bad"].pid is None  # failed means stopped, never left running
    teardown(repo_path=repo)
    assert worktree_paths(repo) == [str(repo)] and processes_under(repo) == []


def test_a_repo_path_that_is_not_a_repository_creates_nothing(tmp_path, reactor_env):
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(InvalidInput, match="not a git repository"):
        deploy(request(plain, [service("db")]))
    assert list(plain.iterdir()) == []
    assert not (reactor_env.coordination_dir / "environment_registry.json").exists()


def test_explicit_port_owned_by_another_name_rolls_back_cleanly(repo):
    first = deploy(request(repo, [service("db")]))
    taken = first.service("db").port
    with pytest.raises(RolledBack, match=f"port {taken} requested by 'api' is allocated to 'db'"):
        deploy(request(repo, [{**service("api"), "port": taken}]))
    assert set(open_registry().read().port_allocations) == {"db"}
    teardown()
    assert worktree_paths(repo) == [str(repo)]
