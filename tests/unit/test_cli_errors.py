"""Bad input and unreachable services on the command line: one `error:` line naming what was
wrong, a non-zero exit, no traceback (the installed `reactor` and `python -m deployments.worker`
in subprocesses)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.loopback import free_port

ROOT = Path(__file__).resolve().parents[2]
REACTOR = str(Path(sys.executable).parent / "reactor")


def _run(argv: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, env={**os.environ, **env}, capture_output=True, text=True, timeout=180, cwd=ROOT
    )


def _one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_a_request_file_that_is_not_utf8_is_named(tmp_path):
    request = tmp_path / "systems.json"
    request.write_bytes(b'{"workflow_id": "caf\xe9", "systems": []}')  # Latin-1, not UTF-8
    line = _one_error_line(_run([REACTOR, "trace", "run", str(request)]))
    assert str(request) in line and "UTF-8" in line


def test_resume_with_the_prefect_api_unreachable(tmp_path):
    api = f"http://127.0.0.1:{free_port()}/api"  # nothing listens there
    done = _run(
        [REACTOR, "runs", "resume", "0b7c3a4e-8a47-4f1e-9a1e-1d2b3c4d5e6f"], PREFECT_API_URL=api
    )
    line = _one_error_line(done)
    assert api in line and "PREFECT_API_URL" in line


def test_the_worker_with_a_metrics_port_that_is_not_a_number():
    done = _run([sys.executable, "-m", "deployments.worker"], REACTOR_METRICS_PORT="nine")
    assert "REACTOR_METRICS_PORT" in _one_error_line(done)


def test_the_worker_with_a_busy_metrics_port():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _run([sys.executable, "-m", "deployments.worker"], REACTOR_METRICS_PORT=str(port))
    line = _one_error_line(done)
    assert f"127.0.0.1:{port}" in line and "REACTOR_METRICS_PORT" in line
