"""`reactor runs resume`: what it refuses, and that a flow run is finished under its own id."""

from __future__ import annotations

import asyncio
from uuid import UUID

import pytest
from prefect import flow, get_client, task
from prefect.states import Completed, Running
from typer.testing import CliRunner

from reactor.cli import app
from reactor.commands.runs import NotResumable, resume_run


@task
def noop() -> int:
    return 1


@flow(name="crash-resume-probe")
async def probe() -> int:
    return noop()


async def _run_in_state(state) -> UUID:
    async with get_client() as client:
        run = await client.create_flow_run(probe, parameters={})
        await client.set_flow_run_state(run.id, state, force=True)
        return run.id


def test_resume_refuses_a_running_run_whose_heartbeat_has_not_lapsed():
    run_id = asyncio.run(_run_in_state(Running()))
    with pytest.raises(NotResumable, match="--force"):
        asyncio.run(resume_run(run_id))


def test_resume_refuses_a_completed_run():
    run_id = asyncio.run(_run_in_state(Completed()))
    with pytest.raises(NotResumable, match="already Completed"):
        asyncio.run(resume_run(run_id))


def test_resume_force_finishes_a_gone_run_under_the_same_id():
    run_id = asyncio.run(_run_in_state(Running()))
    outcome = asyncio.run(resume_run(run_id, force=True, entrypoint=f"{__name__}:probe"))
    assert outcome.flow_run_id == run_id and outcome.state == "Completed"
    assert outcome.previous_state == "RUNNING" and outcome.action == "resumed"


def test_cli_resume_of_a_live_run_says_to_pass_force():
    run_id = asyncio.run(_run_in_state(Running()))
    out = CliRunner().invoke(app, ["runs", "resume", str(run_id)])
    assert out.exit_code == 2 and "--force" in out.output
