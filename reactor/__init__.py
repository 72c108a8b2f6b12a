"""The `reactor` command line (Typer). `python -m reactor` works too."""
