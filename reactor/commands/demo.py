"""`reactor demo`: runs every scenario on the bundled samples."""

from __future__ import annotations

import typer


def demo(
    keep_server: bool = typer.Option(
        False, "--keep-server", help="Leave the Prefect server running to browse the UI."
    ),
    verbose: bool = typer.Option(False, "--verbose", help="Show flow logs on the console."),
) -> None:
    """Run all four scenarios on bundled sample inputs against a Prefect server and print where
    to look in the UI. Starts what it needs and stops it afterwards."""
    from deployments.demo import demo as run_demo

    raise typer.Exit(run_demo(keep_server=keep_server, verbose=verbose))
