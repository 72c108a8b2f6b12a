"""Health monitoring and auto-recovery (SPEC §5 step 6), without Prefect.

Each round checks every watched service in the registry. A failure increments the service's
consecutive-failure count; at `failure_threshold` it is restarted from its recorded command,
unless it is inside its backoff window (delay `min(base * 2**restarts_this_hour, cap)` after the
last restart) or has used up `max_restarts_per_hour`. Every notable change is an alert: a line in
`<coordination_dir>/worktree_alerts.jsonl` (and a Prefect event, raised by the flow).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tasks.store import JsonStore
from tasks.worktree import health, process
from tasks.worktree.deploy import now, restart_service
from tasks.worktree.models import MonitorCheck, MonitorRequest
from tasks.worktree.registry import Registry, update_environment

ALERTS_FILE = "worktree_alerts.jsonl"
WATCHED = {"healthy", "degraded", "restart_failed", "restart_capped"}


@dataclass(frozen=True)
class Decision:
    action: str  # none | restart | backoff | capped
    consecutive_failures: int
    recent_restarts: list[str]


def restarts_in_last_hour(entry: dict[str, Any], at: datetime) -> list[str]:
    cutoff = at - timedelta(hours=1)
    return [r for r in entry.get("restarts", []) if datetime.fromisoformat(r) > cutoff]


def backoff_s(restarts_this_hour: int, base: float, cap: float) -> float:
    return min(base * 2**restarts_this_hour, cap) if restarts_this_hour else 0.0


def decide(entry: dict[str, Any], healthy: bool, at: datetime, req: MonitorRequest) -> Decision:
    """What to do about one service after one check (pure)."""
    recent = restarts_in_last_hour(entry, at)
    if healthy:
        return Decision("none", 0, recent)
    failures = int(entry.get("consecutive_failures", 0)) + 1
    if failures < req.failure_threshold:
        return Decision("none", failures, recent)
    if len(recent) >= req.max_restarts_per_hour:
        return Decision("capped", failures, recent)
    if recent:
        wait = backoff_s(len(recent), req.restart_backoff_s, req.restart_backoff_cap_s)
        if at < datetime.fromisoformat(recent[-1]) + timedelta(seconds=wait):
            return Decision("backoff", failures, recent)
    return Decision("restart", failures, recent)


def append_alerts(path: Path, alerts: list[dict[str, Any]]) -> None:
    if not alerts:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    # one write() on an O_APPEND file: concurrent monitors never interleave lines
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("".join(json.dumps(a, default=str) + "\n" for a in alerts))


def read_alerts(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def check_service(
    name: str, entry: dict[str, Any], req: MonitorRequest, store: JsonStore[Registry]
) -> tuple[MonitorCheck, list[dict[str, Any]]]:
    """One check of one service, acting on the decision; returns the check and its alerts."""
    pid = entry.get("pid")
    alive = process.is_alive(pid)
    result = health.check_health(entry["health_url"], timeout_s=req.health_timeout_s)
    at = now()
    decision = decide(entry, result.healthy, at, req)
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
        "last_check": {"at": at.isoformat(), "healthy": result.healthy, "detail": check.detail},
    }
    if result.healthy:
        fields["status"] = "healthy"
    elif decision.action == "none":
        fields["status"] = "degraded"
        if decision.consecutive_failures == 1:
            check.action = "alert"
            alert("unhealthy", check.detail)
    elif decision.action in ("backoff", "capped"):
        check.action = decision.action
        if decision.action == "capped":
            fields["status"] = "restart_capped"
            alert("restart_capped", f"{len(decision.recent_restarts)} restarts in the last hour")
    else:
        new_pid, after, started = restart_service(
            entry, req.restart_health_timeout_s, req.health_poll_interval_s
        )
        fields["restarts"] = [*decision.recent_restarts, started.isoformat()]
        fields["pid"] = new_pid
        fields["started_at"] = started.isoformat()
        check.pid = new_pid
        if after.healthy:
            check.action = "restarted"
            fields.update(status="healthy", consecutive_failures=0, healthy_at=now().isoformat())
            check.consecutive_failures = 0
            alert(
                "restarted",
                f"pid {pid} -> {new_pid} after {decision.consecutive_failures} failures",
            )
        else:
            check.action = "restart_failed"
            if new_pid:
                process.stop_process(new_pid)
            fields.update(status="restart_failed", pid=None)
            check.pid = None
            alert("restart_failed", after.detail)
    update_environment(store, name, **fields)
    return check, alerts


def watched(store: JsonStore[Registry], names: list[str] | None = None) -> dict[str, dict]:
    envs = store.read().get("worktree_environments", {})
    return {
        n: e
        for n, e in envs.items()
        if e.get("status") in WATCHED and e.get("health_url") and (names is None or n in names)
    }
