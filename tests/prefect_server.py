"""The session's Prefect test server, started early: its subprocess is launched as soon as the
pytest process has collected a test that needs it, so that its start-up (≈ 14 s of CPU:
imports, ~150 database migrations, block registration) runs beside the rest of collection and
the tests that need no server instead of after them. The `prefect_server` fixture then hands it
to Prefect's own `prefect_test_harness`, which adopts it in place of the server it would start
(same command, same temporary SQLite database path, same settings in this process)."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.loopback import free_port

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # a pytest process killed outright runs no atexit hook: the kernel stops its server then
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class EarlyServer:
    """A Prefect API server in a subprocess, launched the way `prefect_test_harness` launches
    its own (`uvicorn ... prefect.server.api.server:create_app` with the ephemeral-server flags
    and a database in a temporary directory), without importing Prefect here first."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp()
        self.port = free_port()
        prefect_dir = Path(importlib.util.find_spec("prefect").origin).parent
        db = f"sqlite+aiosqlite:///{Path(self.dir) / 'prefect-test.db'}"
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "uvicorn", "--app-dir", str(prefect_dir.parent),
                "--factory", "prefect.server.api.server:create_app",
                "--host", "127.0.0.1", "--port", str(self.port),
                "--log-level", "error", "--lifespan", "on",
            ],
            env={
                **os.environ,
                "PREFECT_UI_ENABLED": "0",
                "PREFECT__SERVER_EPHEMERAL": "1",
                "PREFECT__SERVER_FINAL": "1",
                "PREFECT_SERVER_DATABASE_CONNECTION_URL": db,
            },
            # launched from the main thread (a pytest hook), which lives as long as the process
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )  # fmt: skip
        atexit.register(self.stop)  # when no test of this process ends up using it

    def healthy(self, timeout_s: float) -> bool:
        """Wait until the server answers its health check (True), exits, or `timeout_s` ends."""
        deadline = time.monotonic() + timeout_s
        with httpx.Client() as client:
            while self.proc.poll() is None and time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"http://127.0.0.1:{self.port}/api/health").is_success:
                        return True
                time.sleep(0.1)
        return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def harness(early: EarlyServer | None, timeout_s: int) -> Iterator[None]:
    """`prefect_test_harness` on the early server when it came up (else on a server of its own,
    as without one): the harness picks the early server's port and temporary directory, finds
    it already running under that port and stops it on exit."""
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.testing import utilities

    if early is None or not early.healthy(timeout_s):
        if early is not None:
            early.stop()
        with utilities.prefect_test_harness(server_startup_timeout=timeout_s):
            yield
        return
    server = SubprocessASGIServer(port=early.port)
    server.server_process, server.running = early.proc, True
    with contextlib.ExitStack() as stack:
        with pytest.MonkeyPatch.context() as patch:  # only while the harness starts
            patch.setattr(utilities, "_find_available_port", lambda: early.port)
            patch.setattr(utilities, "mkdtemp", lambda: early.dir)
            stack.enter_context(utilities.prefect_test_harness(server_startup_timeout=timeout_s))
        yield
