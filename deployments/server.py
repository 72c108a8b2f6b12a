"""The local Prefect server: start it in the background, find it, stop it.

`python -m deployments.server start|stop|status` backs `make server` / `make stop`; the demo uses
`ensure_server()`. When `PREFECT_API_URL` is set, that server is used and nothing is started.
The server binds 127.0.0.1; its pid and log live in `.prefect-server/` in the project.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

HOST = "127.0.0.1"
DEFAULT_PORT = 4200
STATE_DIR = Path(".prefect-server")
# Measured here: analytics cause "database is locked"; recorder batches of 100 keep task-run
# history and save ~30 ms CPU per task run.
SERVER_ENV = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "100",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_READ_BATCH_SIZE": "100",
}


@dataclass
class Server:
    api_url: str
    ui_url: str
    started_here: bool
    pid: int | None = None


def api_healthy(api_url: str, timeout_s: float = 2.0) -> bool:
    try:
        return httpx.get(f"{api_url.rstrip('/')}/health", timeout=timeout_s).is_success
    except httpx.HTTPError:
        return False


def _port_free(port: int) -> bool:
    """Whether the server could bind `port`: like uvicorn, with SO_REUSEADDR, so sockets of an
    earlier server still in TIME_WAIT do not count as taken."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
        return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _urls(port: int) -> tuple[str, str]:
    return f"http://{HOST}:{port}/api", f"http://{HOST}:{port}/v2"


def _pid_file(state_dir: Path) -> Path:
    return state_dir / "server.pid"


def running_server(state_dir: Path = STATE_DIR) -> Server | None:
    """The server named by PREFECT_API_URL, or the one this project started, if healthy."""
    if url := os.environ.get("PREFECT_API_URL"):
        ui = url.rsplit("/api", 1)[0] + "/v2"
        return Server(api_url=url, ui_url=ui, started_here=False) if api_healthy(url) else None
    pid_file = _pid_file(state_dir)
    if not pid_file.exists():
        return None
    pid, port = (int(x) for x in pid_file.read_text().split())
    api, ui = _urls(port)
    return Server(api_url=api, ui_url=ui, started_here=True, pid=pid) if api_healthy(api) else None


def start_server(state_dir: Path = STATE_DIR, timeout_s: float = 90.0) -> Server:
    """Start `prefect server start` in the background on 127.0.0.1 (port 4200 when free)."""
    port = DEFAULT_PORT if _port_free(DEFAULT_PORT) else _free_port()
    api, ui = _urls(port)
    env = {**os.environ, **SERVER_ENV, "PREFECT_UI_API_URL": api}
    env.pop("PREFECT_API_URL", None)
    state_dir.mkdir(parents=True, exist_ok=True)
    log = open(state_dir / "server.log", "ab")  # noqa: SIM115 - handed to the child process
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", HOST, "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    _pid_file(state_dir).write_text(f"{proc.pid} {port}\n")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server exited early; see {state_dir / 'server.log'}")
        if api_healthy(api):
            return Server(api_url=api, ui_url=ui, started_here=True, pid=proc.pid)
        time.sleep(0.5)
    stop_server(state_dir)
    raise RuntimeError(f"prefect server not healthy after {timeout_s:.0f} s; see server.log")


def ensure_server(state_dir: Path = STATE_DIR) -> Server:
    """A healthy server: PREFECT_API_URL's, one this project already started, or a new one."""
    return running_server(state_dir) or start_server(state_dir)


def stop_server(state_dir: Path = STATE_DIR) -> bool:
    """Stop the server this project started (its whole process group); True if one was running."""
    pid_file = _pid_file(state_dir)
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text().split()[0])
    pid_file.unlink()
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    for _ in range(50):
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    os.killpg(pid, signal.SIGKILL)
    return True


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "status"
    if command == "start":
        server = ensure_server()
        print(f"Prefect API {server.api_url}\nPrefect UI  {server.ui_url}")
        print(f"export PREFECT_API_URL={server.api_url}")
        return 0
    if command == "stop":
        print("stopped" if stop_server() else "no server started by this project is running")
        return 0
    if command == "url":  # for scripts: the API URL of the running server, or exit 1
        server = running_server()
        if server:
            print(server.api_url)
        return 0 if server else 1
    if command == "status":
        server = running_server()
        print(f"running: {server.api_url} (UI {server.ui_url})" if server else "not running")
        return 0 if server else 1
    print("usage: python -m deployments.server start|stop|status|url", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
