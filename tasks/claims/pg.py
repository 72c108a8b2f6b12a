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
import re
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

from tasks.errors import StoreUnavailable

CONNECT_TIMEOUT_S = 10
POOL_MAX_SIZE = 4  # per process: a worker's task threads plus a heartbeat
_pools: dict[tuple[int, str], Any] = {}
_lock = threading.Lock()


def describe(dsn: str) -> str:
    """`postgresql://host:port/db` without user or password, for messages (`?` for a part a
    malformed DSN does not give)."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        info = conninfo_to_dict(dsn)
    except Exception:
        info = _url_parts(dsn)
    host = info.get("host") or "localhost"
    where = f"postgresql://{host}:{info.get('port') or 5432}/{info.get('dbname') or '?'}"
    return scrub(where, dsn)


_PLAIN = re.compile(r"[A-Za-z0-9_.:\[\]-]+")


def _url_parts(dsn: str) -> dict[str, str]:
    """Host, port and database of a URL the driver rejects, each only where it reads as one
    (a malformed URL can put part of its password where the host or path would be)."""
    found: dict[str, str] = {}
    with contextlib.suppress(ValueError):
        parts = urlsplit(dsn)
        if parts.scheme not in ("postgres", "postgresql"):
            return {}
        found = {"host": parts.hostname or "", "dbname": parts.path.lstrip("/")}
        found["port"] = str(parts.port or "")
    return {k: v for k, v in found.items() if _PLAIN.fullmatch(v)}


# `password=value` or `password='quoted value'` in a key/value conninfo string
_CONNINFO_PASSWORD = re.compile(r"password\s*=\s*('(?:[^'\\]|\\.)*'?|\S+)", re.I)


def dsn_secrets(dsn: str) -> list[str]:
    """The DSN and every form of its password it might be quoted in (as parsed by the driver,
    as written in the URL, percent-decoded), longest first. Parsed three ways, so that a DSN
    the driver rejects (a bad percent-escape, an unterminated quote) is still covered."""
    found = {dsn}
    with contextlib.suppress(Exception):
        from psycopg.conninfo import conninfo_to_dict

        found.add(str(conninfo_to_dict(dsn).get("password") or ""))
    with contextlib.suppress(ValueError):
        raw = urlsplit(dsn).password or ""
        found.update({raw, unquote(raw)})
    for match in _CONNINFO_PASSWORD.finditer(dsn):
        found.update({match.group(1), match.group(1).strip("'")})
    return sorted((s for s in found if s), key=len, reverse=True)


def scrub(text: str, dsn: str) -> str:
    """`text` without the DSN or its password."""
    for secret in dsn_secrets(dsn):
        text = text.replace(secret, "[REDACTED]")
    return text


def _parses(dsn: str) -> bool:
    try:
        from psycopg.conninfo import conninfo_to_dict

        conninfo_to_dict(dsn)
    except Exception:
        return False
    return True


def unavailable(dsn: str, exc: BaseException, doing: str = "reach") -> StoreUnavailable:
    detail = scrub(" ".join(str(exc).split()), dsn)
    if not _parses(dsn):  # the driver quotes the token it rejects: maybe a piece of the password
        detail = re.sub(r'"[^"]*"', '"..."', detail)
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
    except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout) as exc:
        raise unavailable(dsn, exc, "use") from None


def close_pools(dsn: str | None = None) -> None:
    """Close this process's pools (for `dsn` only, when given)."""
    with _lock:
        for key in list(_pools):
            pid, pool_dsn = key
            if pid == os.getpid() and (dsn is None or pool_dsn == dsn):
                _pools.pop(key).close()


atexit.register(close_pools)
