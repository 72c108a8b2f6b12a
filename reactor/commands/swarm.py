"""`reactor swarm`: AI swarm coordination: run a task set through the swarm flow."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import get_args

import typer

from reactor.commands._common import EXIT_FAILED, cli_errors, fail, load_model, print_json

app = typer.Typer(
    help="AI swarm coordination: run a task set through the swarm flow.", no_args_is_help=True
)


@app.command()
def run(
    tasks_file: Path = typer.Argument(..., help="SwarmRequest as JSON or YAML."),
    agents: int | None = typer.Option(
        None, "--agents", min=1, help="Number of agents (first N of the file's, or max_agents)."
    ),
    strategy: str | None = typer.Option(None, "--strategy", help="8020 | balanced | speed"),
    coordination_dir: Path | None = typer.Option(
        None, "--coordination-dir", help="Where ledger, agent status and logs live."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the SwarmResult as JSON."),
) -> None:
    """Prioritise, form agents, distribute, claim and execute TASKS_FILE; print the outcome."""
    with cli_errors():
        from tasks.swarm.models import Strategy, SwarmRequest

        request = load_model(tasks_file, SwarmRequest)
        update: dict = {}
        if strategy is not None:
            if strategy not in get_args(Strategy):
                raise ValueError(
                    f"--strategy {strategy!r}: expected one of {', '.join(get_args(Strategy))}"
                )
            update["optimization_strategy"] = strategy
        if agents is not None:
            if request.agents:
                update["agents"] = request.agents[:agents]
            update["max_agents"] = agents
        data = {**request.model_dump(), **{k: v for k, v in update.items() if k != "agents"}}
        if "agents" in update:
            data["agents"] = [a.model_dump() for a in update["agents"]]
        request = SwarmRequest.model_validate(data)
        if coordination_dir is not None:
            os.environ["REACTOR_COORDINATION_DIR"] = str(coordination_dir)

        from flows.swarm_coordination import swarm_coordination
        from tasks.errors import RolledBack

        try:
            result = asyncio.run(swarm_coordination(request))
        except RolledBack as exc:
            fail(str(exc), EXIT_FAILED)
    if as_json:
        print_json(result)
        return
    _print_summary(result)


def _print_summary(result) -> None:
    plan = result.plan
    done = sum(e.status == "completed" for e in result.executions)
    source = result.analysis.source + (
        f" ({result.analysis.fallback_reason})" if result.analysis.fallback_reason else ""
    )
    lines = [
        f"run {result.run_id}: {done}/{len(result.executions)} completed "
        f"(success rate {result.success_rate:.0%})",
        f"priority analysis: {source}",
        f"strategy {plan.strategy}: makespan {plan.makespan_ms:.0f} ms, lower bound "
        f"{plan.lower_bound_ms:.0f} ms, ratio {plan.ratio:.3f}",
    ]
    for e in result.executions:
        lines.append(
            f"  {e.task_id:<24} {e.status:<9} {e.agent_id}  {e.duration_ms:>8.1f} ms"
            + (f"  {e.error}" if e.error else "")
        )
    lines += [f"  bottleneck: {b}" for b in result.telemetry.bottlenecks]
    lines += [f"  recommendation: {r}" for r in result.telemetry.recommendations]
    for name, files in result.exports.items():
        lines.append(f"  dataset {name}: {Path(files[0]).parent}")
    typer.echo("\n".join(lines))
