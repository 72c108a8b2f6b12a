"""`make deploy`: create the process work pool named in prefect.yaml (idempotent), register
every deployment with `prefect deploy --all`, apply the alert automations of
deployments/automations.yaml (idempotent; `REACTOR_ALERT_WEBHOOK_URL` is where they notify), then
list what the server holds, with schedules.

    PREFECT_API_URL=http://127.0.0.1:4200/api python -m deployments.deploy
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectNotFound
from pydantic import BaseModel

from deployments.automations import apply_automations
from deployments.storage import ensure_from_settings

PROJECT_DIR = Path(__file__).resolve().parent.parent


class DeploymentInfo(BaseModel):
    name: str  # "<flow name>/<deployment name>"
    work_pool: str | None
    schedules: list[str]
    tags: list[str]
    enforce_parameter_schema: bool


async def ensure_work_pool(name: str) -> bool:
    """Create the process work pool `name` unless it exists; True when created."""
    async with get_client() as client:
        try:
            await client.read_work_pool(name)
            return False
        except ObjectNotFound:
            await client.create_work_pool(WorkPoolCreate(name=name, type="process"))
            return True


def _describe(schedule) -> str:
    s = schedule.schedule
    if getattr(s, "cron", None):
        return f"cron {s.cron}"
    if getattr(s, "interval", None):
        return f"every {s.interval.total_seconds():g} s"
    return type(s).__name__


async def list_deployments() -> list[DeploymentInfo]:
    async with get_client() as client:
        deployments = await client.read_deployments()
        flows = {f.id: f.name for f in await client.read_flows()}
    return sorted(
        (
            DeploymentInfo(
                name=f"{flows.get(d.flow_id, '?')}/{d.name}",
                work_pool=d.work_pool_name,
                schedules=[_describe(s) for s in d.schedules],
                tags=list(d.tags),
                enforce_parameter_schema=d.enforce_parameter_schema,
            )
            for d in deployments
        ),
        key=lambda d: d.name,
    )


def work_pool_names(path: Path = PROJECT_DIR / "prefect.yaml") -> set[str]:
    return {d["work_pool"]["name"] for d in yaml.safe_load(path.read_text())["deployments"]}


def deploy_all() -> None:
    """Run `prefect deploy --all` from the project root (prefect.yaml's pull step points the
    worker at this checkout through REACTOR_PROJECT_DIR)."""
    env = {**os.environ, "REACTOR_PROJECT_DIR": str(PROJECT_DIR)}
    subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"],
        cwd=PROJECT_DIR,
        env=env,
        check=True,
    )


def main() -> int:
    from deployments.server import ServerUnavailable, select_server

    if not os.environ.get("PREFECT_API_URL"):
        print("error: set PREFECT_API_URL (or use `make deploy`)", file=sys.stderr)
        return 2
    try:
        select_server()  # PREFECT_API_URL must answer
        return _deploy()
    except ServerUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
    except subprocess.CalledProcessError as exc:
        print(
            f"error: `prefect deploy --all` failed (exit {exc.returncode}); see above",
            file=sys.stderr,
        )
    return 1


def _deploy() -> int:
    for pool in sorted(work_pool_names()):
        created = asyncio.run(ensure_work_pool(pool))
        print(f"work pool {pool!r} {'created' if created else 'exists'}")
    deploy_all()
    for a in asyncio.run(apply_automations()):
        print(f"automation {a.name!r} {'created' if a.created else 'updated'} ({a.action})")
    if storage := ensure_from_settings():  # REACTOR_RESULT_STORAGE's block (deployments/storage.py)
        print(storage)
    for d in asyncio.run(list_deployments()):
        print(f"{d.name:<55} pool={d.work_pool} schedules={', '.join(d.schedules) or '-'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
