"""`reactor demo` / `make demo`: every scenario on the bundled samples, against a real server.

Starts what it needs — the Prefect server (or uses PREFECT_API_URL's), the loopback HTTP
stand-ins, a temporary git repository — runs the four scenarios with a progress display, checks
through the server's API that every run is Completed with its artifacts, prints a summary and
the UI address, and stops what it started (the server stays up with `--keep-server`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

from rich.console import Console
from rich.table import Table

from deployments.server import (
    Server,
    describe,
    forget_stale,
    select_server,
    start_server,
    stop_server,
)
from tasks.settings import get_settings

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


@dataclass
class StepOutcome:
    """What a scenario step reports: its flow runs, a one-line summary, dataset files."""

    summary: str
    flow_run_ids: list[UUID] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)


@dataclass
class StepReport:
    scenario: str
    seconds: float
    outcome: StepOutcome | None = None
    error: str | None = None
    verified: list[str] = field(default_factory=list)  # "<flow run name>: Completed, 2 artifacts"

    @property
    def ok(self) -> bool:
        return (
            self.error is None
            and bool(self.verified)
            and all(": Completed," in v for v in self.verified)
        )


Step = Callable[[contextlib.ExitStack], StepOutcome]


def quiet_console_logs() -> None:
    """Flow logs still reach the server (and the UI); only the console copy is muted."""
    import prefect.main  # noqa: F401 - configures Prefect's logging (handlers on the root logger)

    for handler in logging.getLogger().handlers:
        if type(handler).__name__ == "PrefectConsoleHandler":
            handler.setLevel(logging.WARNING)


async def _verify(flow_run_ids: list[UUID]) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    lines = []
    async with get_client() as client:
        for run_id in flow_run_ids:
            run = await client.read_flow_run(run_id)
            artifacts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
            )
            state = run.state.name if run.state else "unknown"
            lines.append(f"{run.name}: {state}, {len(artifacts)} artifacts")
    return lines


def run_steps(steps: dict[str, Step], console: Console) -> list[StepReport]:
    reports = []
    with contextlib.ExitStack() as resources:
        for scenario, step in steps.items():
            started = time.perf_counter()
            with console.status(f"[bold]{scenario}[/]: running…"):
                report = StepReport(scenario=scenario, seconds=0.0)
                try:
                    report.outcome = step(resources)
                    report.verified = asyncio.run(_verify(report.outcome.flow_run_ids))
                except Exception as exc:  # the demo reports every scenario, whatever fails
                    report.error = f"{type(exc).__name__}: {exc}"
                report.seconds = time.perf_counter() - started
            mark = "[green]✓[/]" if report.ok else "[red]✗[/]"
            console.print(f"{mark} {scenario} ({report.seconds:.1f} s)")
            reports.append(report)
    return reports


def _datasets(files: list[str]) -> str:
    """`exports/<dataset>/<date>/<run>.<ext>` paths as `dataset (json, csv, …)`."""
    formats: dict[str, list[str]] = {}
    for f in files:
        path = Path(f)
        formats.setdefault(path.parent.parent.name, []).append(path.suffix.lstrip("."))
    return "\n".join(f"{name} ({', '.join(sorted(exts))})" for name, exts in formats.items())


def summary_table(reports: list[StepReport]) -> Table:
    table = Table(title="Reactor Flows demo")
    for column in (
        "scenario",
        "ok",
        "seconds",
        "flow runs, as the server reports them",
        "datasets",
    ):
        table.add_column(column)
    for r in reports:
        table.add_row(
            r.scenario,
            "[green]yes[/]" if r.ok else "[red]no[/]",
            f"{r.seconds:.1f}",
            "\n".join(r.verified) or "-",
            _datasets(r.outcome.datasets) if r.outcome else "-",
        )
    return table


def print_summaries(reports: list[StepReport], console: Console) -> None:
    for r in reports:
        text = r.error or (r.outcome.summary if r.outcome else "")
        console.print(f"[bold]{r.scenario}[/]: {'[red]' if r.error else ''}{text}", highlight=False)


@contextlib.contextmanager
def prefect_api(server: Server) -> Iterator[None]:
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: server.api_url}):
        try:
            yield
        finally:  # deliver the runs' logs and events before the server may stop
            APILogWorker.drain_all(timeout=10)
            EventsWorker.drain_all(timeout=10)


def demo(keep_server: bool = False, verbose: bool = False, console: Console | None = None) -> int:
    """Run the demo; returns the process exit code (0 when every scenario completed)."""
    from deployments import demo_steps

    console = console or Console()
    # PREFECT_API_URL's server (it must answer), else this checkout's `make server`, else one
    # started for the demo and stopped after it (ServerUnavailable: one `error:` line)
    server = select_server()
    started = server is None
    if server is None:
        forget_stale()
        with console.status("starting a Prefect server for the demo…"):
            server = start_server()
        server.source = "one started for the demo"
    print(describe(server), file=sys.stderr)
    try:
        with prefect_api(server):
            if not verbose:
                quiet_console_logs()
            reports = run_steps(demo_steps.STEPS, console)
    finally:
        if started and not keep_server:
            stop_server()
    console.print(summary_table(reports))
    print_summaries(reports, console)
    settings = get_settings()
    console.print(
        f"Datasets: {settings.exports_dir}/   coordination files: {settings.coordination_dir}/"
    )
    if started and not keep_server:
        console.print(
            "The server was stopped. Keep it for the UI with [bold]reactor demo --keep-server[/]"
            " (runs, artifacts and events stay in its database)."
        )
    else:
        console.print(f"See the runs, artifacts and events in the Prefect UI: {server.ui_url}")
        if started:
            console.print("`make stop` stops this checkout's server.")
    return 0 if all(r.ok for r in reports) else 1
