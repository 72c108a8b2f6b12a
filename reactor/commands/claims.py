"""`reactor claims`: The claim ledger: add, claim, progress, complete, list work items."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="The claim ledger: add, claim, progress, complete, list work items.", no_args_is_help=True
)
