"""The first hour, from outside: the installed `reactor` (and `python -m deployments.server`
behind `make server` / `make stop`) in a subprocess, with a dead PREFECT_API_URL, port 4200
busy, a stale server record, a temporary server that does not come up, a malformed database
URL and a flow that fails. Each ends in one `error:` line naming the cause, never a traceback;
`make server` comes up beside a busy 4200 and `make stop` signals only its own process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import psutil
import pytest
from prefect.settings import PREFECT_API_URL

from deployments.server import PROJECT_DIR, ServerRecord
from tasks.net import port_is_free
from tasks.worktree.identity import identify
from tests.loopback import free_port

REACTOR = Path(sys.executable).parent / "reactor"
SECRET = "Sup3rSecretPw9"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env |= {
        "REACTOR_SERVER_DIR": str(tmp_path / "server"),  # not the checkout's own record
        "REACTOR_COORDINATION_DIR": str(tmp_path / "coordination"),
        "REACTOR_EXPORTS_DIR": str(tmp_path / "exports"),
    }
    return env | extra


def _run(argv: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv, cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=timeout
    )


def _one_error_line(done: subprocess.CompletedProcess) -> str:
    """The single `error:` line of a failed command (stderr may also say which server)."""
    assert done.returncode != 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    return errors[0]


@pytest.fixture
def busy_4200():
    """Port 4200 taken, as on a machine where another checkout's server runs."""
    sock = None
    if port_is_free(4200):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 4200))
        sock.listen()
    try:
        yield
    finally:
        if sock is not None:
            sock.close()


def _stale_record(state: Path, pid: int, identity_of: int | None = None) -> None:
    """A record of a server that crashed: `pid` with the identity of process `identity_of`
    (an exited one by default)."""
    if identity_of is None:
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        process = identify(gone.pid)
        gone.wait()
    else:
        process = identify(identity_of)
    process = process.model_copy(update={"pid": pid})
    state.mkdir(parents=True, exist_ok=True)
    record = ServerRecord(
        api_url="http://127.0.0.1:4200/api",
        local_api_url="http://127.0.0.1:4200/api",
        process=process,
        log=str(state / "server.log"),
    )
    (state / "server.json").write_text(record.model_dump_json())


@pytest.mark.parametrize(
    "argv",
    [
        ["swarm", "run", "samples/swarm/tasks.json"],
        ["spr", "batch", "samples/spr"],
        ["trace", "run", "samples/trace/systems.json"],
        ["runs", "resume", str(uuid.uuid4())],
    ],
)
def test_a_dead_prefect_api_url_is_one_error_line(argv, tmp_path):
    dead = f"http://127.0.0.1:{free_port()}/api"
    done = _run([str(REACTOR), *argv], _env(tmp_path, PREFECT_API_URL=dead), timeout=300)
    line = _one_error_line(done)
    assert "PREFECT_API_URL" in line and dead in line


def test_make_deploy_with_a_dead_url_names_that_url(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}/api"
    env = _env(tmp_path, PREFECT_API_URL=dead)
    for argv in (["-m", "deployments.deploy"], ["-m", "deployments.server", "url"]):
        line = _one_error_line(_run([sys.executable, *argv], env, timeout=300))
        assert dead in line and "make server" not in line.split("unset")[0]


def test_a_temporary_server_that_does_not_come_up_is_one_error_line(tmp_path):
    env = _env(tmp_path, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="1")
    done = _run([str(REACTOR), "swarm", "run", "samples/swarm/tasks.json"], env)
    line = _one_error_line(done)
    assert "temporary Prefect server" in line and "make server" in line
    assert "temporary one" in done.stderr.splitlines()[0]  # it said which server first


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://prefect:{SECRET}@127.0.0.1:notaport/prefect",
        f"postgresql://prefect:{SECRET}%zz@127.0.0.1:{{port}}/prefect",
        f"postgresql://prefect:{SECRET}@127.0.0.1:{{port}}/prefect",
    ],
    ids=["bad-port", "bad-escape", "nothing-listening"],
)
def test_a_bad_server_database_url_is_one_line_without_the_password(url, tmp_path):
    url = url.format(port=free_port())  # chosen at run time: xdist workers collect the same ids
    env = _env(tmp_path, PREFECT_SERVER_DATABASE_CONNECTION_URL=url)
    done = _run([sys.executable, "-m", "deployments.server", "start"], env, timeout=120)
    line = _one_error_line(done)
    assert "PREFECT_SERVER_DATABASE_CONNECTION_URL" in line
    assert SECRET not in done.stdout + done.stderr


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://ledger:{SECRET}@127.0.0.1:{{port}}/ledger",
        f"postgresql://ledger:{SECRET}%zz@127.0.0.1:{{port}}/ledger",
    ],
    ids=["nothing-listening", "bad-escape"],
)
def test_an_unreachable_ledger_database_is_one_line_without_the_password(url, tmp_path):
    url = url.format(port=free_port())
    done = _run([str(REACTOR), "claims", "list"], _env(tmp_path, REACTOR_DATABASE_URL=url))
    line = _one_error_line(done)
    assert "REACTOR_DATABASE_URL" in line
    assert SECRET not in done.stdout + done.stderr


def test_stop_never_signals_a_process_that_took_the_recorded_pid(tmp_path):
    """After a crash the recorded pid may belong to another program: `make stop` removes the
    stale record and leaves that process alone."""
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        state = tmp_path / "server"
        _stale_record(state, pid=bystander.pid)  # its pid, another process's identity
        done = _run([sys.executable, "-m", "deployments.server", "stop"], _env(tmp_path))
        assert done.returncode == 0 and "stale" in done.stdout, done.stdout + done.stderr
        assert bystander.poll() is None and psutil.pid_exists(bystander.pid)
        assert not (state / "server.json").exists()
    finally:
        bystander.kill()
        bystander.wait()


@pytest.mark.timeout(900)  # a real server start: minutes on loaded cores
def test_make_server_beside_a_busy_4200_and_a_stale_record(busy_4200, tmp_path):
    """The README's UI steps on a machine where 4200 is taken and a crash left a record: the
    server comes up on another port, says where, its UI answers and finds its API, commands of
    this checkout use it, and `make stop` stops it."""
    env = _env(tmp_path)
    _stale_record(tmp_path / "server", pid=2**22 - 7)
    started = _run([sys.executable, "-m", "deployments.server", "start", "--timeout", "600"], env)
    assert started.returncode == 0, started.stdout + started.stderr
    assert "stale" in started.stderr
    record = ServerRecord.model_validate_json((tmp_path / "server" / "server.json").read_text())
    try:
        api = record.api_url
        assert ":4200/" not in api and f"Prefect API {api}" in started.stdout
        ui = httpx.get(api.removesuffix("/api") + "/", timeout=30, follow_redirects=True)
        assert ui.status_code == 200
        settings = httpx.get(f"{api}/admin/settings", timeout=30).json()
        assert settings["server"]["ui"]["api_url"] == api  # the UI looks for this API
        # a command of this checkout uses it and says so (an unknown run: one error line)
        done = _run([str(REACTOR), "runs", "resume", str(uuid.uuid4())], env, timeout=300)
        assert api in done.stderr.splitlines()[0] and "this checkout" in done.stderr
        _one_error_line(done)
        url = _run([sys.executable, "-m", "deployments.server", "url"], env)
        assert url.stdout.strip() == api
    finally:
        stopped = _run([sys.executable, "-m", "deployments.server", "stop"], env)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert not psutil.pid_exists(record.process.pid) or (
        psutil.Process(record.process.pid).status() == psutil.STATUS_ZOMBIE
    )
    assert not port_is_free(4200)  # the other program's port was left alone


def test_a_failed_flow_run_is_one_error_line_and_its_logs_keep_the_traceback(tmp_path):
    """Every system down and fallback off: the trace run fails; the CLI prints one `error:`
    line and no traceback, `--verbose` prints the traceback."""
    request = json.loads((PROJECT_DIR / "samples" / "trace" / "systems.json").read_text())
    dead = free_port()
    request["enable_fallback"] = False
    for system in request["systems"]:
        system["url"] = f"http://127.0.0.1:{dead}/{system['name']}"
        system["retries"] = 0
        system["timeout_s"] = 0.5
    path = tmp_path / "systems.json"
    path.write_text(json.dumps(request))
    env = _env(tmp_path, PREFECT_API_URL=PREFECT_API_URL.value())
    done = _run([str(REACTOR), "trace", "run", str(path)], env)
    line = _one_error_line(done)
    assert done.stderr.splitlines()[0].startswith("Prefect server: PREFECT_API_URL")
    assert done.stderr.strip().splitlines()[-1] == line
    verbose = _run([str(REACTOR), "--verbose", "trace", "run", str(path)], env)
    assert verbose.returncode == done.returncode and "Traceback" in verbose.stderr


def test_usage_errors_are_one_line(tmp_path):
    for argv in (["spr", "validate"], ["spr", "compress", "x", "--bogus"], ["nope"]):
        done = _run([str(REACTOR), *argv], _env(tmp_path), timeout=120)
        line = _one_error_line(done)
        assert "--help" in line
