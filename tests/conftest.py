"""Test setup shared by every test.

The Prefect server settings come from `prefect.toml` at the repository root, which Prefect reads
from the working directory: the session runs from there whatever directory pytest was started
in (tests/flows/test_server.py checks that the test server has them). Flow tests use the one
session-wide Prefect test server (≈ 6 s of CPU to start on a copy of a migrated database,
tests/prefect_server.py) through the `prefect_server` fixture; tests/flows/ requests it for
every test automatically.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
from pathlib import Path

os.chdir(Path(__file__).resolve().parent.parent)  # before Prefect reads its settings
# INFO: the flows tell their story at INFO and tests read those lines back from the server
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
# every Prefect API client parses this CA file (certifi's bundle by default: ~20 ms of CPU per
# client, 1,283 clients and 32 s in a full run); the tests' servers are plain http on loopback
os.environ["PREFECT_API_SSL_CERT_FILE"] = str(Path(__file__).with_name("untrusted-ca.pem"))
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
    "REACTOR_DATABASE_URL",  # a user's shared database: the pg fixtures give tests their own
):
    os.environ.pop(_name, None)

import pytest  # noqa: E402

# fixture -> the marker of the server a test needs (`make test-quick` deselects these)
SERVER_MARKS = {
    "prefect_server": "prefect_server",
    "pg_url": "postgres",
    "s3_server": "objectstore",
}
# Tests (or whole files) measured at 10-200 s each in a full run (docs/testing.md): minute-long
# scenarios and tests that spawn processes importing the whole project. Marked `slow` here, in
# one place: `make test-quick` leaves them out.
SLOW = {
    "tests/flows/test_two_hosts.py",
    "tests/unit/test_purity.py::test_no_module_but_the_edge_imports_prefect",
    "tests/unit/test_cli_imports.py",
    "tests/unit/test_metrics_endpoint.py::test_a_bad_metrics_port_is_one_error_line",
    "tests/unit/test_store.py::test_8_processes_x_200_increments_lose_nothing",
    "tests/unit/worktree/test_metrics.py::test_health_checks_restarts_and_time_to_healthy_are_recorded",
    "tests/unit/test_otlp_metrics.py::test_metrics_reach_an_otlp_http_collector",
    "tests/unit/test_otlp.py::test_spans_reach_an_otlp_http_collector",
    "tests/unit/test_ids.py::test_no_collisions_across_8_processes_x_100k",
    "tests/contract/test_ledger.py::test_eight_processes_claim_every_item_exactly_once",
    "tests/unit/worktree/test_registry.py::test_two_processes_allocating_at_once_never_get_the_same_port",
    "tests/unit/swarm/test_execution.py::test_completed_item_is_logged_with_its_fields_and_counted",
    "tests/unit/swarm/test_handlers.py::test_shutting_down_the_pools_leaves_no_process_behind",
    "tests/unit/swarm/test_handlers.py::test_every_attempt_is_recorded_in_the_handler_duration_metric",
}


# Seconds each file took in a full run (bench/test_durations.py --write): `make test` hands the
# files to its workers longest first, so that no long file starts late and runs alone at the end.
DURATIONS = json.loads((Path(__file__).parent / "durations.json").read_text())
UNMEASURED_S = sum(DURATIONS.values()) / len(DURATIONS)  # a new file: the mean, as pytest-split


def pytest_collection_modifyitems(config, items):
    """Mark each test with the servers its fixtures start, and order the files longest first
    (by DURATIONS; stable otherwise)."""
    for item in items:
        for fixture, mark in SERVER_MARKS.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(mark)
        test = item.nodeid.split("[")[0]
        if test in SLOW or test.split("::")[0] in SLOW:
            item.add_marker("slow")
    items.sort(key=lambda item: -DURATIONS.get(item.nodeid.split("::")[0], UNMEASURED_S))


_early_server = None  # the session's Prefect server (tests/prefect_server.py), once launched


def _launch_prefect_server(config) -> None:
    global _early_server
    if config.option.collectonly:
        return
    if _early_server is None:
        from tests.prefect_server import EarlyServer, template_path

        _early_server = EarlyServer(template_path(config))
    else:
        _early_server.launch(wait=False)  # once the template is built


def pytest_configure(config):
    """A run that will start Prefect test servers (xdist's workers start one each) has a
    migrated database built for them once, unless pytest's cache already has it."""
    option = config.option
    worker = hasattr(config, "workerinput")
    flows = Path(__file__).parent / "flows"
    paths = [(config.invocation_params.dir / a.split("::")[0]).resolve() for a in config.args]
    selected = any(flows.is_relative_to(p) or p.is_relative_to(flows) for p in paths)
    if selected and not (worker or option.collectonly or option.markexpr or option.keyword):
        from tests.prefect_server import build_template, template_path

        if (path := template_path(config)) is not None:
            build_template(path)


def pytest_collect_file(file_path, parent):
    """Launch the Prefect test server before the first test module of tests/flows/ (each of
    whose tests uses it) is imported, so its start-up overlaps the imports and the rest of
    collection (with -m/-k, once the selection is known); once its database template is
    built, when that is still being built."""
    option = parent.config.option
    in_flows = file_path.parent == Path(__file__).parent / "flows"
    if in_flows and file_path.name.startswith("test_") and not (option.markexpr or option.keyword):
        _launch_prefect_server(parent.config)


def pytest_collection_finish(session):
    # What collection imported (≈ 266,000 objects) lives as long as the process: frozen, no
    # full collection walks it again, and forked children share its pages; and collections
    # run less often. Together they cut the collector's time in a worker from
    # 3.8 s to 1.6 s of its 30 s in tests/flows/test_datasets.py, test_spr_pipeline.py,
    # unit/claims and contract/test_ledger_hardening.py (measured with gc.callbacks).
    gc.freeze()
    gc.set_threshold(5000, 20, 20)  # CPython's default is (700, 10, 10)
    if any("prefect_server" in getattr(item, "fixturenames", ()) for item in session.items):
        _launch_prefect_server(session.config)


@pytest.fixture(scope="session")
def prefect_server():
    """One Prefect test server for the session (of each pytest-xdist worker: a server of its
    own keeps one worker's runs, deployments and automations out of another's queries)."""
    from tests.prefect_server import harness

    # seconds on a quiet machine; over 120 s measured with 2-3 starting at once at load 20-25
    # (before the migrated-database copy)
    with harness(_early_server, timeout_s=300):
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


@contextlib.contextmanager
def _started(server):
    """What `server.start()` returns; the server stopped afterwards even when tests fail."""
    try:
        yield server.start()
    finally:
        server.stop()


# -- PostgreSQL (the shared coordination backend) -------------------------------------------------
@pytest.fixture(scope="session")
def pg_url():
    """A PostgreSQL server for the session: REACTOR_TEST_DATABASE_URL, else a throwaway one
    (tests/postgres.py), stopped and removed at the end even when tests fail."""
    from tests.postgres import ENV_URL, ThrowawayPostgres

    if os.environ.get(ENV_URL):
        yield os.environ[ENV_URL]
        return
    with _started(ThrowawayPostgres()) as url:
        yield url


@pytest.fixture
def pg_database(pg_url):
    """A fresh, empty database of this test's own (dropped afterwards)."""
    from tests.postgres import drop_database, fresh_database

    url = fresh_database(pg_url)
    yield url
    drop_database(url, pg_url)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_settings(request, tmp_path):
    """Settings for one ledger backend: SQLite in a temp coordination dir, or PostgreSQL in a
    fresh database (with the same temp dir for work_claims.json)."""
    from tasks.settings import Settings

    coordination = tmp_path / "coordination"
    url = request.getfixturevalue("pg_database") if request.param == "postgres" else None
    return Settings(coordination_dir=coordination, database_url=url)


@pytest.fixture
def ledger(ledger_settings):
    """The ledger of `ledger_settings`' backend, closed afterwards."""
    from tasks.claims import open_ledger

    with open_ledger(ledger_settings) as opened:
        yield opened


# -- S3 (the shared object store for datasets and task results) ----------------------------------
@pytest.fixture(scope="session")
def s3_server():
    """One SeaweedFS S3 server on loopback for the session (tests/objectstore.py), stopped and
    removed at the end even when tests fail."""
    from tests.objectstore import S3Server

    with _started(S3Server()) as server:
        yield server


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    """The session's S3 server in this test's environment, with an empty bucket of the test's
    own; returns the bucket name."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return s3_server.fresh_bucket()
