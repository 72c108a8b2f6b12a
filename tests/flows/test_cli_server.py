"""The first hour, from outside: the installed `reactor` (and `python -m deployments.server`
behind `make server` / `make stop`) in a subprocess, with a dead PREFECT_API_URL, a stale server
record, a temporary server that does not come up, a malformed database URL and a flow that
fails. Each ends in one `error:` line naming the cause, never a traceback; `make stop` signals
only its own process. (`make server` beside a busy 4200 and a stale record: in
tests/flows/test_two_hosts.py, on the server that module starts anyway.)"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import psutil
import pytest
from prefect.settings import PREFECT_API_URL

from deployments.server import PROJECT_DIR
from tests.flows.cli_run import REACTOR, cli_env, one_error_line, run, stale_record
from tests.loopback import free_port

SECRET = "Sup3rSecretPw9"


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
    done = run([str(REACTOR), *argv], cli_env(tmp_path, PREFECT_API_URL=dead), timeout=300)
    line = one_error_line(done)
    assert "PREFECT_API_URL" in line and dead in line


def test_make_deploy_with_a_dead_url_names_that_url(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}/api"
    env = cli_env(tmp_path, PREFECT_API_URL=dead)
    for argv in (["-m", "deployments.deploy"], ["-m", "deployments.server", "url"]):
        line = one_error_line(run([sys.executable, *argv], env, timeout=300))
        assert dead in line and "make server" not in line.split("unset")[0]


def test_a_temporary_server_that_does_not_come_up_is_one_error_line(tmp_path):
    env = cli_env(tmp_path, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="1")
    done = run([str(REACTOR), "swarm", "run", "samples/swarm/tasks.json"], env)
    line = one_error_line(done)
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
    env = cli_env(tmp_path, PREFECT_SERVER_DATABASE_CONNECTION_URL=url)
    done = run([sys.executable, "-m", "deployments.server", "start"], env, timeout=120)
    line = one_error_line(done)
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
    done = run([str(REACTOR), "claims", "list"], cli_env(tmp_path, REACTOR_DATABASE_URL=url))
    line = one_error_line(done)
    assert "REACTOR_DATABASE_URL" in line
    assert SECRET not in done.stdout + done.stderr


def test_stop_never_signals_a_process_that_took_the_recorded_pid(tmp_path):
    """After a crash the recorded pid may belong to another program: `make stop` removes the
    stale record and leaves that process alone."""
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        state = tmp_path / "server"
        stale_record(state, pid=bystander.pid)  # its pid, another process's identity
        done = run([sys.executable, "-m", "deployments.server", "stop"], cli_env(tmp_path))
        assert done.returncode == 0 and "stale" in done.stdout, done.stdout + done.stderr
        assert bystander.poll() is None and psutil.pid_exists(bystander.pid)
        assert not (state / "server.json").exists()
    finally:
        bystander.kill()
        bystander.wait()


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
    env = cli_env(tmp_path, PREFECT_API_URL=PREFECT_API_URL.value())
    done = run([str(REACTOR), "trace", "run", str(path)], env)
    line = one_error_line(done)
    assert done.stderr.splitlines()[0].startswith("Prefect server: PREFECT_API_URL")
    assert done.stderr.strip().splitlines()[-1] == line
    verbose = run([str(REACTOR), "--verbose", "trace", "run", str(path)], env)
    assert verbose.returncode == done.returncode and "Traceback" in verbose.stderr


def test_usage_errors_are_one_line(tmp_path):
    for argv in (["spr", "validate"], ["spr", "compress", "x", "--bogus"], ["nope"]):
        done = run([str(REACTOR), *argv], cli_env(tmp_path), timeout=120)
        line = one_error_line(done)
        assert "--help" in line
