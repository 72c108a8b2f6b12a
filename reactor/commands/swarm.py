"""`reactor swarm`: AI swarm coordination: run a task set through the swarm flow (`run`), or
drain the ledger's queue once (`drain`)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import get_args

import typer

from reactor.commands._common import (
    EXIT_FAILED,
    cli_errors,
    fail,
    load_model,
    needs_server,
    print_json,
)

app = typer.Typer(
    help="AI swarm coordination: run a task set, or drain the work queue, through the swarm flow.",
    no_args_is_help=True,
)


def _strategy(strategy: str) -> str:
    from tasks.swarm.models import Strategy

    if strategy not in get_args(Strategy):
        expected = ", ".join(get_args(Strategy))
        raise ValueError(f"--strategy {strategy!r}: expected one of {expected}")
    return strategy


def _run_flow(request, coordination_dir: Path | None):
    if coordination_dir is not None:
        os.environ["REACTOR_COORDINATION_DIR"] = str(coordination_dir)
    from tasks.settings import get_settings
    from tasks.storage import check_root

    check_root(get_settings().exports_dir)  # a bad exports root fails before the run starts
    from flows.swarm_coordination import swarm_coordination
    from tasks.errors import RolledBack

    try:
        return asyncio.run(swarm_coordination(request))
    except RolledBack as exc:
        fail(str(exc), EXIT_FAILED)


@app.command()
@needs_server
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
        from tasks.swarm.models import SwarmRequest

        request = load_model(tasks_file, SwarmRequest)
        update: dict = {}
        if strategy is not None:
            update["optimization_strategy"] = _strategy(strategy)
        if agents is not None:
            if request.agents:
                update["agents"] = request.agents[:agents]
            update["max_agents"] = agents
        data = {**request.model_dump(), **{k: v for k, v in update.items() if k != "agents"}}
        if "agents" in update:
            data["agents"] = [a.model_dump() for a in update["agents"]]
        request = SwarmRequest.model_validate(data)
        result = _run_flow(request, coordination_dir)
    if as_json:
        print_json(result)
        return
    _print_summary(result)


@app.command()
@needs_server
def drain(
    limit: int = typer.Option(100, "--limit", min=1, help="Take at most this many items."),
    agents: int = typer.Option(
        4, "--agents", min=1, max=64, help="Generalist agents to form for the drain."
    ),
    strategy: str = typer.Option("8020", "--strategy", help="8020 | balanced | speed"),
    types: list[str] = typer.Option(
        [],
        "--type",
        metavar="TYPE",
        help="Only items of this type (repeatable; default: every handled type).",
    ),
    priority_at_least: str | None = typer.Option(
        None,
        "--priority-at-least",
        metavar="LEVEL",
        help="Only items at least this urgent (critical|high|...).",
    ),
    timeout_s: float = typer.Option(300.0, "--timeout-s", help="Per-item attempt timeout."),
    lease_s: float = typer.Option(300.0, "--lease-s", help="Lease of each taken item."),
    min_success_rate: float = typer.Option(
        0.0,
        "--min-success-rate",
        metavar="SHARE",
        help="Fail (and roll back) below this share completed.",
    ),
    coordination_dir: Path | None = typer.Option(
        None, "--coordination-dir", help="Where ledger, agent status and logs live."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the SwarmResult as JSON."),
) -> None:
    """Run one drain: take up to --limit ready items from the ledger's queue, plan them over
    --agents agents, execute and complete them; print what it did to the queue. Items not
    finished go back to the queue with the attempt counted (failed for good at max_attempts)."""
    with cli_errors():
        from tasks.swarm.models import SwarmRequest

        request = SwarmRequest.model_validate(
            {
                "queue": {
                    "limit": limit,
                    "types": types or None,
                    "priority_at_least": priority_at_least,
                    "timeout_s": timeout_s,
                },
                "agents": [{"name": f"agent-{i + 1}"} for i in range(agents)],
                "max_agents": agents,
                "optimization_strategy": _strategy(strategy),
                "min_success_rate": min_success_rate,
                "lease_s": lease_s,
            }
        )
        result = _run_flow(request, coordination_dir)
    if as_json:
        print_json(result)
        return
    _print_summary(result)


def _print_summary(result) -> None:
    from tasks.swarm.story import time_lines

    done = sum(e.status == "completed" for e in result.executions)
    source = result.analysis.source + (
        f" ({result.analysis.fallback_reason})" if result.analysis.fallback_reason else ""
    )
    lines = [
        f"run {result.run_id}: {done}/{len(result.executions)} completed "
        f"(success rate {result.success_rate:.0%})",
        f"priority analysis: {source}",
        *time_lines(result),
    ]
    for e in result.executions:
        lines.append(
            f"  {e.task_id:<24} {e.status:<9} {e.agent_id}  {e.duration_ms:>8.1f} ms"
            + (f"  {e.error}" if e.error else "")
        )
    if (q := result.queue) is not None:
        age = "none" if q.oldest_pending_age_s is None else f"{q.oldest_pending_age_s:.1f} s"
        lines.append(
            f"queue: depth {q.depth_before} -> {q.depth_after}; taken {q.taken}, completed "
            f"{q.completed}, failed for good {q.failed}, returned to the queue {q.returned}; "
            f"oldest pending {age}"
        )
        for wid, roots in q.blocked.items():
            lines.append(f"  blocked: {wid} (depends on failed {', '.join(roots)})")
    lines += [f"  bottleneck: {b}" for b in result.telemetry.bottlenecks]
    lines += [f"  recommendation: {r}" for r in result.telemetry.recommendations]
    for name, files in result.exports.items():
        lines.append(f"  dataset {name}: {Path(files[0]).parent}")
    typer.echo("\n".join(lines))
