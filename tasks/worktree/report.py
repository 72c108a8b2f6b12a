"""What the worktree flows report: the `worktree_deployments` dataset (rows and schema), the
artifacts (stable keys, so the UI shows each report's history), the coordination-log entry,
the story lines of the run logs and the metrics recorded with them."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from tasks import metrics
from tasks.artifacts import markdown_table, publish_markdown, publish_table
from tasks.coordination_log import append_entries
from tasks.events import emit
from tasks.export import Column, export_dataset
from tasks.settings import get_settings
from tasks.worktree.models import (
    DeploymentResult,
    Logger,
    MonitorCheck,
    ServiceOutcome,
    TeardownItem,
    TeardownResult,
    UnsavedWork,
    WorktreeAttempt,
    WorktreeSpec,
)

SCENARIO = "worktree"
DEPLOYMENT_KEY = "worktree-deployment"
HEALTH_KEY = "worktree-health"
TEARDOWN_KEY = "worktree-teardown"
DATASET = "worktree_deployments"

DEPLOYMENT_SCHEMA = {
    "run_id": Column.str,
    "name": Column.str,
    "status": Column.str,
    "port": Column.int,
    "pid": Column.int,
    "branch": Column.str,
    "worktree_path": Column.str,
    "started_at": Column.timestamp,
    "healthy_at": Column.timestamp,
    "install_ms": Column.float,
    "time_to_healthy_ms": Column.float,
    "health_latency_ms": Column.float,
    "health_checks": Column.int,
    "reason": Column.str,
}


def service_rows(result: DeploymentResult) -> list[dict[str, Any]]:
    """One row per service, skipped ones included, with exactly the schema's columns."""
    empty = dict.fromkeys(DEPLOYMENT_SCHEMA)
    rows = []
    for s in result.services:
        dumped = s.model_dump(mode="json", include=set(DEPLOYMENT_SCHEMA))
        rows.append({**empty, **dumped, "run_id": result.run_id})
    for name, why in result.skipped.items():
        rows.append({**empty, "run_id": result.run_id, "name": name, "status": "skipped"})
        rows[-1]["reason"] = why
    return rows


def deployment_markdown(result: DeploymentResult, rows: list[dict[str, Any]]) -> str:
    columns = ["name", "status", "port", "pid", "branch", "time_to_healthy_ms", "reason"]
    head = "rolled back" if result.rolled_back else f"{result.healthy} healthy"
    text = (
        f"# Worktree deployment\n\n{head}, {result.failed} failed, {len(result.skipped)} "
        f"skipped in {result.duration_ms:.0f} ms; batches {result.batches}.\n\n"
        + markdown_table(rows, columns)
    )
    if result.compensations:
        text += "\n## Undone\n\n" + "".join(f"- {c}\n" for c in result.compensations)
    return text


def publish_deployment(result: DeploymentResult) -> None:
    """Table + markdown artifacts and an event; for a deployment that stands, also a
    coordination-log entry and the dataset (a rolled-back one left nothing to describe)."""
    settings = get_settings()
    rows = service_rows(result)
    publish_table(DEPLOYMENT_KEY, rows, "Services of this deployment")
    publish_markdown(
        f"{DEPLOYMENT_KEY}-summary",
        deployment_markdown(result, rows),
        "Worktree deployment summary",
    )
    if result.rolled_back:
        undone = {"compensations": result.compensations}
        emit(SCENARIO, "deployment.rolled_back", result.run_id, undone)
        return
    emit(SCENARIO, "deployment.completed", result.run_id, {"healthy": result.healthy})
    append_entries(
        [
            {
                "scenario": SCENARIO,
                "run_id": result.run_id,
                "completed_at": datetime.now(UTC).isoformat(),
                "services": {s.name: s.status.value for s in result.services},
                "skipped": sorted(result.skipped),
            }
        ],
        settings,
    )
    export_dataset(
        rows,
        DATASET,
        result.run_id,
        DEPLOYMENT_SCHEMA,
        ("json", "jsonl", "csv", "parquet"),
        settings.exports_dir,
    )


def publish_health(checks: list[MonitorCheck], rounds: int) -> None:
    rows = [c.model_dump(mode="json") for c in checks]
    actions = [c for c in checks if c.action != "none"]
    publish_table(HEALTH_KEY, rows, "Last round of health checks")
    publish_markdown(
        f"{HEALTH_KEY}-summary",
        f"# Worktree health\n\n{sum(c.healthy for c in checks)}/{len(checks)} healthy after "
        f"{rounds} round(s); {len(actions)} action(s).\n\n"
        + markdown_table(rows, ["name", "healthy", "consecutive_failures", "action", "detail"]),
        "Worktree health summary",
    )


def publish_teardown(result: TeardownResult | None, refused: list[UnsavedWork]) -> None:
    """The teardown's table and markdown summary; a refused teardown says what was at risk."""
    if result is None:
        lines = "".join(f"- refused: {u.line()}\n" for u in refused)
        text = "# Worktree teardown\n\nNothing was touched.\n\n" + lines
        text += "\nCommit or push the work, or tear down with `--force` to discard it.\n"
        publish_markdown(f"{TEARDOWN_KEY}-summary", text, "Worktree teardown summary")
        return
    rows = [i.model_dump(mode="json") for i in result.items]
    publish_table(TEARDOWN_KEY, rows, "Teardown")
    columns = ["name", "stopped_pid", "worktree_removed", "branch_deleted", "port_released"]
    forced = "".join(f"- forced: {u.line()}\n" for u in refused)
    publish_markdown(
        f"{TEARDOWN_KEY}-summary",
        f"# Worktree teardown\n\n{len(result.items)} environment(s) removed; pruned "
        f"{len(result.pruned)} repositor(ies).\n\n" + markdown_table(rows, columns) + forced,
        "Worktree teardown summary",
    )


# -- the story in the run logs, and the metrics recorded with it --------------------------------


def log_worktree(logger: Logger, spec: WorktreeSpec, attempt: WorktreeAttempt) -> None:
    if attempt.info is not None:
        info = attempt.info
        how = f"new branch {info.branch} from {spec.base_ref}" if info.created_branch else None
        logger.info(
            "worktree %s created at %s (%s)", spec.name, info.path, how or f"adopted {info.branch}"
        )
    if attempt.error:
        logger.error("worktree %s failed: %s", spec.name, attempt.error)


def log_service(logger: Logger, outcome: ServiceOutcome) -> None:
    """The service's outcome line, its health checks and time to healthy as metrics."""
    service = {"service": outcome.name}
    failed_checks = outcome.health_checks - (1 if outcome.ok else 0)
    metrics.health_checks.add(failed_checks, {**service, "healthy": "false"})
    if not outcome.ok:
        logger.error("%s %s: %s", outcome.name, outcome.status.value, outcome.reason)
        return
    metrics.health_checks.add(1, {**service, "healthy": "true"})
    metrics.time_to_healthy.record((outcome.time_to_healthy_ms or 0) / 1000, service)
    logger.info(
        "%s healthy (pid %s) after %.0f ms, %d health check(s)",
        outcome.name,
        outcome.pid,
        outcome.time_to_healthy_ms or 0,
        outcome.health_checks,
    )


def log_check(logger: Logger, check: MonitorCheck) -> None:
    """One monitor decision, with its health check and restart as metrics."""
    if check.action != "busy":
        healthy = str(check.healthy).lower()
        metrics.health_checks.add(1, {"service": check.name, "healthy": healthy})
    if check.action in ("restarted", "restart_failed"):
        metrics.restarts.add(1, {"service": check.name, "outcome": check.action})
    level = logging.INFO if check.action in ("none", "restarted") else logging.WARNING
    verdict = "healthy" if check.healthy else f"unhealthy ({check.detail})"
    now = f", now pid {check.pid}" if check.action == "restarted" else ""
    logger.log(
        level,
        "%s: %s; %d consecutive failure(s); action: %s%s",
        check.name,
        verdict,
        check.consecutive_failures,
        check.action,
        now,
    )


def log_teardown(logger: Logger, item: TeardownItem) -> None:
    logger.info(
        "teardown %s: stopped pid %s, port %s released; %s",
        item.name,
        item.stopped_pid,
        item.port_released,
        item.detail or "nothing else to undo",
    )
