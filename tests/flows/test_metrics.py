"""Metrics an operator can scrape: a process worker (`deployments/worker.py`) serves the Prometheus
endpoint, runs a real deployment run of the SPR flow in a subprocess, and the scrape over real
HTTP shows the rows that run exported, pushed by the flow-run process before it exited."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pandas as pd
import pytest
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL
from prometheus_client.parser import text_string_to_metric_families

from deployments.deploy import PROJECT_DIR, ensure_work_pool
from tests.loopback import free_port

REQUEST = {
    "paths": ["samples/spr"],
    "formats": ["standard"],
    "export_formats": ["parquet", "csv"],
    "compressor": "extractive",
}


def _scrape(url: str) -> dict[tuple[str, tuple], float]:
    text = httpx.get(url, timeout=5).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _wait_for(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


async def _final_state(flow_run_id):
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        return (await client.read_flow_run(flow_run_id)).state


@pytest.fixture
def deployment() -> str:
    """The SPR flow deployed from this checkout to a work pool of this test's own."""
    from flows.spr_pipeline import spr_pipeline

    pool = f"reactor-metrics-{uuid.uuid4().hex[:8]}"
    asyncio.run(ensure_work_pool(pool))
    flow = spr_pipeline.from_source(PROJECT_DIR, "flows/spr_pipeline.py:spr_pipeline")
    flow.deploy(
        name="metrics-check",
        work_pool_name=pool,
        parameters={"request": REQUEST},
        build=False,
        push=False,
        print_next_steps=False,
    )
    return pool


@pytest.fixture
def worker(deployment, tmp_path):
    """`python -m deployments.worker` on the deployment's pool, serving metrics on a free port."""
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "REACTOR_METRICS_PORT": str(port),
        # poll every second, not every 10 s: the run is created once the metrics endpoint is
        # up, which can be just after the worker's first poll
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "REACTOR_EXPORTS_DIR": str(tmp_path / "exports"),
        "REACTOR_COORDINATION_DIR": str(tmp_path / "coordination"),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    env.pop("REACTOR_METRICS_PUSH_URL", None)
    log = (tmp_path / "worker.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "deployments.worker", "--pool", deployment],
        cwd=PROJECT_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:

        def up() -> bool:
            assert proc.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            try:
                return httpx.get(url, timeout=2).is_success
            except httpx.HTTPError:
                return False

        _wait_for(up, 240, "the worker's metrics endpoint")
        yield url, tmp_path / "exports", proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.mark.timeout(900)  # a worker, a deployment run in a subprocess: minutes on loaded cores
def test_worker_endpoint_shows_metrics_pushed_by_its_flow_runs(worker):
    url, exports, proc = worker
    run = run_deployment("spr-pipeline/metrics-check", timeout=0)

    def finished():
        assert proc.poll() is None, "the worker exited"
        state = asyncio.run(_final_state(run.id))
        return state if state.is_final() else None

    assert _wait_for(finished, 300, "the deployment run").is_completed()
    frame = pd.read_parquet(exports / "parquet" / "spr_results")
    rows = int((frame["run_id"] == str(run.id)).sum())
    assert rows > 0
    key = ("reactor_export_rows_total", (("dataset", "spr_results"), ("format", "parquet")))
    samples = _wait_for(
        lambda: (s := _scrape(url)).get(key) and s, 60, "the flow run's pushed metrics"
    )
    assert samples[key] == rows
    csv = ("reactor_export_rows_total", (("dataset", "spr_results"), ("format", "csv")))
    assert samples[csv] == rows


def test_every_instrument_is_recorded_by_the_code():
    """No documented instrument stays at zero for ever: each one `tasks/metrics.py` makes is
    recorded (`metrics.<name>.add|record`) by the project's own code."""
    import ast

    from opentelemetry.metrics import Counter, Histogram

    from tasks import metrics

    instruments = {
        name for name, value in vars(metrics).items() if isinstance(value, Counter | Histogram)
    }
    assert {"export_rows", "restarts", "trace_fallbacks"} <= instruments
    recorded = set()
    root = Path(__file__).resolve().parents[2]
    for package in ("tasks", "flows", "deployments", "reactor"):
        for path in (root / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                target = node.func if isinstance(node, ast.Call) else None
                if (
                    isinstance(target, ast.Attribute)
                    and target.attr in ("add", "record")
                    and isinstance(target.value, ast.Attribute)
                    and isinstance(target.value.value, ast.Name)
                    and target.value.value.id == "metrics"
                ):
                    recorded.add(target.value.attr)
    assert instruments - recorded == set()
