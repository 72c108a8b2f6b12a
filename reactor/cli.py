"""`reactor`: the commands users type. Each scenario's commands live in reactor/commands/."""

from __future__ import annotations

import typer

from reactor.commands import claims, demo, runs, spr, swarm, trace, worktree

app = typer.Typer(
    name="reactor",
    help="Reactor Flows: Prefect 3 flows for swarm coordination, tracing, SPR and worktrees.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(spr.app, name="spr")
app.add_typer(swarm.app, name="swarm")
app.add_typer(claims.app, name="claims")
app.add_typer(trace.app, name="trace")
app.add_typer(worktree.app, name="worktree")
app.add_typer(runs.app, name="runs")
app.command("demo")(demo.demo)
