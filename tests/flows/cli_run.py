"""Running this checkout's commands from outside, as a user does: the installed `reactor` and
`python -m deployments.server` (behind `make server` / `make stop`) in a subprocess, with a
server record, coordination and exports dirs of the test's own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from deployments.server import PROJECT_DIR, ServerRecord
from tasks.worktree.identity import identify

REACTOR = Path(sys.executable).parent / "reactor"


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """This process's environment without PREFECT_API_URL, with `<tmp_path>/server` as the
    server record's dir (not the checkout's own), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env |= {
        "REACTOR_SERVER_DIR": str(tmp_path / "server"),
        "REACTOR_COORDINATION_DIR": str(tmp_path / "coordination"),
        "REACTOR_EXPORTS_DIR": str(tmp_path / "exports"),
    }
    return env | extra


def run(argv: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv, cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=timeout
    )


def one_error_line(done: subprocess.CompletedProcess) -> str:
    """The single `error:` line of a failed command (stderr may also say which server)."""
    assert done.returncode != 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    return errors[0]


def stale_record(state: Path, pid: int, identity_of: int | None = None) -> None:
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
