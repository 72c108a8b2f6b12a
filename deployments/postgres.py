"""A local PostgreSQL server for trying the multi-host mode on one machine (and for the tests).

    python -m deployments.postgres start   # (make postgres) init if needed, start, print URL
    python -m deployments.postgres url     # print the URL of the running server (exit 1 if none)
    python -m deployments.postgres stop    # stop it (the data stays in .reactor/postgres)

It uses the PostgreSQL binaries of the machine (`initdb`/`pg_ctl` on PATH, else Debian's
`/usr/lib/postgresql/<version>/bin`). PostgreSQL refuses to run as root, so as root the cluster
is owned by and run as the `postgres` user. The server listens on 127.0.0.1 only, on a free
port, with a generated password for the `reactor` superuser (scram-sha-256 over TCP).
Export the URL it prints as `REACTOR_DATABASE_URL` on every worker.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from deployments import local_service
from deployments.local_service import LocalService
from tasks.net import free_port, port_is_free

HOST = "127.0.0.1"
USER = "reactor"
STATE_DIR = Path(".reactor/postgres")
SYSTEM_USER = "postgres"  # who runs the server when we are root


class PostgresNotInstalled(RuntimeError):
    pass


def find_bin(name: str) -> Path:
    """A PostgreSQL program: on PATH, else the newest /usr/lib/postgresql/<v>/bin."""
    found = shutil.which(name)
    if found:
        return Path(found)
    versions = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1]
    raise PostgresNotInstalled(
        f"PostgreSQL's {name} was not found (PATH, /usr/lib/postgresql/*/bin); install it "
        "(Debian/Ubuntu: apt-get install -y postgresql) or set REACTOR_TEST_DATABASE_URL"
    )


def _as_root() -> bool:
    return os.geteuid() == 0


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run a PostgreSQL program, as `postgres` when we are root."""
    if _as_root():
        args = ["runuser", "-u", SYSTEM_USER, "--", *args]
    return subprocess.run(args, check=True, capture_output=True, text=True, **kwargs)


def _chown(path: Path) -> None:
    if _as_root():
        shutil.chown(path, SYSTEM_USER, SYSTEM_USER)


@dataclass
class LocalPostgres(LocalService):
    """A PostgreSQL cluster in `root` (data/, its socket dir, its log and a state file with the
    port and password). `durable=False` turns fsync off: for throwaway test servers only."""

    durable: bool = True
    settings: dict[str, str] = field(default_factory=dict)

    show_command: ClassVar[str] = "url"
    not_running: ClassVar[str] = "no PostgreSQL running: run 'make postgres'"

    def address(self) -> str:
        return self.url()

    def show(self) -> str:
        return self.url()

    def announce(self) -> None:
        print(self.url())
        print(f"export REACTOR_DATABASE_URL='{self.url()}'", file=sys.stderr)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        s = self.state()
        return f"postgresql://{USER}:{s['password']}@{HOST}:{s['port']}/{database}"

    def initialised(self) -> bool:
        return (self.data / "PG_VERSION").exists() and self.state_file.exists()

    def init(self) -> None:
        """initdb with a generated password; listen on 127.0.0.1 only."""
        self.make_root()
        _chown(self.root)
        password = secrets.token_urlsafe(18)
        pwfile = self.root / "pwfile"
        pwfile.write_text(password + "\n")
        _chown(pwfile)
        try:
            _run([
                str(find_bin("initdb")), "-D", str(self.data), "-U", USER,
                f"--pwfile={pwfile}", "--auth-local=trust", "--auth-host=scram-sha-256",
                "-E", "UTF8", "--locale=C", "--no-sync",
            ])  # fmt: skip
        finally:
            pwfile.unlink(missing_ok=True)
        conf = {
            "listen_addresses": f"'{HOST}'",
            "unix_socket_directories": f"'{self.root}'",
            "max_connections": "200",
            **({} if self.durable else {"fsync": "off", "synchronous_commit": "off",
                                         "full_page_writes": "off"}),
            **self.settings,
        }  # fmt: skip
        with open(self.data / "postgresql.conf", "a", encoding="utf-8") as fh:
            fh.write("\n# reactor-flows\n")
            fh.writelines(f"{k} = {v}\n" for k, v in conf.items())
        self.save_state({"password": password, "port": free_port(HOST), "durable": self.durable})

    def running(self) -> bool:
        if not self.initialised():
            return False
        done = subprocess.run(
            _wrap([str(find_bin("pg_ctl")), "-D", str(self.data), "status"]),
            capture_output=True,
            text=True,
        )
        return done.returncode == 0

    def start(self, timeout_s: int = 60) -> str:
        """Start it (initialising first if needed) and return its URL."""
        if not self.initialised():
            self.init()
        if self.running():
            return self.url()
        state = self.state()
        if not port_is_free(state["port"], HOST):
            state["port"] = free_port(HOST)
            self.save_state(state)
        self.log.touch()
        _chown(self.log)
        try:
            _run([
                str(find_bin("pg_ctl")), "-D", str(self.data), "-l", str(self.log),
                "-w", "-t", str(timeout_s), "-o", f"-p {state['port']}", "start",
            ])  # fmt: skip
        except subprocess.CalledProcessError as exc:
            tail = self.log_tail()
            raise RuntimeError(f"PostgreSQL did not start: {exc.stderr.strip()}\n{tail}") from None
        _wait_accepting(state["port"], timeout_s)
        return self.url()

    def stop(self) -> None:
        if self.running():
            _run([str(find_bin("pg_ctl")), "-D", str(self.data), "-m", "fast", "-w", "stop"])


def _wrap(args: list[str]) -> list[str]:
    return ["runuser", "-u", SYSTEM_USER, "--", *args] if _as_root() else args


def _wait_accepting(port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"PostgreSQL is not accepting connections on {HOST}:{port}")


def main(argv: list[str] | None = None) -> int:
    errors = (PostgresNotInstalled, RuntimeError, subprocess.CalledProcessError)
    return local_service.main(LocalPostgres, argv, __doc__.splitlines()[0], STATE_DIR, errors)


if __name__ == "__main__":
    raise SystemExit(main())
