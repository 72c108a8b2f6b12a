"""This checkout's Prefect server (`make server` / `make stop`, the demo) and which server a
command uses.

Which server: the one in `PREFECT_API_URL` when that is set (it must answer); else the server
`make server` started for this checkout, when it is up; else none, and a command that runs a
flow gets a temporary one from Prefect (`select_server`, said in one line on stderr).

The server `make server` starts belongs to this checkout, and only this checkout stops it:

- it runs as `prefect server start` in its own session, with its own `PREFECT_HOME`
  (`.prefect-server/home`, so its database and settings are this checkout's), its log in
  `.prefect-server/server.log`, and its record in `.prefect-server/server.json`: the URL and
  the process's identity (pid, start time, command line; a pid alone may name another process
  after a crash). `make stop` signals only a process matching that record; a record whose
  process is gone is removed and said so;
- the port: 4200, or a free one when 4200 is taken (another checkout, another program);
- `PREFECT_UI_API_URL` when the server is not on 127.0.0.1:4200 (the UI would otherwise look for
  its API there and show "Unable to connect");
- `PREFECT_SERVER_DATABASE_CONNECTION_URL` (e.g. `postgresql+asyncpg://…`, the one database of
  a multi-host setup) is passed through to the server when set, and shown with its password
  masked. A `postgresql://` URL is given asyncpg, the driver Prefect ships (Prefect's server
  needs an async driver named in the URL), and a PostgreSQL that cannot be reached (or a URL
  that is malformed) is reported in seconds, without the password;
- `PREFECT_SERVER_API_HOST` (Prefect's own setting, e.g. `0.0.0.0` for the workers of other
  hosts) is the address it binds, else 127.0.0.1; the URL it prints then names this host.

The server's settings live in `prefect.toml` at the project root, which Prefect reads from the
working directory, so the server is started from there.

    python -m deployments.server start [--timeout SECONDS]|stop|status|url
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import BaseModel

from tasks.net import free_port, port_is_free
from tasks.redaction import url_password, without_credentials
from tasks.worktree.models import ProcessIdentity

PROJECT_DIR = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
DEFAULT_PORT = 4200
# REACTOR_SERVER_DIR: another place for the record, home and log (tests, a second server)
STATE_DIR = Path(os.environ.get("REACTOR_SERVER_DIR") or PROJECT_DIR / ".prefect-server")
START_TIMEOUT_S = 120
DATABASE_ENV = "PREFECT_SERVER_DATABASE_CONNECTION_URL"
HOST_ENV = "PREFECT_SERVER_API_HOST"
ANY_ADDRESS = ("0.0.0.0", "::")


RECORD = "server.json"
LOG = "server.log"
HOME = "home"
# the temporary server Prefect starts for a command: its default (20 s on 3.9.1) is not enough
# on a loaded machine; the timeout is then one `error:` line (reactor/commands/_common.py)
EPHEMERAL_TIMEOUT_ENV = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
EPHEMERAL_TIMEOUT_S = 90


class ServerUnavailable(RuntimeError):
    """No usable Prefect server: the message says which one and what to do."""


@dataclass
class Server:
    api_url: str
    ui_url: str
    started_here: bool  # this checkout's (`make server`, or the demo's own)
    pid: int | None = None
    source: str = ""  # which server, for the one line a command prints


class ServerRecord(BaseModel):
    """What `make server` leaves in `.prefect-server/server.json`."""

    api_url: str  # as other hosts reach it
    local_api_url: str  # through loopback, for the health checks
    process: ProcessIdentity
    log: str


def api_problem(api_url: str, timeout_s: float = 2.0) -> str | None:
    """Why the Prefect API at `api_url` is not usable (one phrase), or None when it answers."""
    try:
        response = httpx.get(f"{api_url.rstrip('/')}/health", timeout=timeout_s)
    except httpx.ConnectError:
        return "nothing answers there (connection refused)"
    except httpx.TimeoutException:
        return f"no answer within {timeout_s:g} s"
    except (httpx.HTTPError, ValueError) as exc:  # ValueError: not a URL httpx can use
        return f"{type(exc).__name__}: {str(exc) or 'no detail'}"
    if not response.is_success:
        return f"its /health answered HTTP {response.status_code}"
    return None


def api_healthy(api_url: str, timeout_s: float = 2.0) -> bool:
    return api_problem(api_url, timeout_s) is None


def ui_url_of(api_url: str) -> str:
    """The UI beside an API URL (`…/api` → `…/`; the server sends browsers on to its UI)."""
    return api_url.rstrip("/").removesuffix("/api") + "/"


def masked(url: str) -> str:
    """`url` with its password replaced by `***` (for printing a database URL)."""
    return without_credentials(url, mask="***")


def server_database(url: str) -> str:
    """The URL Prefect's server is given: `postgresql://`/`postgres://` get Prefect's async
    driver (`postgresql+asyncpg://`); any other URL is passed as it is."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme in ("postgresql", "postgres"):
        return f"postgresql+asyncpg://{rest}"
    return url


def _scrub(text: str, url: str) -> str:
    """`text` without the password of `url`, in any spelling a driver may quote it."""
    from urllib.parse import unquote

    password = url_password(url)  # found even in a URL urlsplit cannot read
    for secret in {password, unquote(password or "")} - {None, ""}:
        text = text.replace(secret, "***")
    return text


def _where(url: str) -> str:
    """The server a database URL names, without user or password (for messages)."""
    try:
        parts = urlsplit(url)
        return f"postgresql://{parts.hostname}:{parts.port or 5432}{parts.path}"
    except ValueError:
        return "the database URL"


def check_database(url: str, timeout_s: float = 10.0) -> None:
    """Fail fast, naming the server without its password, when a PostgreSQL database URL
    cannot be reached or is malformed (Prefect's server would only stop answering)."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ServerUnavailable(f"{DATABASE_ENV} is malformed: {_scrub(str(exc), url)}") from None
    if parts.scheme.split("+")[0] not in ("postgresql", "postgres"):
        return
    import psycopg  # the project's PostgreSQL driver (the claim ledger's)

    # without the query: asyncpg's options (`?ssl=…`) are not libpq's
    dsn = urlunsplit(parts._replace(scheme="postgresql", query=""))
    try:
        psycopg.connect(dsn, connect_timeout=max(1, int(timeout_s))).close()
    except (psycopg.Error, ValueError) as exc:  # ValueError: a port that is not a number
        text = str(exc).strip()
        reason = _scrub(text.splitlines()[0] if text else type(exc).__name__, url)
        verb = "cannot reach" if isinstance(exc, psycopg.OperationalError) else "cannot use"
        raise ServerUnavailable(f"{DATABASE_ENV}: {verb} {_where(url)}: {reason}") from None


def _record_path(state_dir: Path) -> Path:
    return state_dir / RECORD


def read_record(state_dir: Path = STATE_DIR) -> ServerRecord | None:
    path = _record_path(state_dir)
    try:
        return ServerRecord.model_validate_json(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError:  # a torn or foreign file: nothing this checkout can act on
        return None


def _alive(record: ServerRecord) -> bool:
    """True while the recorded server process itself runs (not one that reused its pid)."""
    from tasks.worktree.process import is_alive

    return is_alive(record.process)


def running_server(state_dir: Path = STATE_DIR) -> Server | None:
    """The server named by PREFECT_API_URL, or the one this checkout started, if healthy."""
    if url := os.environ.get("PREFECT_API_URL"):
        if not api_healthy(url):
            return None
        return Server(url, ui_url_of(url), started_here=False, source="PREFECT_API_URL")
    record = read_record(state_dir)
    if record is None or not _alive(record) or not api_healthy(record.local_api_url):
        return None
    return Server(
        record.api_url,
        ui_url_of(record.api_url),
        started_here=True,
        pid=record.process.pid,
        source="this checkout's server (make server)",
    )


def select_server(state_dir: Path = STATE_DIR) -> Server | None:
    """The server a command uses: PREFECT_API_URL's (it must answer: ServerUnavailable
    otherwise), else this checkout's when it is up, else None (Prefect starts a temporary one
    for the command, given `EPHEMERAL_TIMEOUT_S` to come up)."""
    if url := os.environ.get("PREFECT_API_URL"):
        if problem := api_problem(url):
            raise ServerUnavailable(
                f"the Prefect API in PREFECT_API_URL ({masked(url)}) does not answer: {problem}."
                " Start that server, or unset PREFECT_API_URL to use this checkout's"
                " (make server)"
            )
        return Server(url, ui_url_of(url), started_here=False, source="PREFECT_API_URL")
    return running_server(state_dir)


def describe(server: Server | None) -> str:
    """The one line saying which server a command uses."""
    if server is None:
        return (
            "Prefect server: a temporary one for this command (start one with `make server`"
            " to keep the runs and watch them in the UI)"
        )
    return f"Prefect server: {server.source}, {masked(server.api_url)}"


def _server_env(env: Mapping[str, str] | None, state_dir: Path) -> dict[str, str]:
    """The server's environment: `env` (default: this process's) without PREFECT_API_URL,
    with its own PREFECT_HOME (unless `env` names one) and its database URL given Prefect's
    async driver."""
    out = {k: v for k, v in (os.environ if env is None else env).items() if k != "PREFECT_API_URL"}
    if env is None or "PREFECT_HOME" not in env:
        out["PREFECT_HOME"] = str(state_dir / HOME)
    if out.get(DATABASE_ENV):
        out[DATABASE_ENV] = server_database(out[DATABASE_ENV])
    return out


def _log_tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:] if line.strip())


def _wait_healthy(record: ServerRecord, timeout_s: float, log: Path) -> None:
    """Until the recorded server answers; ServerUnavailable when it exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while not api_healthy(record.local_api_url, timeout_s=2.0):
        if not _alive(record):
            tail = _log_tail(log)
            raise ServerUnavailable(
                f"the Prefect server exited while starting{': ' + tail if tail else ''}"
                f" (log: {log})"
            )
        if time.monotonic() > deadline:
            raise ServerUnavailable(
                f"the Prefect server did not answer within {timeout_s:g} s (log: {log}); "
                "run `make server` again (or `python -m deployments.server start --timeout 300`"
                " on a loaded machine)"
            )
        time.sleep(0.2)


def start_server(
    state_dir: Path = STATE_DIR,
    timeout_s: float = START_TIMEOUT_S,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
) -> Server:
    """`prefect server start` on 127.0.0.1 or `PREFECT_SERVER_API_HOST` (on `port`, else 4200
    when free, else a free port), in its own session with its own PREFECT_HOME and log,
    recorded in `state_dir`; returns once it answers. `env` replaces this process's
    environment for the server (tests)."""
    from tasks.worktree.identity import identify_spawned
    from tasks.worktree.process import stop_process

    env = _server_env(env, state_dir)
    bind = env.get(HOST_ENV) or HOST
    if env.get(DATABASE_ENV):
        check_database(env[DATABASE_ENV])
    if port is None:
        port = DEFAULT_PORT if port_is_free(DEFAULT_PORT, bind) else free_port(bind)
    elif not port_is_free(port, bind):
        raise ServerUnavailable(f"port {port} on {bind} is taken; choose another")
    # what other hosts reach it by when it listens on every address; the health checks go
    # through loopback either way
    advertised = socket.gethostname() if bind in ANY_ADDRESS else bind
    api = f"http://{advertised}:{port}/api"
    local_api = f"http://{HOST if bind in ANY_ADDRESS else bind}:{port}/api"
    if port != DEFAULT_PORT or advertised != HOST:
        env.setdefault("PREFECT_UI_API_URL", api)
    state_dir.mkdir(parents=True, exist_ok=True)
    Path(env["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    log = state_dir / LOG
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", bind,
             "--port", str(port)],
            cwd=PROJECT_DIR, env=env, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, close_fds=True, start_new_session=True,
        )  # fmt: skip
    record = ServerRecord(
        api_url=api, local_api_url=local_api, process=identify_spawned(process.pid), log=str(log)
    )
    _record_path(state_dir).write_text(record.model_dump_json(indent=2) + "\n")
    try:
        _wait_healthy(record, timeout_s, log)
    except BaseException:
        stop_process(record.process, grace_s=5)
        _record_path(state_dir).unlink(missing_ok=True)
        raise
    return Server(
        api, ui_url_of(api), started_here=True, pid=process.pid, source="this checkout's server"
    )


def forget_stale(state_dir: Path = STATE_DIR) -> str | None:
    """Remove the record of a server that no longer runs (a crash, a reboot); what was
    removed, or None. A process that took over its pid is left alone."""
    record = read_record(state_dir)
    path = _record_path(state_dir)
    if record is None:
        if path.exists():  # unreadable: not a record any command can act on
            path.unlink()
            return f"removed an unreadable {path}"
        return None
    if _alive(record):
        return None
    path.unlink(missing_ok=True)
    return f"removed a stale record: pid {record.process.pid} is no longer this checkout's server"


def ensure_server(state_dir: Path = STATE_DIR, timeout_s: float = START_TIMEOUT_S) -> Server:
    """A healthy server: PREFECT_API_URL's, one this checkout already started (waited for
    while it starts), or a new one."""
    if os.environ.get("PREFECT_API_URL"):
        server = select_server(state_dir)  # raises when it does not answer
        assert server is not None
        return server
    record = read_record(state_dir)
    if record is not None and _alive(record):
        _wait_healthy(record, timeout_s, Path(record.log))
        return running_server(state_dir) or start_server(state_dir, timeout_s)
    forget_stale(state_dir)
    return start_server(state_dir, timeout_s)


def stop_server(state_dir: Path = STATE_DIR, env: Mapping[str, str] | None = None) -> bool:
    """Stop the server this checkout started (only a process matching its record); True if
    it was running. A stale record is removed. `env` is accepted for older callers."""
    from tasks.worktree.process import stop_process

    record = read_record(state_dir)
    if record is None:
        return False
    stopped = stop_process(record.process, grace_s=10)
    _record_path(state_dir).unlink(missing_ok=True)
    return stopped


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "status"
    if command == "start":
        if not os.environ.get("PREFECT_API_URL") and (note := forget_stale()):
            print(note, file=sys.stderr)
        already = running_server()
        timeout_s = float(argv[2]) if argv[1:2] == ["--timeout"] and len(argv) > 2 else None
        try:
            server = already or ensure_server(timeout_s=timeout_s or START_TIMEOUT_S)
        except ServerUnavailable as exc:
            return _error(str(exc))
        if server.source == "PREFECT_API_URL":
            print("using the server in PREFECT_API_URL (nothing started)", file=sys.stderr)
        else:
            state = "already running" if already else "started"
            print(
                f"this checkout's Prefect server: {state} (pid {server.pid}, log {STATE_DIR / LOG})"
            )
        print(f"Prefect API {server.api_url}\nPrefect UI  {server.ui_url}")
        if server.started_here and (database := os.environ.get(DATABASE_ENV)):
            print(f"database    {masked(server_database(database))}")
        return 0
    if command == "stop":
        record = read_record()
        if record is None:
            note = forget_stale()  # an unreadable record
            print(note or "no server started by this checkout is running")
        elif stop_server():
            print(f"stopped this checkout's Prefect server (pid {record.process.pid})")
        else:
            print(f"removed a stale record: pid {record.process.pid} was not this checkout's"
                  " server any more (nothing signalled)")  # fmt: skip
        return 0
    if command == "url":  # for make targets: the API URL to use (stdout) and which (stderr)
        try:
            server = select_server()
        except ServerUnavailable as exc:
            return _error(str(exc))
        if server is None:
            return _error("no Prefect server for this checkout: run `make server` (or set"
                          " PREFECT_API_URL to a running one)")  # fmt: skip
        print(describe(server), file=sys.stderr)
        print(server.api_url)
        return 0
    if command == "status":
        server = running_server()
        print(f"running: {server.api_url} (UI {server.ui_url})" if server else "not running")
        return 0 if server else 1
    print("usage: python -m deployments.server start|stop|status|url", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
