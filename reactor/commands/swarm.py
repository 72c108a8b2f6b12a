"""`reactor swarm`: AI swarm coordination: run a task set through the swarm flow."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="AI swarm coordination: run a task set through the swarm flow.", no_args_is_help=True
)
