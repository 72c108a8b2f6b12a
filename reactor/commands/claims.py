"""`reactor claims`: the claim ledger and its queue from the shell (add, claim, progress,
complete, list, heartbeat, fail, release, blocked).

Holder commands take the claim id that `claim` printed (the fencing token), not the agent id:
a claim that lost its lease to someone else cannot be completed by mistake. The backend is the
configured one (`REACTOR_DATABASE_URL` → PostgreSQL, else SQLite in the coordination dir).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import typer

from reactor.commands._common import EXIT_BAD_INPUT, cli_errors, fail, print_json

app = typer.Typer(
    help="The claim ledger: add, claim, progress, complete, list work items.", no_args_is_help=True
)

CoordinationDir = typer.Option(
    None, "--coordination-dir", help="Ledger directory (default: REACTOR_COORDINATION_DIR)."
)
AsJson = typer.Option(False, "--json", help="Print the result as JSON on stdout.")
ClaimId = typer.Argument(..., help="The claim id `reactor claims claim` printed.")
DEAD_SHOWN = 50  # failed-for-good items `blocked` prints (the ledger keeps every one)


def _settings(coordination_dir: Path | None):
    from tasks.settings import get_settings

    settings = get_settings()
    if coordination_dir:
        settings = settings.model_copy(update={"coordination_dir": coordination_dir})
    return settings


@contextlib.contextmanager
def _ledger(coordination_dir: Path | None) -> Iterator:
    """The configured ledger, closed afterwards; an unreadable or unreachable store is one
    line naming it and exit code 2 (the store is left untouched)."""
    from tasks.claims import open_ledger
    from tasks.errors import CorruptStore, StoreUnavailable

    # the ledger's warnings (a log entry left waiting in its outbox) as `warning:` lines
    warnings = logging.StreamHandler(sys.stderr)
    warnings.setFormatter(logging.Formatter("warning: %(message)s"))
    logger = logging.getLogger("tasks.claims")
    logger.addHandler(warnings)
    try:
        with cli_errors():
            try:
                with open_ledger(_settings(coordination_dir)) as ledger:
                    yield ledger
            except (CorruptStore, StoreUnavailable) as exc:
                fail(str(exc), EXIT_BAD_INPUT)
    finally:
        logger.removeHandler(warnings)


def _json_arg(text: str, option: str):
    """`text` parsed as strict JSON (NaN and Infinity are not JSON)."""
    from tasks.errors import InvalidInput

    def refuse(constant: str):
        raise InvalidInput(f"{option} is not JSON: {constant} is not a JSON number")

    try:
        return json.loads(text, parse_constant=refuse)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{option} is not JSON: {exc}") from None


def _show(claim, as_json: bool) -> None:
    if as_json:
        print_json(claim)
    else:
        typer.echo(
            f"{claim.work_item_id}  {claim.status:<11} agent={claim.agent_id or '-'}  "
            f"claim={claim.claim_id or '-'}  {claim.priority:<8} {claim.work_type}  "
            f"{claim.description}"
            + (f"  error={claim.last_error}" if claim.status == "failed" else "")
        )


def _snapshot(ledger) -> None:
    snap = ledger.snapshot()
    if snap.moved_aside:
        typer.echo(
            f"warning: {snap.path} was not valid JSON; kept it as {snap.moved_aside} and wrote "
            "a fresh snapshot from the ledger",
            err=True,
        )


@app.command()
def add(
    work_type: str = typer.Argument(..., help="Work type, e.g. analysis."),
    description: str = typer.Argument("", help="What the work is."),
    priority: str = typer.Option("medium", "--priority", help="critical|high|medium|low"),
    duration_ms: int = typer.Option(0, "--duration-ms", help="Estimated duration (ms)."),
    team: str = typer.Option("swarm", "--team"),
    work_item_id: str | None = typer.Option(None, "--id", help="Default: a new work_<ns> id."),
    payload: str = typer.Option("{}", "--payload", help="The item's payload, a JSON object."),
    depends_on: list[str] = typer.Option(
        [], "--depends-on", help="A work item this one waits for (repeatable)."
    ),
    max_attempts: int = typer.Option(3, "--max-attempts", help="Failures before it gives up."),
    custom_type: bool = typer.Option(
        False,
        "--custom-type",
        help="Accept a work type only a drain with its own handler runs (it waits for one).",
    ),
    coordination_dir: Path | None = CoordinationDir,
    as_json: bool = AsJson,
) -> None:
    """Add a pending work item to the queue and print its id (--json: the item). A drain run
    (`reactor swarm drain`, the swarm-hourly deployment) picks it up once its dependencies
    completed. Refused with one line, nothing added: a duplicate id, an unknown dependency, a
    cycle, a payload that is not a JSON object (or not what a scenario type's flow takes), a
    work type no drain runs (built-in and scenario types do; --custom-type for a type a drain
    of yours registers a handler for)."""
    from tasks.claims.selection import NOTHING_ADDED
    from tasks.swarm.models import BUILTIN_TYPES, SCENARIO_TYPES
    from tasks.swarm.queue.enqueue import unhandled_types, validated

    if not custom_type and unhandled_types([work_type]):
        fail(
            f"no drain can run work type {work_type!r}: drains run the built-in types "
            f"{', '.join(BUILTIN_TYPES)} and the scenario types {', '.join(SCENARIO_TYPES)}; "
            "if a drain of yours registers a handler for it (SwarmRequest.handlers), add it "
            f"with --custom-type (it waits for that drain); {NOTHING_ADDED}",
            EXIT_BAD_INPUT,
        )
    with _ledger(coordination_dir) as ledger:
        body = _json_arg(payload, "--payload")
        fields = dict(
            work_type=work_type, description=description, priority=priority,
            estimated_duration=duration_ms, team=team, payload=body,
            dependencies=depends_on, max_attempts=max_attempts,
        )  # fmt: skip
        if work_item_id:
            fields["work_item_id"] = work_item_id
        (new_id,) = ledger.add(validated([fields]))
        if as_json:
            print_json(ledger.get(new_id))
        else:
            typer.echo(new_id)


@app.command()
def claim(
    agent_id: str = typer.Argument(..., help="The claiming agent."),
    work_item_id: str | None = typer.Option(None, "--id", help="Claim this item (else next)."),
    work_type: str | None = typer.Option(None, "--work-type", help="Only items of this type."),
    lease_s: float = typer.Option(300.0, "--lease-s", help="Lease length in seconds."),
    coordination_dir: Path | None = CoordinationDir,
    as_json: bool = AsJson,
) -> None:
    """Claim the next claimable item (or --id ITEM) and print it with its claim id; exit 1
    when nothing is claimable."""
    with _ledger(coordination_dir) as ledger:
        if work_item_id:
            got = ledger.claim(work_item_id, agent_id, lease_s)
        else:
            got = ledger.claim_next(agent_id, lease_s, work_type)
        if got is None:
            typer.echo("error: nothing to claim", err=True)
            raise typer.Exit(1)
        _show(got, as_json)


@app.command()
def heartbeat(
    work_item_id: str,
    claim_id: str = ClaimId,
    lease_s: float = typer.Option(300.0, "--lease-s", help="Extend the lease by this much."),
    coordination_dir: Path | None = CoordinationDir,
    as_json: bool = AsJson,
) -> None:
    """Keep a claim alive: its lease now ends --lease-s from now."""
    with _ledger(coordination_dir) as ledger:
        _show(ledger.heartbeat(work_item_id, claim_id, lease_s), as_json)


@app.command()
def progress(
    work_item_id: str,
    claim_id: str = ClaimId,
    percent: int = typer.Argument(..., help="0-100"),
    lease_s: float = typer.Option(300.0, "--lease-s", help="Renew the lease by this much."),
    coordination_dir: Path | None = CoordinationDir,
    as_json: bool = AsJson,
) -> None:
    """Record progress on a claimed item (renews the lease)."""
    with _ledger(coordination_dir) as ledger:
        _show(ledger.progress(work_item_id, claim_id, percent, lease_s), as_json)


@app.command()
def complete(
    work_item_id: str,
    claim_id: str = ClaimId,
    result: str = typer.Option("null", "--result", help="Result as JSON."),
    velocity_points: int = typer.Option(1, "--velocity-points"),
    coordination_dir: Path | None = CoordinationDir,
    as_json: bool = AsJson,
) -> None:
    """Complete a claimed item (only its current claim may) and append it to the coordination
    log."""
    from datetime import UTC, datetime

    with _ledger(coordination_dir) as ledger:
        value = _json_arg(result, "--result")
        entry = {
            "work_item_id": work_item_id, "completed_at": datetime.now(UTC).isoformat(),
            "agent_id": ledger.get(work_item_id).agent_id, "result": value,
            "velocity_points": velocity_points, "scenario": "swarm",
            "claim_id": claim_id, "idempotency_key": f"claim:{claim_id}",
        }  # fmt: skip
        done = ledger.complete(work_item_id, claim_id, value, log_entry=entry)
        _snapshot(ledger)
        _show(done, as_json)


@app.command("fail")
def fail_item(
    work_item_id: str,
    claim_id: str = ClaimId,
    error: str = typer.Option(..., "--error", help="What went wrong (kept as last_error)."),
    coordination_dir: Path | None = CoordinationDir,
    as_json: bool = AsJson,
) -> None:
    """Count a failed attempt: the item is pending again, or failed for good at max attempts."""
    with _ledger(coordination_dir) as ledger:
        _show(ledger.fail(work_item_id, claim_id, error), as_json)


@app.command()
def release(
    work_item_id: str,
    claim_id: str = ClaimId,
    coordination_dir: Path | None = CoordinationDir,
    as_json: bool = AsJson,
) -> None:
    """Give a claim back: the item is pending again."""
    with _ledger(coordination_dir) as ledger:
        _show(ledger.release(work_item_id, claim_id), as_json)


@app.command("list")
def list_claims(
    status: str | None = typer.Option(None, "--status", help="Only items with this status."),
    limit: int | None = typer.Option(None, "--limit"),
    coordination_dir: Path | None = CoordinationDir,
    as_json: bool = AsJson,
) -> None:
    """List work items (and refresh the classic work_claims.json)."""
    with _ledger(coordination_dir) as ledger:
        _snapshot(ledger)
        items = ledger.list(status, limit)
        if as_json:
            print_json([c.seed_record() for c in items])
            return
        for c in items:
            _show(c, False)
        counts = ", ".join(f"{k}={v}" for k, v in sorted(ledger.counts().items()))
        typer.echo(f"{len(items)} item(s); ledger: {counts or 'empty'}", err=True)


@app.command()
def blocked(
    coordination_dir: Path | None = CoordinationDir,
    as_json: bool = AsJson,
) -> None:
    """What does not run by itself: pending items waiting on items that failed for good, pending
    items of a type no drain runs without a handler of its own, and the items failed for good
    (dead letters: out of attempts, a lapsed lease counting as one) with their last error."""
    from tasks.swarm.queue.enqueue import unhandled_types

    with _ledger(coordination_dir) as ledger:
        found = ledger.blocked()
        waiting = {t: n for t, n in ledger.pending_types().items() if unhandled_types([t])}
        dead_count = ledger.counts().get("failed", 0)
        dead = {c.work_item_id: c.last_error for c in ledger.list("failed", DEAD_SHOWN)}
    if as_json:
        print_json({"blocked": found, "waiting_for_handler": waiting, "failed": dead})
        return
    for wid, roots in found.items():
        typer.echo(f"{wid}  blocked by failed {', '.join(roots)}")
    for work_type, n in waiting.items():
        typer.echo(f"{n} pending item(s) of type {work_type!r} wait for a drain with a handler")
    for wid, error in dead.items():
        typer.echo(f"{wid}  failed for good: {error}")
    typer.echo(
        f"{len(found)} blocked item(s), {sum(waiting.values())} waiting for a handler, "
        f"{dead_count} failed for good"
        + (f" (the first {DEAD_SHOWN} shown)" if dead_count > DEAD_SHOWN else ""),
        err=True,
    )
