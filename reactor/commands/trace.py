"""`reactor trace`: Multi-system trace orchestration and the loopback stand-ins."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Multi-system trace orchestration and the loopback stand-ins.", no_args_is_help=True
)
