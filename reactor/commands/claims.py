"""`reactor claims`: the claim ledger — the operations the old coordination shell helper offered
(add, claim, progress, complete, list; plus release)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from reactor.commands._common import cli_errors, print_json

app = typer.Typer(
    help="The claim ledger: add, claim, progress, complete, list work items.", no_args_is_help=True
)

CoordinationDir = typer.Option(
    None, "--coordination-dir", help="Ledger directory (default: REACTOR_COORDINATION_DIR)."
)
AsJson = typer.Option(False, "--json", help="Print the result as JSON on stdout.")


def _ledger(coordination_dir: Path | None):
    from tasks.claims import ClaimLedger
    from tasks.settings import get_settings

    return ClaimLedger(coordination_dir or get_settings().coordination_dir)


def _show(claim, as_json: bool) -> None:
    if as_json:
        print_json(claim)
    else:
        typer.echo(
            f"{claim.work_item_id}  {claim.status:<11} agent={claim.agent_id or '-'}  "
            f"{claim.priority:<8} {claim.work_type}  {claim.description}"
        )


@app.command()
def add(
    work_type: str = typer.Argument(..., help="Work type, e.g. analysis."),
    description: str = typer.Argument("", help="What the work is."),
    priority: str = typer.Option("medium", "--priority", help="critical|high|medium|low"),
    duration_ms: int = typer.Option(0, "--duration-ms", help="Estimated duration (ms)."),
    team: str = typer.Option("swarm", "--team"),
    work_item_id: str | None = typer.Option(None, "--id", help="Default: a new work_<ns> id."),
    coordination_dir: Path | None = CoordinationDir,
    as_json: bool = AsJson,
) -> None:
    """Add a pending work item and print its id."""
    with cli_errors():
        from tasks.claims import WorkItem

        fields = dict(
            work_type=work_type, description=description, priority=priority,
            estimated_duration=duration_ms, team=team,
        )  # fmt: skip
        if work_item_id:
            fields["work_item_id"] = work_item_id
        ledger = _ledger(coordination_dir)
        (new_id,) = ledger.add([WorkItem.model_validate(fields)])
        _show(ledger.get(new_id), as_json)


@app.command()
def claim(
    agent_id: str = typer.Argument(..., help="The claiming agent."),
    work_item_id: str | None = typer.Option(None, "--id", help="Claim this item (else next)."),
    work_type: str | None = typer.Option(None, "--work-type", help="Only items of this type."),
    lease_s: float = typer.Option(300.0, "--lease-s", help="Lease length in seconds."),
    coordination_dir: Path | None = CoordinationDir,
    as_json: bool = AsJson,
) -> None:
    """Claim the next claimable item (or --id ITEM); exit 1 when nothing is claimable."""
    with cli_errors():
        ledger = _ledger(coordination_dir)
        if work_item_id:
            got = ledger.claim(work_item_id, agent_id, lease_s)
        else:
            got = ledger.claim_next(agent_id, lease_s, work_type)
        if got is None:
            typer.echo("error: nothing to claim", err=True)
            raise typer.Exit(1)
        _show(got, as_json)


@app.command()
def progress(
    work_item_id: str,
    agent_id: str,
    percent: int = typer.Argument(..., help="0-100"),
    lease_s: float = typer.Option(300.0, "--lease-s", help="Renew the lease by this much."),
    coordination_dir: Path | None = CoordinationDir,
    as_json: bool = AsJson,
) -> None:
    """Record progress on a claimed item (renews the lease)."""
    with cli_errors():
        _show(_ledger(coordination_dir).progress(work_item_id, agent_id, percent, lease_s), as_json)


@app.command()
def complete(
    work_item_id: str,
    agent_id: str,
    result: str = typer.Option("null", "--result", help="Result as JSON."),
    velocity_points: int = typer.Option(1, "--velocity-points"),
    coordination_dir: Path | None = CoordinationDir,
    as_json: bool = AsJson,
) -> None:
    """Complete a claimed item (only its holder may) and append it to coordination_log.json."""
    with cli_errors():
        from tasks.coordination_log import append_entries
        from tasks.settings import get_settings

        try:
            value = json.loads(result)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--result is not JSON: {exc}") from exc
        ledger = _ledger(coordination_dir)
        done = ledger.complete(work_item_id, agent_id, value)
        settings = get_settings()
        if coordination_dir:
            settings = settings.model_copy(update={"coordination_dir": coordination_dir})
        append_entries(
            [
                {
                    "work_item_id": work_item_id, "completed_at": done.completed_at,
                    "agent_id": agent_id, "result": value, "velocity_points": velocity_points,
                    "scenario": "swarm",
                }
            ],
            settings,
        )  # fmt: skip
        ledger.snapshot()
        _show(done, as_json)


@app.command()
def release(
    work_item_id: str,
    agent_id: str,
    coordination_dir: Path | None = CoordinationDir,
    as_json: bool = AsJson,
) -> None:
    """Give a claim back: the item is pending again."""
    with cli_errors():
        _show(_ledger(coordination_dir).release(work_item_id, agent_id), as_json)


@app.command("list")
def list_claims(
    status: str | None = typer.Option(None, "--status", help="Only items with this status."),
    limit: int | None = typer.Option(None, "--limit"),
    coordination_dir: Path | None = CoordinationDir,
    as_json: bool = AsJson,
) -> None:
    """List work items (and refresh the original-shape work_claims.json)."""
    with cli_errors():
        ledger = _ledger(coordination_dir)
        ledger.snapshot()
        items = ledger.list(status, limit)
        if as_json:
            print_json([c.seed_record() for c in items])
            return
        for c in items:
            _show(c, False)
        counts = ", ".join(f"{k}={v}" for k, v in sorted(ledger.counts().items()))
        typer.echo(f"{len(items)} item(s); ledger: {counts or 'empty'}", err=True)
