"""A throwaway PostgreSQL server for the test session (and the ledger bench).

`REACTOR_TEST_DATABASE_URL` names an existing server to use instead (its user needs CREATEDB).
Otherwise `ThrowawayPostgres` runs `initdb` in a temp dir (as the `postgres` user when we are
root), starts the server on a free 127.0.0.1 port with `pg_ctl -w start`, and on `stop()` — or
at interpreter exit, whichever comes first — stops it and removes the directory. fsync is off:
nothing in a test needs to survive an OS crash.

`fresh_database(url)` creates an empty database for one test and `drop_database` removes it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from deployments.postgres import LocalPostgres
from tasks.ids import next_ns

ENV_URL = "REACTOR_TEST_DATABASE_URL"


class ThrowawayPostgres:
    def __init__(self, durable: bool = False) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="reactor-pg-"))
        self.server = LocalPostgres(self.root, durable=durable)
        self._stopped = False
        atexit.register(self.stop)

    def start(self) -> str:
        try:
            return self.server.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        with contextlib.suppress(Exception):
            self.server.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def fresh_database(url: str, prefix: str = "reactor_test") -> str:
    """Create an empty database on the server of `url`; returns its URL."""
    import psycopg

    name = f"{prefix}_{next_ns()}_{os.getpid()}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    return with_database(url, name)


def drop_database(url: str, admin_url: str) -> None:
    """Drop the database of `url` (closing this process's pools to it first)."""
    import psycopg

    from tasks.claims.pg import close_pools

    close_pools(url)
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
