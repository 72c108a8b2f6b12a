"""`make server`'s database URL: the driver Prefect's server needs, and a database that cannot be
reached reported at once, named without its password (a real server start on PostgreSQL is in
tests/flows/test_two_hosts.py)."""

from __future__ import annotations

import pytest

from deployments import server as local
from tests.loopback import free_port


def test_a_plain_postgresql_url_gets_prefects_async_driver():
    url = "postgresql://prefect:s3cret@db:5432/prefect"
    assert local.server_database(url) == "postgresql+asyncpg://prefect:s3cret@db:5432/prefect"
    assert (
        local.server_database("postgres://p:x@db/prefect") == "postgresql+asyncpg://p:x@db/prefect"
    )
    for unchanged in ("postgresql+asyncpg://p:x@db/prefect", "sqlite+aiosqlite:///tmp/p.db"):
        assert local.server_database(unchanged) == unchanged


def test_an_unreachable_server_database_is_named_without_its_password():
    port = free_port()  # nothing listens there
    url = f"postgresql+asyncpg://prefect:s3cret-pw@127.0.0.1:{port}/prefect?ssl=disable"
    with pytest.raises(RuntimeError) as raised:
        local.check_database(url, timeout_s=5)
    message = str(raised.value)
    assert f"cannot reach postgresql://127.0.0.1:{port}/prefect" in message
    assert local.DATABASE_ENV in message and "s3cret-pw" not in message


def test_a_sqlite_server_database_is_not_probed(tmp_path):
    local.check_database(f"sqlite+aiosqlite:///{tmp_path}/missing-dir/prefect.db")  # no error
