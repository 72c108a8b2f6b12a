"""`reactor worktree`: Git-worktree deployment: deploy, status, monitor, teardown."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Git-worktree deployment: deploy, status, monitor, teardown.", no_args_is_help=True
)
