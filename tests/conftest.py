"""Test setup shared by every test.

The Prefect server settings come from `prefect.toml` at the repository root, which Prefect reads
from the working directory: the session runs from there whatever directory pytest was started
in (tests/flows/test_server.py checks that the test server has them). Flow tests use the one
session-wide `prefect_test_harness` (starting it costs ~15 s) through the `prefect_server`
fixture; tests/flows/ requests it for every test automatically.
"""

from __future__ import annotations

import os
from pathlib import Path

os.chdir(Path(__file__).resolve().parent.parent)  # before Prefect reads its settings
# INFO: the flows tell their story at INFO and tests read those lines back from the server
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
# the tests configure these themselves: a user's own key, collector, webhook (their real alert
# channel) or metrics endpoint must never be reached from a test
for _name in (
    "ANTHROPIC_API_KEY",
    "REACTOR_ANTHROPIC_API_KEY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "REACTOR_ALERT_WEBHOOK_URL",
    "REACTOR_METRICS_PORT",
    "REACTOR_METRICS_PUSH_URL",
):
    os.environ.pop(_name, None)

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def prefect_server():
    """One Prefect test server for the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def reactor_env(tmp_path, monkeypatch):
    """Coordination and exports dirs of this test's own."""
    coordination = tmp_path / "coordination"
    exports = tmp_path / "exports"
    monkeypatch.setenv("REACTOR_COORDINATION_DIR", str(coordination))
    monkeypatch.setenv("REACTOR_EXPORTS_DIR", str(exports))
    from tasks.settings import get_settings

    return get_settings()
