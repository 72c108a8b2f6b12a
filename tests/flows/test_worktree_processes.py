"""What a deployed service and its log relay inherit from the process that deploys them: no
descriptor of ours (a caller capturing `reactor worktree deploy`'s output sees its end when the
command exits, not at teardown) and no secret of ours, unless the spec passes it through."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

from flows.worktree_deployment import worktree_deployment
from flows.worktree_teardown import worktree_teardown
from tasks.worktree.log_relay import SECRETS_VAR
from tasks.worktree.models import DeploymentRequest, TeardownRequest
from tasks.worktree.registry import open_registry
from tasks.worktree.sample_repo import make_sample_repo
from tests.unit.worktree.helpers import port_range, processes_under, service

pytestmark = pytest.mark.timeout(600)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def repo(tmp_path, reactor_env):
    repo = make_sample_repo(tmp_path / "repo", ["db", "api"])
    yield repo
    asyncio.run(worktree_teardown(TeardownRequest(repo_path=repo, force=True)))
    assert processes_under(repo) == []


def relays_of(repo: Path) -> list[psutil.Process]:
    """The log relays writing a log under `repo` (their working directory is the project's)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        argv = proc.info.get("cmdline") or []
        if "tasks.worktree.log_relay" in argv and str(repo) in " ".join(argv):
            found.append(proc)
    return found


def pipes_held(pid: int) -> set[str]:
    """The pipes among the descriptors of `pid` (`pipe:[inode]`)."""
    held = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("pipe:"):
            held.add(target)
    return held


def pipe_id(fileobj) -> str:
    return f"pipe:[{os.fstat(fileobj.fileno()).st_ino}]"


def test_a_captured_deploy_returns_while_its_services_run(repo, tmp_path):
    """`reactor worktree deploy` run as `subprocess.run(..., capture_output=True)` (or piped
    into `tee`) does: its output ends when the command exits, while the services (and their
    log relays) keep running, holding none of the caller's pipes."""
    from prefect.settings import PREFECT_API_URL

    spec = tmp_path / "spec.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "repo_path": str(repo),
                "port_range": list(port_range()),
                "health_poll_interval_s": 0.1,
                "health_check_timeout_s": 30,
                "worktrees": [service("db"), service("api", ["db"])],
            }
        )
    )
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    cli = subprocess.Popen(
        [sys.executable, "-m", "reactor", "worktree", "deploy", str(spec), "--json"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    ours = {pipe_id(cli.stdout), pipe_id(cli.stderr)}
    try:
        code = cli.wait(timeout=300)  # the command itself has finished
        relays = relays_of(repo)
        assert len(relays) == 2
        holders = {
            p.pid: p.cmdline()
            for p in [*relays, *processes_under(repo)]
            if pipes_held(p.pid) & ours
        }
        assert holders == {}, "a service or relay holds the deploy's stdout or stderr"
        # so reading the output to its end returns at once (it hung until teardown)
        out, err = cli.communicate(timeout=30)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
        cli.stdout.close()  # never wait for an end a leftover holder would keep away
        cli.stderr.close()
    assert code == 0, err.decode(errors="replace")[-2000:]
    result = json.loads(out)
    assert result["healthy"] == 2
    for s in result["services"]:  # still running after the command returned
        assert httpx.get(f"http://127.0.0.1:{s['port']}/health").json()["pid"] == s["pid"]
    for relay in relays_of(repo):
        with relay.oneshot():
            assert os.readlink(f"/proc/{relay.pid}/fd/1") == "/dev/null"
            assert pipes_held(relay.pid) == {os.readlink(f"/proc/{relay.pid}/fd/0")}


def test_a_service_gets_no_secret_of_the_deploying_process_unless_passed_through(repo, monkeypatch):
    """The deploying process holds the coordination layer's keys: api gets none of them (nor
    any other variable of ours beyond the base), db gets the two its spec names. Each log
    relay is handed the secrets its own service holds, not another service's."""
    anthropic, aws = "sk-ant-7f3e1d09c4b2a8", "aws/Secret+7741c0de9a"
    monkeypatch.setenv("ANTHROPIC_API_KEY", anthropic)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", aws)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIA7741C0DE9A")
    monkeypatch.setenv("REACTOR_SOME_SETTING", "not for services")
    db_secret = "db-secret-5e0c2f71aa"
    req = DeploymentRequest(
        repo_path=repo,
        worktrees=[
            service(
                "db",
                env={"DB_PASSWORD": db_secret},
                passthrough_env=["ANTHROPIC_API_KEY", "AWS_ACCESS_KEY_ID", "NOT_SET_ANYWHERE"],
            ),
            service("api", ["db"]),
        ],
        port_range=port_range(),
        health_poll_interval_s=0.1,
        health_check_timeout_s=30,
    )
    result = asyncio.run(worktree_deployment(req))
    db, api = (psutil.Process(result.service(n).pid).environ() for n in ("db", "api"))

    for name in ("ANTHROPIC_API_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"):
        assert name not in api
    assert "REACTOR_SOME_SETTING" not in api and "REACTOR_COORDINATION_DIR" not in api
    assert api["PATH"] == os.environ["PATH"] and api["PORT"] == str(result.service("api").port)
    assert db["ANTHROPIC_API_KEY"] == anthropic and db["AWS_ACCESS_KEY_ID"] == "AKIA7741C0DE9A"
    assert "AWS_SECRET_ACCESS_KEY" not in db and "NOT_SET_ANYWHERE" not in db
    assert db["DB_PASSWORD"] == db_secret
    # what db got is what is recorded (secrets redacted), so a restart gives it the same
    recorded = open_registry().entry("db").service_env
    assert recorded["AWS_ACCESS_KEY_ID"] == "AKIA7741C0DE9A"
    assert recorded["ANTHROPIC_API_KEY"] == "[REDACTED]"

    relays = {}
    for relay in relays_of(repo):
        log = Path(relay.cmdline()[-1])
        relays[log.stem] = relay.environ()
    assert set(relays) == {"db", "api"}
    assert not any(v in (anthropic, aws) for v in relays["api"].values())
    assert json.loads(relays["api"][SECRETS_VAR]) == []  # api holds no secret
    assert set(json.loads(relays["db"][SECRETS_VAR])) == {anthropic, db_secret}
    assert "ANTHROPIC_API_KEY" not in relays["db"] and "AWS_SECRET_ACCESS_KEY" not in relays["db"]
