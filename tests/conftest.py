"""Test setup shared by every test.

Prefect server settings are set before Prefect is imported anywhere (analytics off avoids
"database is locked"; recorder batches of 100 keep task-run history). Flow tests use the one
session-wide `prefect_test_harness` (starting it costs ~15 s) through the `prefect_server`
fixture; tests/flows/ requests it for every test automatically.
"""

from __future__ import annotations

import os

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE", "100")
os.environ.setdefault("PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_READ_BATCH_SIZE", "100")
# INFO: the flows tell their story at INFO and tests read those lines back from the server
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
for _name in ("ANTHROPIC_API_KEY", "REACTOR_ANTHROPIC_API_KEY", "OTEL_EXPORTER_OTLP_ENDPOINT"):
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
