"""Real deployments: real git worktrees of a real temporary repository, real HTTP services."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
import sys
from datetime import datetime

import httpx
import psutil
import pytest

from flows.worktree_deployment import worktree_deployment
from flows.worktree_teardown import worktree_teardown
from tasks.errors import InvalidInput, RolledBack
from tasks.span_log import read_spans, spans_path
from tasks.worktree.errors import DeploymentRolledBack, UnsavedWorkError
from tasks.worktree.models import DeploymentRequest, ServiceStatus, TeardownRequest
from tasks.worktree.registry import open_registry
from tasks.worktree.sample_repo import make_sample_repo
from tests.flows.run_helpers import line_with
from tests.prefect_api import run_logs
from tests.unit.worktree.helpers import (
    branches,
    git,
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


# -- data safety ---------------------------------------------------------------------------------


def deploy_state(req: DeploymentRequest):
    """(flow run id, result or the exception it failed with)."""
    state = asyncio.run(worktree_deployment(req, return_state=True))
    return state.state_details.flow_run_id, state.result(raise_on_failure=False)


def summary_markdown(flow_run_id, key: str) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )

    async def read():
        async with get_client() as client:
            found = await client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    key=ArtifactFilterKey(any_=[key]),
                    flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
                )
            )
        return [a.data for a in found]

    texts = asyncio.run(read())
    assert len(texts) == 1, f"expected one {key} artifact of run {flow_run_id}, got {len(texts)}"
    return texts[0]


def commit(worktree, name: str, message: str) -> None:
    (worktree / name).write_text(f"{message}\n")
    git(worktree, "add", name)
    git(worktree, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message)


def test_teardown_refuses_to_destroy_uncommitted_or_unmerged_work_unless_forced(repo):
    worktrees = [service("db"), {**service("api"), "branch": "feature/api-x", "base_ref": "main"}]
    result = deploy(request(repo, worktrees))
    db, api = (result.service(n).worktree_path for n in ("db", "api"))
    (db / "notes.txt").write_text("my draft\n")  # uncommitted, on an existing branch
    commit(api, "fix.py", "fix the api")  # a commit only the created branch has

    with pytest.raises(UnsavedWorkError) as info:
        teardown(repo_path=repo)
    message = str(info.value)
    assert "worktree 'db'" in message and "1 uncommitted file(s) (notes.txt)" in message
    assert "worktree 'api'" in message and "fix the api" in message and "--force" in message
    # nothing was touched: services up, worktrees, branch, ports and registry entries kept
    assert (db / "notes.txt").exists() and "feature/api-x" in branches(repo)
    assert all(psutil.pid_exists(s.pid) for s in result.services)
    assert set(open_registry().environments()) == {"db", "api"}

    down = teardown(repo_path=repo, force=True)
    assert sorted(down.forced) == ["api", "db"]
    assert worktree_paths(repo) == [str(repo)] and "feature/api-x" not in branches(repo)


def test_teardown_never_kills_a_process_that_reused_a_services_pid(repo):
    result = deploy(request(repo, [service("db")]))
    db = result.service("db")
    os.kill(db.pid, signal.SIGKILL)
    psutil.wait_procs([psutil.Process(db.pid)], timeout=5)
    # the kernel has handed the number to an unrelated process (one of ours, for the test)
    unrelated = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    try:
        registry = open_registry()
        identity = registry.entry("db").process.model_copy(update={"pid": unrelated.pid})
        registry.update_environment("db", process=identity)
        down = teardown(repo_path=repo)
        assert unrelated.poll() is None, "teardown killed an unrelated process"
        item = down.items[0]
        assert item.stopped_pid is None and "now belongs to another process" in item.detail
        assert item.worktree_removed and worktree_paths(repo) == [str(repo)]
    finally:
        unrelated.kill()
        unrelated.wait()


def test_secrets_reach_the_service_but_no_file_the_run_wrote(repo, reactor_env):
    secrets = {"API_SECRET": "s3cr3t-9f2c71", "STRIPE_KEY": "sk_live_7d41aa0e"}
    run_id, result = deploy_state(request(repo, [service("db", env=secrets)]))
    db = result.service("db")
    seen = psutil.Process(db.pid).environ()
    assert {k: seen[k] for k in secrets} == secrets  # the process gets the real values
    env_file = db.worktree_path / ".env"
    assert "# API_SECRET: a secret, not stored" in env_file.read_text()  # named, no value
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    written = [
        p
        for root in (reactor_env.coordination_dir, reactor_env.exports_dir, db.worktree_path)
        for p in root.rglob("*")
        if p.is_file() and ".git" not in p.parts
    ]
    assert any(p.name == "environment_registry.json" for p in written)
    for path in written:
        data = path.read_bytes()
        for value in secrets.values():
            assert value.encode() not in data, f"{value} in {path}"
    assert open_registry().entry("db").service_env["API_SECRET"] == "[REDACTED]"
    logs = run_logs(run_id, expect="db healthy")
    assert line_with(logs, "db", "healthy") and not any(v in logs for v in secrets.values())


# -- what was undone is reported -----------------------------------------------------------------


def test_a_rollback_lists_what_was_undone_in_its_result_and_summary(repo):
    worktrees = [service("db"), {**service("bad", env={"HEALTH_MODE": "never"})}]
    run_id, failure = deploy_state(request(repo, worktrees, health_check_timeout_s=1.0))
    assert isinstance(failure, DeploymentRolledBack)
    result = failure.result
    assert result.rolled_back and result.compensations == failure.compensations
    undone = result.compensations
    assert any(c.startswith("stopped bad") and "never became healthy" in c for c in undone)
    assert any(c.startswith("stopped db") for c in undone)
    assert any(c.startswith("removed worktree") for c in undone)
    assert any(c.startswith("released port") for c in undone)
    markdown = summary_markdown(run_id, "worktree-deployment-summary")
    assert "rolled back" in markdown and "## Undone" in markdown
    assert all(c in markdown for c in undone)
    logs = run_logs(run_id, expect="released port")
    assert all(line_with(logs, c) for c in undone)


def test_keep_healthy_result_lists_the_failed_service_it_stopped(repo):
    worktrees = [service("db"), service("bad", env={"HEALTH_MODE": "never"})]
    run_id, result = deploy_state(
        request(repo, worktrees, on_failure="keep_healthy", health_check_timeout_s=1.0)
    )
    assert result.healthy == 1 and len(result.compensations) == 1
    assert result.compensations[0].startswith("stopped bad (pid ")
    assert result.compensations[0] in summary_markdown(run_id, "worktree-deployment-summary")


# -- the story in the logs -----------------------------------------------------------------------


def test_the_run_logs_tell_the_deployment_and_teardown_story(repo):
    worktrees = [
        service("db"),
        {**service("api", ["db"]), "branch": "feature/api-log", "base_ref": "main"},
        service("bad", ["db"], env={"HEALTH_MODE": "never"}),
        service("web", ["bad"]),
    ]
    run_id, result = deploy_state(
        request(repo, worktrees, on_failure="keep_healthy", health_check_timeout_s=1.0)
    )
    logs = run_logs(run_id, expect="skipped in")
    db, api = result.service("db"), result.service("api")
    for facts in (
        ("4 worktree(s)",),
        ("db", db.worktree_path),  # its worktree, created
        ("service/db",),  # an existing branch adopted
        ("feature/api-log", "main"),  # a new branch from its base
        ("api", api.port),
        ("db", "healthy", db.pid),
        ("bad", "unhealthy"),
        ("web", "bad", "unhealthy"),  # skipped, naming the dependency that failed
        (result.compensations[0],),
        ("['db', 'api']",),  # what the monitor watches
        ("2 healthy", "1 failed", "1 skipped"),
    ):
        assert line_with(logs, *facts), f"no line with {facts} in the run's logs:\n{logs}"
    state = asyncio.run(worktree_teardown(TeardownRequest(repo_path=repo), return_state=True))
    down = run_logs(state.state_details.flow_run_id, expect="pruned")
    for facts in (("4 environment(s)",), ("api", api.pid), ("pruned",)):
        assert line_with(down, *facts), f"no line with {facts} in the teardown's logs:\n{down}"
    markdown = summary_markdown(state.state_details.flow_run_id, "worktree-teardown-summary")
    assert "4 environment(s) removed" in markdown
