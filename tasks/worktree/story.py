"""The story in the worktree flows' run logs, and the metrics recorded with it: a worktree
created or adopted, each service's outcome (health checks and time to healthy as metrics), each
monitor decision (health checks and restarts as metrics), each teardown. No Prefect: the logger
is given."""

from __future__ import annotations

import logging

from tasks import metrics
from tasks.worktree.models import (
    Logger,
    MonitorCheck,
    ServiceOutcome,
    TeardownItem,
    WorktreeAttempt,
    WorktreeSpec,
)


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
