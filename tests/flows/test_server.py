"""The server settings live in prefect.toml, once: the session's test server runs with them, and
`deployments.server` (behind `make server`) starts a real server that reads them, passes a
database URL through and points the UI at its API when it is not on 127.0.0.1:4200."""

from __future__ import annotations

import tomllib

import httpx
import pytest
from prefect.settings import PREFECT_API_URL

from deployments import server as local
from tests.loopback import free_port

TOML = tomllib.loads((local.PROJECT_DIR / "prefect.toml").read_text())


def _expected(settings: dict) -> None:
    server = TOML["server"]
    assert settings["server"]["analytics_enabled"] == server["analytics_enabled"]
    recorder = settings["server"]["services"]["task_run_recorder"]
    for key, value in server["services"]["task_run_recorder"].items():
        assert recorder[key] == value, key


def test_test_server_runs_with_the_prefect_toml_settings():
    settings = httpx.get(f"{PREFECT_API_URL.value()}/admin/settings", timeout=10).json()
    _expected(settings)


@pytest.fixture
def started(tmp_path, monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "home"))
    database = tmp_path / "server.db"
    monkeypatch.setenv(local.DATABASE_ENV, f"sqlite+aiosqlite:///{database}")
    state = tmp_path / "state"
    server = local.start_server(state, timeout_s=300, port=free_port())
    try:
        yield server, state, database
    finally:
        local.stop_server(state)


@pytest.mark.timeout(900)  # a second real server start: minutes on loaded cores
def test_make_server_reads_prefect_toml_and_passes_the_database_through(started):
    server, state, database = started
    assert server.started_here and local.running_server(state).api_url == server.api_url
    settings = httpx.get(f"{server.api_url}/admin/settings", timeout=10).json()
    _expected(settings)
    assert database.exists(), "the server did not use PREFECT_SERVER_DATABASE_CONNECTION_URL"
    assert settings["server"]["ui"]["api_url"] == server.api_url  # not on :4200
    assert local.stop_server(state)
    assert local.running_server(state) is None and not local.api_healthy(server.api_url)


def test_a_database_password_is_masked():
    url = "postgresql+asyncpg://prefect:s3cret@db:5432/prefect"
    assert local.masked(url) == "postgresql+asyncpg://prefect:***@db:5432/prefect"
