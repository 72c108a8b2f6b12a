"""The server settings live in prefect.toml, once: the session's test server runs with them.
`deployments.server` (behind `make server`) starting a real server that reads them, passes a
database URL through, points the UI at its API when it is not on 127.0.0.1:4200 and stops is
checked on the one it starts on PostgreSQL (tests/flows/test_two_hosts.py): a second server
start here cost 45 s of a full run."""

from __future__ import annotations

import tomllib

import httpx
from prefect.settings import PREFECT_API_URL

from deployments import server as local

TOML = tomllib.loads((local.PROJECT_DIR / "prefect.toml").read_text())


def expect_prefect_toml_settings(settings: dict) -> None:
    server = TOML["server"]
    assert settings["server"]["analytics_enabled"] == server["analytics_enabled"]
    recorder = settings["server"]["services"]["task_run_recorder"]
    for key, value in server["services"]["task_run_recorder"].items():
        assert recorder[key] == value, key


def test_test_server_runs_with_the_prefect_toml_settings():
    settings = httpx.get(f"{PREFECT_API_URL.value()}/admin/settings", timeout=10).json()
    expect_prefect_toml_settings(settings)


def test_a_database_password_is_masked():
    url = "postgresql+asyncpg://prefect:s3cret@db:5432/prefect"
    assert local.masked(url) == "postgresql+asyncpg://prefect:***@db:5432/prefect"
