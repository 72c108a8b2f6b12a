"""The local Prefect server for `make server` / `make stop` and the demo.

Prefect does the work: `prefect server start --background` starts it (its pid goes to
`$PREFECT_HOME/server.pid`), `prefect server status --wait` waits until it answers, `prefect
server stop` stops it. The server's settings live in `prefect.toml` at the project root, which
Prefect reads from the working directory, so the server is started from there. What this module
adds:

- the server in `PREFECT_API_URL` is used when that is set (nothing is started);
- the port: 4200, or a free one when 4200 is taken, remembered in `.prefect-server/api_url` so
  `status`, `url` and `stop` find the server this project started;
- `PREFECT_UI_API_URL` when the server is not on 127.0.0.1:4200 (the UI would otherwise look for
  its API there and show "Unable to connect");
- `PREFECT_SERVER_DATABASE_CONNECTION_URL` (e.g. `postgresql+asyncpg://…`, the one database of
  a multi-host setup) is passed through to the server when set, and shown with its password
  masked. A `postgresql://` URL is given asyncpg, the driver Prefect ships (Prefect's server
  needs an async driver named in the URL), and a PostgreSQL that cannot be reached is reported
  in seconds, naming it without the password, instead of after `status --wait`'s timeout;
- `PREFECT_SERVER_API_HOST` (Prefect's own setting, e.g. `0.0.0.0` for the workers of other
  hosts) is the address it binds, else 127.0.0.1; the URL it prints then names this host.

    python -m deployments.server start|stop|status|url
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

from tasks.net import free_port, port_is_free

PROJECT_DIR = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
DEFAULT_PORT = 4200
STATE_DIR = PROJECT_DIR / ".prefect-server"
DATABASE_ENV = "PREFECT_SERVER_DATABASE_CONNECTION_URL"
HOST_ENV = "PREFECT_SERVER_API_HOST"
ANY_ADDRESS = ("0.0.0.0", "::")


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


def ui_url_of(api_url: str) -> str:
    """The UI beside an API URL (`…/api` → `…/`; the server sends browsers on to its UI)."""
    return api_url.rstrip("/").removesuffix("/api") + "/"


def masked(url: str) -> str:
    """`url` with its password replaced by `***` (for printing a database URL)."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def server_database(url: str) -> str:
    """The URL Prefect's server is given: `postgresql://`/`postgres://` get Prefect's async
    driver (`postgresql+asyncpg://`); any other URL is passed as it is."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme in ("postgresql", "postgres"):
        return f"postgresql+asyncpg://{rest}"
    return url


def check_database(url: str, timeout_s: float = 10.0) -> None:
    """Fail fast, naming the server without its password, when a PostgreSQL database URL
    cannot be reached (Prefect's server would only stop answering `status --wait`)."""
    parts = urlsplit(url)
    if parts.scheme.split("+")[0] not in ("postgresql", "postgres"):
        return
    import psycopg  # the project's PostgreSQL driver (the claim ledger's)

    # without the query: asyncpg's options (`?ssl=…`) are not libpq's
    dsn = urlunsplit(parts._replace(scheme="postgresql", query=""))
    try:
        psycopg.connect(dsn, connect_timeout=max(1, int(timeout_s))).close()
    except psycopg.OperationalError as exc:
        where = f"postgresql://{parts.hostname}:{parts.port or 5432}{parts.path}"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if parts.password:
            reason = reason.replace(parts.password, "***")
        raise RuntimeError(f"{DATABASE_ENV}: cannot reach {where}: {reason}") from None


def _state_file(state_dir: Path) -> Path:
    return state_dir / "api_url"


def _prefect(*args: str, env: dict[str, str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "prefect", *args], cwd=PROJECT_DIR, env=env, text=True, **kwargs
    )


def running_server(state_dir: Path = STATE_DIR) -> Server | None:
    """The server named by PREFECT_API_URL, or the one this project started, if healthy."""
    if url := os.environ.get("PREFECT_API_URL"):
        return Server(url, ui_url_of(url), started_here=False) if api_healthy(url) else None
    state = _state_file(state_dir)
    if not state.exists():
        return None
    url = state.read_text().strip()
    return Server(url, ui_url_of(url), started_here=True) if api_healthy(url) else None


def _server_env(env: Mapping[str, str] | None) -> dict[str, str]:
    """The server's environment: `env` (default: this process's) without PREFECT_API_URL,
    with its database URL given Prefect's async driver."""
    out = {k: v for k, v in (os.environ if env is None else env).items() if k != "PREFECT_API_URL"}
    if out.get(DATABASE_ENV):
        out[DATABASE_ENV] = server_database(out[DATABASE_ENV])
    return out


def start_server(
    state_dir: Path = STATE_DIR,
    timeout_s: int = 120,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
) -> Server:
    """`prefect server start --background` on 127.0.0.1 or `PREFECT_SERVER_API_HOST` (on
    `port`, else 4200 when free, else a free port), then `prefect server status --wait`. `env`
    replaces this process's environment for the server (tests)."""
    env = _server_env(env)
    bind = env.get(HOST_ENV) or HOST
    if env.get(DATABASE_ENV):
        check_database(env[DATABASE_ENV])
    if port is None:
        port = DEFAULT_PORT if port_is_free(DEFAULT_PORT, bind) else free_port(bind)
    # what other hosts reach it by when it listens on every address; the health checks below
    # go through loopback either way
    advertised = socket.gethostname() if bind in ANY_ADDRESS else bind
    api = f"http://{advertised}:{port}/api"
    local_api = f"http://{HOST if bind in ANY_ADDRESS else bind}:{port}/api"
    if port != DEFAULT_PORT or advertised != HOST:
        env.setdefault("PREFECT_UI_API_URL", api)
    started = _prefect(
        "server", "start", "--background", "--host", bind, "--port", str(port),
        env=env, capture_output=True,
    )  # fmt: skip
    if started.returncode != 0:
        raise RuntimeError(f"prefect server start failed: {started.stdout}{started.stderr}")
    state_dir.mkdir(parents=True, exist_ok=True)
    _state_file(state_dir).write_text(api + "\n")
    ready = _prefect(
        "server", "status", "--wait", "--timeout", str(timeout_s),
        env={**env, "PREFECT_API_URL": local_api}, capture_output=True,
    )  # fmt: skip
    if ready.returncode != 0:
        stop_server(state_dir, env)
        raise RuntimeError(f"prefect server not healthy after {timeout_s} s: {ready.stdout}")
    return Server(api, ui_url_of(api), started_here=True)


def ensure_server(state_dir: Path = STATE_DIR) -> Server:
    """A healthy server: PREFECT_API_URL's, one this project already started, or a new one."""
    return running_server(state_dir) or start_server(state_dir)


def stop_server(state_dir: Path = STATE_DIR, env: Mapping[str, str] | None = None) -> bool:
    """`prefect server stop` for the server this project started (`env`: the environment it
    was started with, for its PREFECT_HOME); True if there was one."""
    state = _state_file(state_dir)
    if not state.exists():
        return False
    state.unlink()
    stopped = _prefect("server", "stop", env=_server_env(env), capture_output=True)
    return stopped.returncode == 0 and "stopped" in stopped.stdout.lower()


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "status"
    if command == "start":
        try:
            server = ensure_server()
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"Prefect API {server.api_url}\nPrefect UI  {server.ui_url}")
        if server.started_here and (database := os.environ.get(DATABASE_ENV)):
            print(f"database    {masked(server_database(database))}")
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
