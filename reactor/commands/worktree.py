"""`reactor worktree`: Git-worktree deployment: deploy, status, monitor, teardown."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from reactor.commands._common import cli_errors, load_model, print_json

app = typer.Typer(
    help="Git-worktree deployment: deploy, status, monitor, teardown.", no_args_is_help=True
)


@app.command()
def deploy(
    spec: Path = typer.Argument(..., help="DeploymentRequest as YAML or JSON"),
    json_out: bool = typer.Option(False, "--json", help="print the result as JSON on stdout"),
) -> None:
    """Deploy the worktrees of SPEC: ports, git worktrees, ordered start, health, monitoring."""
    from flows.worktree_deployment import worktree_deployment
    from tasks.worktree.models import DeploymentRequest
    from tasks.worktree.preflight import preflight

    with cli_errors():
        request = load_model(spec, DeploymentRequest)
        preflight(request)  # bad repo, ref or path: one clear line before any flow run
        result = asyncio.run(worktree_deployment(request))
    if json_out:
        print_json(result)
        return
    for s in result.services:
        typer.echo(f"{s.name:20} {s.status.value:15} port {s.port}  pid {s.pid}  {s.reason}")
    for name, why in result.skipped.items():
        typer.echo(f"{name:20} {'skipped':15} {why}")
    typer.echo(f"{result.healthy} healthy, {result.failed} failed in {result.duration_ms:.0f} ms")


@app.command()
def status(
    json_out: bool = typer.Option(False, "--json", help="print the registry entries as JSON"),
) -> None:
    """Registered environments and whether each one's process and health check are alive."""
    from tasks.worktree import health, process
    from tasks.worktree.registry import open_registry

    with cli_errors():
        envs = open_registry().environments()
    rows = []
    for name, env in sorted(envs.items()):
        check = health.check_health(env.health_url) if env.health_url else None
        rows.append(
            {
                "name": name,
                "status": env.status.value,
                "port": env.port,
                "pid": env.pid,
                # the recorded process itself, not whatever now holds its pid
                "alive": process.is_alive(env.process),
                "healthy_now": bool(check and check.healthy),
                "worktree_path": str(env.worktree_path) if env.worktree_path else None,
            }
        )
    if json_out:
        print_json(rows)
        return
    if not rows:
        typer.echo("no registered environments")
    for r in rows:
        typer.echo(
            f"{r['name']:20} {r['status']!s:15} port {r['port']}  pid {r['pid']}  "
            f"alive={r['alive']} healthy={r['healthy_now']}  {r['worktree_path']}"
        )


@app.command()
def monitor(
    once: bool = typer.Option(False, "--once", help="one round of checks, then exit"),
    interval: float = typer.Option(30.0, help="seconds between rounds"),
    json_out: bool = typer.Option(False, "--json", help="print the result as JSON on stdout"),
) -> None:
    """Check every registered service; restart after 3 consecutive failures; alert."""
    from flows.health_monitor import health_monitor
    from tasks.worktree.models import MonitorRequest

    with cli_errors():
        result = asyncio.run(health_monitor(MonitorRequest(once=once, interval_s=interval)))
    if json_out:
        print_json(result)
        return
    for c in result.checks:
        typer.echo(f"{c.name:20} healthy={c.healthy} failures={c.consecutive_failures} {c.action}")


@app.command()
def teardown(
    names: list[str] = typer.Argument(None, help="environments to remove (default: all)"),
    repo: Path | None = typer.Option(None, help="only environments of this repository"),
    force: bool = typer.Option(
        False, "--force", help="discard uncommitted files and unmerged commits in the worktrees"
    ),
    json_out: bool = typer.Option(False, "--json", help="print the result as JSON on stdout"),
) -> None:
    """Stop services, remove worktrees (and branches deployments created), release ports.
    Refuses, touching nothing, when a worktree holds uncommitted files or commits no other
    branch has, unless --force."""
    from flows.worktree_teardown import worktree_teardown
    from tasks.worktree import teardown as steps
    from tasks.worktree.errors import UnsavedWorkError
    from tasks.worktree.models import TeardownRequest
    from tasks.worktree.registry import open_registry

    with cli_errors():
        request = TeardownRequest(names=names or None, repo_path=repo, force=force)
        if not force:  # work at risk: one clear line before any flow run (the flow checks too)
            registry = open_registry()
            selected = steps.select(registry.environments(), request.names, request.repo_path)
            found = [steps.unsaved_work(registry, name) for name in selected]
            unsaved = [u for u in found if u is not None and u.at_risk]
            if unsaved:
                raise UnsavedWorkError(unsaved)
        result = asyncio.run(worktree_teardown(request))
    if json_out:
        print_json(result)
        return
    for i in result.items:
        typer.echo(f"{i.name:20} stopped={i.stopped_pid} port={i.port_released} {i.detail}")


@app.command("init-sample")
def init_sample(
    path: Path = typer.Argument(Path("/tmp/reactor-worktree-demo/repo")),
) -> None:
    """Create the sample git repository that samples/worktree/spec.yaml deploys."""
    from tasks.worktree.sample_repo import SAMPLE_SERVICES, make_sample_repo

    with cli_errors():
        repo = make_sample_repo(path, SAMPLE_SERVICES)
    typer.echo(f"sample repository ready at {repo}")
