"""`reactor`: the commands users type. Each scenario's commands live in reactor/commands/.

Start-up stays light: `--help`, input errors and the header checks answer without importing
Prefect, the flows or the numerical libraries (each command imports what it uses);
tests/unit/test_cli_imports.py counts the modules loaded.
"""

from __future__ import annotations

import os

# Click's plain help (no Rich panels, which render every flag as `--json <bool>`); set before
# typer is imported, which reads it once. `TYPER_USE_RICH=1` brings the panels back.
os.environ.setdefault("TYPER_USE_RICH", "0")

import sys
from typing import Any

import typer

# typer carries its own copy of click: its usage errors are these
from typer._click import exceptions as click_errors
from typer.core import TyperGroup

from reactor.commands import _common, claims, demo, runs, spr, swarm, trace, worktree


class _Reactor(typer.Typer):
    """Typer, run so that every way a command can end is one `error:` line (usage errors,
    unexpected exceptions), and commands that run flows choose their server first."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise SystemExit(main(sys.argv[1:]))


app = _Reactor(
    name="reactor",
    help="Reactor Flows: Prefect 3 flows for swarm coordination, tracing, SPR and worktrees.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    verbose: bool = typer.Option(
        False, "--verbose", help="Print the full traceback when a command fails."
    ),
) -> None:
    if verbose:
        os.environ[_common.VERBOSE_ENV] = "1"


app.add_typer(spr.app, name="spr")
app.add_typer(swarm.app, name="swarm")
app.add_typer(claims.app, name="claims")
app.add_typer(trace.app, name="trace")
app.add_typer(worktree.app, name="worktree")
app.add_typer(runs.app, name="runs")
app.command("demo")(demo.demo)


def _with_server(callback: Any) -> Any:
    def run(*args: Any, **kwargs: Any) -> Any:
        _common.use_server()
        return callback(*args, **kwargs)

    return run


def _named_values(command: Any) -> None:
    """Options that take a value show its name (`--limit LIMIT`), not its Python type
    (`--limit <int range>`, `--type <list[str]>`); flags show nothing."""
    command.rich_markup_mode = None  # click's plain help, even where typer was loaded first
    units = {"_dir": "DIR", "_s": "SECONDS", "_ms": "MS"}
    for param in command.params:
        if param.metavar is None and not getattr(param, "is_flag", False):
            name = param.name or "value"
            unit = next((u for suffix, u in units.items() if name.endswith(suffix)), None)
            param.metavar = unit or name.upper()


def command() -> TyperGroup:
    """The click command tree, with the server choice in front of every `@needs_server`
    command."""
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    _named_values(root)
    for group in root.commands.values():
        _named_values(group)
        if not isinstance(group, TyperGroup):
            continue
        for leaf in group.commands.values():
            _named_values(leaf)
            if getattr(leaf.callback, "needs_server", False):
                leaf.callback = _with_server(leaf.callback)
    return root


def main(argv: list[str]) -> int:
    """Run `reactor argv…`; the exit code."""
    try:
        done = command().main(args=argv, prog_name="reactor", standalone_mode=False)
        return done if isinstance(done, int) else 0  # an int: the exit code of `typer.Exit`
    except typer.Exit as exc:
        return exc.exit_code
    except click_errors.NoArgsIsHelpError as exc:  # `reactor spr`: the help, as click does
        exc.show()
        return exc.exit_code
    except click_errors.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else "reactor"
        print(f"error: {exc.format_message()} (see `{where} --help`)", file=sys.stderr)
        return exc.exit_code
    except click_errors.ClickException as exc:
        print(f"error: {exc.format_message()}", file=sys.stderr)
        return exc.exit_code
    except typer.Abort:
        print("error: aborted", file=sys.stderr)
        return 130
    except Exception as exc:  # whatever a command did not turn into its own line
        try:
            _common.report_error(exc)
        except typer.Exit as done:
            return done.exit_code
        return 1
