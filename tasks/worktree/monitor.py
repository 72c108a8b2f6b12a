"""Health monitoring and auto-recovery, without Prefect.

Each round checks every watched service in the registry. A failure increments the service's
consecutive-failure count; at `failure_threshold` it is restarted from its recorded command,
unless it is inside its backoff window (delay `min(base * 2**restarts_this_hour, cap)` after the
last restart) or has used up `max_restarts_per_hour`. Every notable change is an alert: a line in
`<coordination_dir>/worktree_alerts.jsonl` (and a Prefect event, raised by the task).

Check, decide and act happen under the service's own file lock, on the entry as read under that
lock: two overlapping monitor passes (or a pass and a teardown) never restart a service twice
or bring back one that is being torn down. A pass that finds the lock held reports `busy`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from tasks.jsonl import append_jsonl, read_jsonl
from tasks.worktree import health, process
from tasks.worktree.deploy import now, restart_service
from tasks.worktree.models import (
    EnvironmentEntry,
    EnvironmentStatus,
    MonitorCheck,
    MonitorRequest,
    ServiceOutcome,
)
from tasks.worktree.registry import EnvironmentRegistry

ALERTS_FILE = "worktree_alerts.jsonl"
LOCK_DIR = "worktree_locks"
WATCHED = {
    EnvironmentStatus.healthy,
    EnvironmentStatus.degraded,
    EnvironmentStatus.restart_failed,
    EnvironmentStatus.restart_capped,
}


def service_lock(coordination_dir: Path, name: str) -> FileLock:
    """The lock a monitor pass or a teardown holds while it acts on service `name`."""
    path = Path(coordination_dir) / LOCK_DIR / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(path)


@dataclass(frozen=True)
class Decision:
    action: str  # none | restart | backoff | capped
    consecutive_failures: int
    recent_restarts: list[datetime] = field(default_factory=list)


def restarts_in_last_hour(restarts: list[datetime], at: datetime) -> list[datetime]:
    cutoff = at - timedelta(hours=1)
    return [r for r in restarts if r > cutoff]


def backoff_s(restarts_this_hour: int, base: float, cap: float) -> float:
    return min(base * 2**restarts_this_hour, cap) if restarts_this_hour else 0.0


def decide(
    failures_so_far: int,
    restarts: list[datetime],
    healthy: bool,
    at: datetime,
    req: MonitorRequest,
) -> Decision:
    """What to do about one service after one check (pure)."""
    recent = restarts_in_last_hour(restarts, at)
    if healthy:
        return Decision("none", 0, recent)
    failures = failures_so_far + 1
    if failures < req.failure_threshold:
        return Decision("none", failures, recent)
    if len(recent) >= req.max_restarts_per_hour:
        return Decision("capped", failures, recent)
    if recent:
        wait = backoff_s(len(recent), req.restart_backoff_s, req.restart_backoff_cap_s)
        if at < recent[-1] + timedelta(seconds=wait):
            return Decision("backoff", failures, recent)
    return Decision("restart", failures, recent)


def append_alerts(path: Path, alerts: list[dict[str, Any]]) -> None:
    append_jsonl(path, alerts)


def read_alerts(path: Path) -> list[dict[str, Any]]:
    return read_jsonl(path)


def is_watched(entry: EnvironmentEntry | None) -> bool:
    return entry is not None and entry.status in WATCHED and bool(entry.health_url)


def watched(
    registry: EnvironmentRegistry, names: list[str] | None = None
) -> dict[str, EnvironmentEntry]:
    return {
        n: e
        for n, e in registry.environments().items()
        if is_watched(e) and (names is None or n in names)
    }


def enable(
    registry: EnvironmentRegistry,
    outcomes: list[ServiceOutcome],
    skipped: dict[str, str],
    auto_recovery: bool,
) -> list[str]:
    """Record the skipped services and put the healthy ones under watch, with fresh failure
    and restart counts; returns the watched names."""
    for name, why in skipped.items():
        registry.update_environment(name, status="skipped", reason=why)
    healthy = [o.name for o in outcomes if o.ok]
    for name in healthy:
        registry.update_environment(
            name, auto_recovery=auto_recovery, consecutive_failures=0, restarts=[]
        )
    return healthy


def check_round(
    request: MonitorRequest, registry: EnvironmentRegistry, coordination_dir: Path
) -> tuple[list[MonitorCheck], list[dict[str, Any]]]:
    """Check every watched service once, each under its own lock (one another pass holds is
    reported `busy`), restarting after the failure threshold; the alerts are appended to the
    alerts file and returned with the checks."""
    checks, alerts = [], []
    for name, entry in sorted(watched(registry, request.names).items()):
        lock = service_lock(coordination_dir, name)
        check, new_alerts = check_locked(name, request, registry, lock, entry)
        if check is not None:
            checks.append(check)
            alerts.extend(new_alerts)
    append_alerts(coordination_dir / ALERTS_FILE, alerts)
    return checks, alerts


def check_locked(
    name: str,
    req: MonitorRequest,
    registry: EnvironmentRegistry,
    lock: FileLock,
    stale: EnvironmentEntry,
) -> tuple[MonitorCheck | None, list[dict[str, Any]]]:
    """Check (and act on) `name` holding its lock, on its entry as it is now; `busy` when
    another pass holds the lock; None when the service left the watched set meanwhile."""
    try:
        lock.acquire(timeout=0)
    except Timeout:
        busy = MonitorCheck(
            name=name,
            healthy=stale.status is EnvironmentStatus.healthy,
            process_alive=process.is_alive(stale.process),
            consecutive_failures=stale.consecutive_failures,
            action="busy",
            detail="another monitor pass or a teardown is acting on it",
            pid=stale.pid,
        )
        return busy, []
    try:
        entry = registry.entry(name)
        if entry is None or not is_watched(entry):
            return None, []
        # a deployment with auto-recovery off is watched and alerted on, never restarted
        if not entry.auto_recovery:
            req = req.model_copy(update={"max_restarts_per_hour": 0})
        return check_service(name, entry, req, registry)
    finally:
        lock.release()


def check_service(
    name: str, entry: EnvironmentEntry, req: MonitorRequest, registry: EnvironmentRegistry
) -> tuple[MonitorCheck, list[dict[str, Any]]]:
    """One check of one service, acting on the decision; returns the check and its alerts."""
    assert entry.health_url is not None
    pid = entry.pid
    alive = process.is_alive(entry.process)
    result = health.check_health(entry.health_url, timeout_s=req.health_timeout_s)
    at = now()
    decision = decide(entry.consecutive_failures, entry.restarts, result.healthy, at, req)
    check = MonitorCheck(
        name=name,
        healthy=result.healthy,
        process_alive=alive,
        consecutive_failures=decision.consecutive_failures,
        action="none",
        detail=result.detail if alive or result.healthy else f"process {pid} is gone",
        latency_ms=round(result.latency_ms, 2),
        pid=pid,
    )
    alerts: list[dict[str, Any]] = []

    def alert(kind: str, detail: str) -> None:
        alerts.append(
            {
                "at": at.isoformat(),
                "name": name,
                "kind": kind,
                "consecutive_failures": decision.consecutive_failures,
                "pid": pid,
                "detail": detail,
            }
        )

    fields: dict[str, Any] = {
        "consecutive_failures": decision.consecutive_failures,
        "last_check": {"at": at, "healthy": result.healthy, "detail": check.detail},
    }
    if result.healthy:
        fields["status"] = EnvironmentStatus.healthy
    elif decision.action == "none":
        fields["status"] = EnvironmentStatus.degraded
        if decision.consecutive_failures == 1:
            check.action = "alert"
            alert("unhealthy", check.detail)
    elif decision.action in ("backoff", "capped"):
        check.action = decision.action  # type: ignore[assignment]
        if decision.action == "capped":
            fields["status"] = EnvironmentStatus.restart_capped
            alert("restart_capped", f"{len(decision.recent_restarts)} restarts in the last hour")
    else:
        _restart(entry, req, decision, check, fields, alert)
    registry.update_environment(name, **fields)
    return check, alerts


def _restart(entry, req, decision, check, fields, alert) -> None:
    identity, after, started = restart_service(
        check.name, entry, req.restart_health_timeout_s, req.health_poll_interval_s
    )
    fields.update(restarts=[*decision.recent_restarts, started], process=identity)
    fields["started_at"] = started
    check.pid = identity.pid if identity else None
    if after.healthy:
        check.action = "restarted"
        fields.update(status=EnvironmentStatus.healthy, consecutive_failures=0, healthy_at=now())
        check.consecutive_failures = 0
        alert(
            "restarted",
            f"pid {entry.pid} -> {check.pid} after {decision.consecutive_failures} failures",
        )
    else:
        check.action, check.detail = "restart_failed", after.detail
        process.stop_process(identity)
        fields.update(status=EnvironmentStatus.restart_failed, process=None)
        check.pid = None
        alert("restart_failed", after.detail)
