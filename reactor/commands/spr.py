"""`reactor spr`: SPR compression: compress, decompress, roundtrip, batch, validate, metrics."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="SPR compression: compress, decompress, roundtrip, batch, validate, metrics.",
    no_args_is_help=True,
)
