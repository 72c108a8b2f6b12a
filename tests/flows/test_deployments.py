"""prefect.yaml against a real server: every deployment registers with its schedule, the alert
automations are applied with it, and a run of the SPR deployment is picked up by a process
worker, completes and writes its datasets."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
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
    assert set(by_name) == {e["name"] for e in DEFINITIONS}
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
