"""PostgreSQL connections for the shared coordination state (ledger, coordination log, agent
registry): one `psycopg_pool.ConnectionPool` per process and DSN, the schema migrated on first
use, every pool closed at exit.

The DSN carries the password, so it never appears in a message: errors name the store by
`host:port/database` (`describe`) and any text from the driver is scrubbed of the DSN and the
password before it is raised. Pure module (no Prefect).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from tasks.errors import StoreUnavailable

CONNECT_TIMEOUT_S = 10
POOL_MAX_SIZE = 4  # per process: a worker's task threads plus a heartbeat
_pools: dict[tuple[int, str], Any] = {}
_lock = threading.Lock()


def describe(dsn: str) -> str:
    """`postgresql://host:port/db` without user or password, for messages."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        info = conninfo_to_dict(dsn)
    except Exception:
        parts = urlsplit(dsn)
        info = {"host": parts.hostname, "port": parts.port, "dbname": parts.path.lstrip("/")}
    host = info.get("host") or "localhost"
    return f"postgresql://{host}:{info.get('port') or 5432}/{info.get('dbname') or ''}"


def scrub(text: str, dsn: str) -> str:
    """`text` without the DSN or its password."""
    secrets = [dsn]
    with contextlib.suppress(Exception):
        from psycopg.conninfo import conninfo_to_dict

        password = conninfo_to_dict(dsn).get("password")
        if password:
            secrets.append(str(password))
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "[REDACTED]")
    return text


def unavailable(dsn: str, exc: BaseException, doing: str = "reach") -> StoreUnavailable:
    detail = scrub(" ".join(str(exc).split()), dsn)
    return StoreUnavailable(
        f"cannot {doing} the PostgreSQL coordination database {describe(dsn)} ({detail}); "
        "check REACTOR_DATABASE_URL and that the server is up"
    )


def pool(dsn: str):
    """The process's pool for `dsn`, created (and the schema migrated) on first use."""
    key = (os.getpid(), dsn)
    found = _pools.get(key)
    if found is not None:
        return found
    with _lock:
        found = _pools.get(key)
        if found is None:
            found = _pools[key] = _open_pool(dsn)
        return found


def _open_pool(dsn: str):
    import psycopg
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool

    from tasks.claims.schema import migrate_postgres

    # one direct connection first: a wrong URL or a down server fails now, in one line,
    # instead of the pool retrying in the background until its timeout
    try:
        with psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True) as conn:
            migrate_postgres(conn, where=describe(dsn))
    except psycopg.Error as exc:
        raise unavailable(dsn, exc) from None
    return ConnectionPool(
        dsn,
        min_size=1,
        max_size=POOL_MAX_SIZE,
        kwargs={"autocommit": True, "row_factory": dict_row, "connect_timeout": CONNECT_TIMEOUT_S},
        open=True,
        name=describe(dsn),
    )


@contextlib.contextmanager
def connection(dsn: str) -> Iterator[Any]:
    """A pooled autocommit connection (dict rows); driver errors about the connection become
    `StoreUnavailable` naming the store."""
    import psycopg
    from psycopg_pool import PoolTimeout

    try:
        with pool(dsn).connection() as conn:
            yield conn
    except psycopg.errors.TransactionRollback:
        raise  # a serialization failure or deadlock: the statement's, not the connection's
    except (psycopg.OperationalError, PoolTimeout) as exc:
        raise unavailable(dsn, exc, "use") from None


def close_pools(dsn: str | None = None) -> None:
    """Close this process's pools (for `dsn` only, when given)."""
    with _lock:
        for key in list(_pools):
            pid, pool_dsn = key
            if pid == os.getpid() and (dsn is None or pool_dsn == dsn):
                _pools.pop(key).close()


atexit.register(close_pools)
