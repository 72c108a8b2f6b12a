"""`reactor worktree`: Git-worktree deployment: deploy, status, monitor, teardown."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from reactor.commands._common import cli_errors, load_model, needs_server, print_json, use_server

app = typer.Typer(
    help="Git-worktree deployment: deploy, status, monitor, teardown.", no_args_is_help=True
)


@app.command()
@needs_server
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
@needs_server
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
    from tasks.worktree import teardown as steps
    from tasks.worktree.errors import UnsavedWorkError
    from tasks.worktree.models import TeardownRequest
    from tasks.worktree.registry import open_registry

    with cli_errors():
        request = TeardownRequest(names=names or None, repo_path=repo, force=force)
        registry = open_registry()
        envs = registry.environments()
        _check_selection(envs, request.names, request.repo_path)
        if not force:  # work at risk: one clear line before any flow run (the flow checks too)
            selected = steps.select(envs, request.names, request.repo_path)
            found = [steps.unsaved_work(registry, name) for name in selected]
            unsaved = [u for u in found if u is not None and u.at_risk]
            if unsaved:
                raise UnsavedWorkError(unsaved)
        use_server()  # only now: a refused teardown needs no server
        from flows.worktree_teardown import worktree_teardown

        result = asyncio.run(worktree_teardown(request))
    if json_out:
        print_json(result)
        return
    for i in result.items:
        typer.echo(f"{i.name:20} stopped={i.stopped_pid} port={i.port_released} {i.detail}")
    if not result.items:
        typer.echo("nothing registered to tear down")


def _check_selection(envs: dict, names: list[str] | None, repo: Path | None) -> None:
    """Refuse a teardown aimed at something that is not there: `--repo` that is not a git
    repository (a typo), or names no environment is registered under."""
    from tasks.errors import InvalidInput

    if repo is not None and not (Path(repo) / ".git").exists():
        what = "no such directory" if not Path(repo).exists() else "not a git repository"
        known = sorted({str(e.repo_path) for e in envs.values() if e.repo_path})
        raise InvalidInput(
            f"--repo {repo}: {what}; repositories with registered environments: "
            f"{', '.join(known) or 'none'}"
        )
    unknown = sorted(set(names or ()) - set(envs))
    if unknown:
        raise InvalidInput(
            f"no environment registered as {', '.join(map(repr, unknown))}; registered: "
            f"{', '.join(sorted(envs)) or 'none'}"
        )


@app.command("init-sample")
def init_sample(
    path: Path = typer.Argument(Path("/tmp/reactor-worktree-demo/repo")),
) -> None:
    """Create the sample git repository that samples/worktree/spec.yaml deploys, in a new or
    empty directory (an existing sample repository is left as it is)."""
    from tasks.worktree.sample_repo import SAMPLE_SERVICES, make_sample_repo

    with cli_errors():
        if _is_sample_repo(path, SAMPLE_SERVICES):
            typer.echo(f"sample repository already at {path}")
            return
        _check_empty(path)
        repo = make_sample_repo(path, SAMPLE_SERVICES)
    typer.echo(f"sample repository ready at {repo}")


def _check_empty(path: Path) -> None:
    """init-sample makes a repository of its own: never inside someone's repository (it would
    add branches to it) nor over files (it would overwrite README.md)."""
    from tasks.errors import InvalidInput

    if path.exists() and not path.is_dir():
        raise InvalidInput(f"{path} is a file; give a new or empty directory")
    if (path / ".git").exists():
        raise InvalidInput(
            f"{path} is already a git repository; init-sample creates a new one: give a new "
            "or empty directory"
        )
    if path.is_dir() and (entries := sorted(p.name for p in path.iterdir())):
        shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
        raise InvalidInput(
            f"{path} is not empty ({shown}); init-sample writes service.py, README.md and "
            ".gitignore there: give a new or empty directory"
        )


def _is_sample_repo(path: Path, services: tuple[str, ...]) -> bool:
    """Is `path` a repository init-sample made: the sample service on `main` and a
    `service/<name>` branch per sample service?"""
    import git

    from tasks.worktree.sample_repo import SERVICE_SOURCE

    if not (path / ".git").exists():
        return False
    try:
        with git.Repo(path) as repo:
            heads = {h.name for h in repo.heads}
            source = repo.git.show("main:service.py") if "main" in heads else None
    except (git.GitError, ValueError):
        return False
    wanted = {"main", *(f"service/{name}" for name in services)}
    return wanted <= heads and source == SERVICE_SOURCE.read_text().rstrip("\n")
