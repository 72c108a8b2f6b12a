"""`reactor runs resume <flow-run-id>`: finish a run whose process died, under the same id.

A SIGKILLed (OOM, reboot) flow run stays RUNNING on the server: nothing marks it Crashed until
its heartbeats are missed. `prefect flow-run retry` only takes terminal runs and, on Prefect
3.9.1, does not await an async flow (it leaves the run Scheduled), so this command does the
resume itself:

1. a RUNNING/PENDING run whose process is gone (no heartbeat for 3 heartbeat intervals, or the
   caller says `--force`) is set Crashed; a Crashed/Failed/Cancelled one is taken as it is;
2. the run is set Scheduled (same id; its run count goes up when it starts again);
3. a deployment run is left Scheduled for its work pool's worker; a local run (no deployment)
   is run here, in this process, from the flow's entrypoint with its stored parameters.

The flows persist their task results with cache keys equal on a retry of the same run
(tasks/resume.py), so the tasks that finished are loaded, not run again.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Literal
from uuid import UUID

import typer
from pydantic import BaseModel

from reactor.commands._common import EXIT_FAILED, fail, needs_server, print_json

app = typer.Typer(
    help="Flow runs after a crash: resume one under its own id.", no_args_is_help=True
)

# flow name -> entrypoint, for local runs (a deployment run carries its own)
ENTRYPOINTS = {
    "spr-pipeline": "flows.spr_pipeline:spr_pipeline",
    "swarm-coordination": "flows.swarm_coordination:swarm_coordination",
    "trace-orchestration": "flows.trace_orchestration:trace_orchestration",
    "worktree-deployment": "flows.worktree_deployment:worktree_deployment",
    "worktree-teardown": "flows.worktree_teardown:worktree_teardown",
    "worktree-health-monitor": "flows.health_monitor:health_monitor",
}
MISSED_HEARTBEATS = 3  # a run is gone after this many heartbeat intervals without one
RESUMABLE_STATES = {"CRASHED", "FAILED", "CANCELLED", "SCHEDULED"}
LIVE_STATES = {"RUNNING", "PENDING", "CANCELLING"}


class NotResumable(ValueError):
    """The run cannot be resumed as asked (still alive, unknown flow, already completed)."""


class ResumeOutcome(BaseModel):
    flow_run_id: UUID
    flow: str
    previous_state: str
    action: Literal["resumed", "scheduled-for-worker"]
    state: str  # the state the run ended in (resumed), or Scheduled
    run_count: int


async def last_sign_of_life(client, flow_run) -> datetime | None:
    """When the run last showed it was alive: its newest heartbeat event, else its state's
    timestamp (a run killed before its first heartbeat)."""
    from prefect.events.filters import (
        EventFilter,
        EventNameFilter,
        EventOccurredFilter,
        EventResourceFilter,
    )

    since = flow_run.start_time or flow_run.expected_start_time or flow_run.created
    page = await client.read_events(
        EventFilter(
            occurred=EventOccurredFilter(since=since),
            event=EventNameFilter(name=["prefect.flow-run.heartbeat"]),
            resource=EventResourceFilter(id=[f"prefect.flow-run.{flow_run.id}"]),
        ),
        limit=50,
    )
    beats = [e.occurred for e in page.events]
    return max(beats, default=flow_run.state.timestamp if flow_run.state else since)


def heartbeat_interval_s() -> int:
    from prefect.settings import get_current_settings

    return max(get_current_settings().flows.heartbeat_frequency or 180, 30)


async def _mark_gone(client, flow_run, force: bool) -> None:
    from prefect.states import Crashed

    if not force:
        last = await last_sign_of_life(client, flow_run)
        window = timedelta(seconds=MISSED_HEARTBEATS * heartbeat_interval_s())
        if last is not None and datetime.now(UTC) - last < window:
            raise NotResumable(
                f"flow run {flow_run.id} is {flow_run.state.name} and was alive at {last:%H:%M:%S}"
                f" UTC (within {window.total_seconds():.0f} s): if its process is gone, pass"
                " --force"
            )
    await client.set_flow_run_state(
        flow_run.id,
        Crashed(
            message="process gone (heartbeat lapsed or --force); marked by reactor runs resume"
        ),
        force=True,
    )


async def resume_run(
    flow_run_id: UUID | str, force: bool = False, entrypoint: str | None = None
) -> ResumeOutcome:
    """Resume one flow run (see the module docstring); returns what was done."""
    from prefect import get_client
    from prefect.flow_engine import run_flow_async
    from prefect.flows import load_flow_from_entrypoint
    from prefect.states import Scheduled

    async with get_client() as client:
        flow_run = await client.read_flow_run(UUID(str(flow_run_id)))
        flow = await client.read_flow(flow_run.flow_id)
        previous = flow_run.state_type.value if flow_run.state_type else "UNKNOWN"
        if previous == "COMPLETED":
            raise NotResumable(f"flow run {flow_run.id} already Completed: nothing to resume")
        if previous in LIVE_STATES:
            await _mark_gone(client, flow_run, force)
        elif previous not in RESUMABLE_STATES:
            raise NotResumable(f"flow run {flow_run.id} is {previous}: cannot resume it")
        if flow_run.deployment_id is None:
            entrypoint = entrypoint or ENTRYPOINTS.get(flow.name)
            if entrypoint is None:
                raise NotResumable(f"flow {flow.name!r} is not a Reactor flow: pass --entrypoint")
            loaded = load_flow_from_entrypoint(entrypoint)  # before Scheduled: a bad one fails
        await client.set_flow_run_state(flow_run.id, Scheduled(), force=True)
        flow_run = await client.read_flow_run(flow_run.id)
    action, state = "scheduled-for-worker", None
    if flow_run.deployment_id is None:
        ran = await run_flow_async(
            loaded, flow_run=flow_run, parameters=flow_run.parameters, return_type="state"
        )
        action, state = "resumed", ran.name or ran.type.value
        async with get_client() as client:
            flow_run = await client.read_flow_run(flow_run.id)
    return ResumeOutcome(
        flow_run_id=flow_run.id,
        flow=flow.name,
        previous_state=previous,
        action=action,
        state=state or flow_run.state_name or "Scheduled",
        run_count=flow_run.run_count,
    )


@app.command("resume")
@needs_server
def resume(
    flow_run_id: str = typer.Argument(..., help="the flow run to finish (its id in the UI)"),
    force: bool = typer.Option(
        False, "--force", help="the run's process is gone: do not wait for its heartbeat to lapse"
    ),
    entrypoint: str | None = typer.Option(
        None, "--entrypoint", help="module:flow of a local run of a flow not in this project"
    ),
    json_output: bool = typer.Option(False, "--json", help="print the outcome as JSON"),
) -> None:
    """Resume a crashed run under the same flow-run id: tasks that finished are loaded from
    their persisted results; a deployment run is handed back to its worker."""
    from prefect.exceptions import ObjectNotFound

    try:
        outcome = asyncio.run(resume_run(flow_run_id, force, entrypoint))
    except NotResumable as exc:
        fail(str(exc))
    except ObjectNotFound:
        fail(f"no flow run {flow_run_id} on this Prefect server")
    except ValueError as exc:  # not a UUID
        fail(f"{flow_run_id!r} is not a flow run id: {exc}")
    if json_output:
        print_json(outcome)
    else:
        typer.echo(
            f"flow run {outcome.flow_run_id} ({outcome.flow}): {outcome.previous_state} -> "
            f"{outcome.action}, now {outcome.state} (run count {outcome.run_count})"
        )
    if outcome.action == "resumed" and outcome.state not in ("Completed", "Cached"):
        raise typer.Exit(EXIT_FAILED)
