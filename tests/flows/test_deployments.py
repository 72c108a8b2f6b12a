"""prefect.yaml against a real server: every deployment registers with its schedule, the alert
automations are applied with it, a run of the SPR deployment is picked up by a process
worker, completes and writes its datasets, and `make serve` after `make deploy` (the README's
order) runs its own deployments without touching the deployed ones."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL

from deployments.deploy import PROJECT_DIR, list_deployments

DEFINITIONS = yaml.safe_load((PROJECT_DIR / "prefect.yaml").read_text())["deployments"]


def _expected_schedule(entry: dict) -> list[str]:
    out = []
    for s in entry.get("schedules") or []:
        out.append(f"cron {s['cron']}" if "cron" in s else f"every {s['interval']:g} s")
    return out


@pytest.fixture(scope="module")
def deployed():
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    done = subprocess.run(
        [sys.executable, "-m", "deployments.deploy"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return asyncio.run(list_deployments())


@pytest.mark.timeout(900)  # includes `make deploy` of every deployment: minutes on loaded cores
def test_every_deployment_registers_with_its_schedule(deployed):
    by_name = {d.name.split("/", 1)[1]: d for d in deployed}
    # the session's server also holds the deployments other test files made (health monitor's)
    assert {e["name"] for e in DEFINITIONS} <= set(by_name)
    for entry in DEFINITIONS:
        got = by_name[entry["name"]]
        assert got.schedules == _expected_schedule(entry), entry["name"]
        assert got.work_pool == "reactor-process"
        assert got.enforce_parameter_schema
    assert by_name["health-monitor"].schedules == ["every 30 s"]


def test_deploy_applies_each_alert_automation_once(deployed):
    from prefect.client.orchestration import get_client

    from deployments.automations import UNCONFIGURED, load_specs

    async def by_name():
        async with get_client() as client:
            names = [s["name"] for s in load_specs()]
            return {n: await client.read_automations_by_name(n) for n in names}

    found = asyncio.run(by_name())
    for name, automations in found.items():
        assert len(automations) == 1, name
        # no REACTOR_ALERT_WEBHOOK_URL in the tests: the automation says where to set one
        assert automations[0].description.endswith(UNCONFIGURED), name


@pytest.mark.timeout(900)
def test_spr_deployment_run_is_picked_up_by_a_worker_and_exports(deployed, tmp_path):
    run = run_deployment("spr-pipeline/spr-nightly", timeout=0)
    env = {
        **os.environ,
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "REACTOR_EXPORTS_DIR": str(tmp_path / "exports"),
        "REACTOR_COORDINATION_DIR": str(tmp_path / "coordination"),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    subprocess.run(
        [sys.executable, "-m", "prefect", "worker", "start", "--pool", "reactor-process",
         "--type", "process", "--run-once"],
        env=env, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    from prefect.client.orchestration import get_client

    async def state():
        async with get_client() as client:
            return (await client.read_flow_run(run.id)).state

    assert asyncio.run(state()).is_completed()
    folder = tmp_path / "exports" / "parquet" / "spr_results"
    parquet = list(folder.glob(f"date=*/{run.id}.parquet"))
    assert parquet, f"no parquet export for run {run.id} under {tmp_path / 'exports'}"


def _deployment(name: str):
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    async def read():
        async with get_client() as client:
            try:
                return await client.read_deployment_by_name(name)
            except ObjectNotFound:
                return None

    return asyncio.run(read())


def _flow_run_state(run_id):
    from prefect.client.orchestration import get_client

    async def read():
        async with get_client() as client:
            return (await client.read_flow_run(run_id)).state

    return asyncio.run(read())


def _wait_for(check, timeout_s: float, what: str, process: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout_s
    while (found := check()) is None or found is False:
        assert process.poll() is None, f"serve exited: {log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, (
            f"{what} within {timeout_s} s: {log.read_text()[-3000:]}"
        )
        time.sleep(0.5)
    return found


@contextlib.contextmanager
def _ctrl_c_reaches_children():
    """Children started in this block get Ctrl-C as in a terminal: a shell that started pytest
    in the background left SIGINT ignored, which every child inherits (serve then never
    stopped)."""
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)  # reset to the default at exec
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.timeout(1200)
def test_serve_after_deploy_runs_its_own_deployments_and_leaves_the_deployed_ones(
    deployed, tmp_path
):
    """`make deploy` then `make serve`: serve registers `<name>-served`, runs them, and on
    shutdown pauses only those; the worker's deployments keep their pool, pull step and
    schedules (serving under their names made every scheduled run crash with `Downloading
    flow code from storage at None` and paused them all on shutdown)."""
    from prefect.deployments import run_deployment

    from deployments.serve import served_name

    env = {
        **os.environ,
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        "REACTOR_EXPORTS_DIR": str(tmp_path / "exports"),
        "REACTOR_COORDINATION_DIR": str(tmp_path / "coordination"),
    }
    log = tmp_path / "serve.log"
    with open(log, "wb") as out, _ctrl_c_reaches_children():
        serve = subprocess.Popen(
            [sys.executable, "-m", "deployments.serve"], cwd=PROJECT_DIR, env=env,
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        enqueue = f"swarm-enqueue/{served_name('swarm-enqueue')}"
        _wait_for(lambda: _deployment(enqueue), 600, "serve registers", serve, log)
        run = run_deployment(enqueue, timeout=0)
        state = _wait_for(
            lambda: (s := _flow_run_state(run.id)).is_final() and s,
            600, "the served run ends", serve, log,
        )  # fmt: skip
        assert state.is_completed(), f"{state.name}: {state.message}"
    finally:
        serve.send_signal(signal.SIGINT)  # Ctrl-C, as a user stops `make serve`
        try:
            serve.wait(timeout=180)
        except subprocess.TimeoutExpired:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait()
    assert serve.returncode == 0, f"serve did not stop on Ctrl-C: {log.read_text()[-3000:]}"
    for entry in DEFINITIONS:
        flow_name = next(d.name for d in deployed if d.name.endswith(f"/{entry['name']}"))
        kept = _deployment(flow_name)
        assert kept.work_pool_name == "reactor-process", entry["name"]
        assert kept.pull_steps, entry["name"]  # still the worker's: runs in this checkout
        assert not kept.paused, f"{entry['name']} was paused by serve's shutdown"
        served = _deployment(f"{flow_name.split('/')[0]}/{served_name(entry['name'])}")
        assert served is not None and served.work_pool_name is None, entry["name"]
        assert served.paused, f"{entry['name']}: serve's shutdown did not pause what it served"
