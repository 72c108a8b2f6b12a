"""`reactor trace`: Multi-system trace orchestration and the loopback stand-ins."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import typer

from reactor.commands._common import cli_errors, load_document, load_model, needs_server, print_json

app = typer.Typer(
    help="Multi-system trace orchestration and the loopback stand-ins.", no_args_is_help=True
)


@app.command("run")
@needs_server
def run(
    systems: Path = typer.Argument(..., help="TraceRequest as JSON or YAML"),
    json_output: bool = typer.Option(False, "--json", help="print the result as JSON"),
    standins: bool = typer.Option(
        False,
        "--standins",
        help="start loopback stand-ins on a free port and point every 127.0.0.1:8790 URL at them",
    ),
    standins_config: Path | None = typer.Option(
        None, "--standins-config", help="stand-in behaviour (default: samples/trace/standins.json)"
    ),
) -> None:
    """Run the trace workflow described in SYSTEMS (e.g. samples/trace/systems.json)."""
    with cli_errors():
        from tasks.trace.models import TraceRequest

        request = load_model(systems, TraceRequest)  # bad input fails here, before any call
        from tasks.settings import get_settings
        from tasks.storage import check_root

        check_root(get_settings().exports_dir)  # and a bad exports root
        from flows.trace_orchestration import trace_orchestration

        if standins:
            from tasks.trace.sample import run_with_standins, sample_standin_config
            from tasks.trace.standins import StandinConfig

            config = (
                load_model(standins_config, StandinConfig)
                if standins_config
                else sample_standin_config()
            )
            result = run_with_standins(trace_orchestration, request, config)
        else:
            result = asyncio.run(trace_orchestration(request))
    if json_output:
        print_json(result)
        return
    a = result.analysis
    typer.echo(f"trace {result.trace_id}  correlation {result.correlation_id}")
    for p in result.path:
        note = f"  ({p.reason})" if p.reason else ""
        typer.echo(
            f"  {p.system:<16} {p.status:<9} {p.duration_ms:8.1f} ms  {p.execution_id}{note}"
        )
    typer.echo(f"critical path: {' -> '.join(a.critical_path)} ({a.critical_path_ms:.0f} ms)")
    typer.echo(f"bottlenecks: {', '.join(a.bottlenecks) or 'none'}")
    for r in a.recommendations:
        typer.echo(f"- {r}")
    for path in result.exports:
        typer.echo(f"exported {path}")


@app.command("standins")
def standins(
    port: int = typer.Option(8790, help="port on 127.0.0.1 (0: any free port)"),
    config: Path | None = typer.Option(None, help="behaviour JSON/YAML (StandinConfig)"),
) -> None:
    """Serve phoenix-, n8n-, xavos- and generic-shaped stand-ins on 127.0.0.1 until Ctrl-C."""
    with cli_errors():
        from tasks.trace.standins import StandinConfig, run_standins

        behaviour = (
            StandinConfig.model_validate(load_document(config)) if config else StandinConfig()
        )
        with run_standins(behaviour, port=port) as running:
            base = running.base_url
            typer.echo(f"stand-ins on {base} (any /<instance> prefix is its own system)")
            from tasks.trace.models import DEFAULT_PATHS

            for shape, path in DEFAULT_PATHS.items():
                typer.echo(f"  {shape:<8} POST {base}/<instance>{path}")
            typer.echo(f"  health   GET  {base}/<instance>/health (and /healthz, n8n's)")
            typer.echo(f"  received GET  {base}/_received   config PUT {base}/_config")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                typer.echo("stopping stand-ins")
