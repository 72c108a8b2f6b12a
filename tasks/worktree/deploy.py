"""One service's life: install, start, wait until healthy, stop — recorded in the registry.
Plain functions (no Prefect); the @task wrappers and their undo hooks are in the package init."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tasks.store import JsonStore
from tasks.worktree import health, process
from tasks.worktree.models import (
    DeploymentRequest,
    HealthCheck,
    ServiceOutcome,
    ServiceStatus,
    WorktreeInfo,
    WorktreeSpec,
)
from tasks.worktree.registry import Registry, database_names, update_environment

LOG_DIR = ".reactor-logs"  # inside the worktree: removing the worktree removes the logs


def log_path_for(worktree: Path, name: str) -> Path:
    return worktree / LOG_DIR / f"{name}.log"


def now() -> datetime:
    return datetime.now(UTC)


def launch_service(
    spec: WorktreeSpec,
    worktree: WorktreeInfo,
    port: int,
    request: DeploymentRequest,
    store: JsonStore[Registry],
) -> ServiceOutcome:
    """Install, start and wait for health, recording each step in the registry. Never raises
    for the service's own failures: the outcome says what failed, and a service that started
    but never became healthy has been stopped again (failed never means left running)."""
    commands = process.commands_for(spec)
    ours = process.service_environment(spec, port, worktree.path, database_names(spec.name))
    env = process.process_env(ours, spec.environment_variables)
    log = log_path_for(worktree.path, spec.name)
    outcome = ServiceOutcome(
        name=spec.name,
        status=ServiceStatus.healthy,
        port=port,
        worktree_path=worktree.path,
        branch=worktree.branch,
        log_path=log,
    )
    url = health.health_url(port, spec.health_path)
    # what the monitor needs to find and restart the service; written with the next status
    # change (one locked write fewer on the critical path when there is no install step)
    meta = {
        "type": spec.type.value,
        "dependencies": list(spec.dependencies),
        "start_command": commands.start,
        "service_env": {**ours, **spec.environment_variables},
        "log_path": str(log),
        "health_url": url,
    }
    if commands.install:
        update_environment(store, spec.name, status="installing", **meta)
        code, install_ms = process.run_install(
            commands.install, worktree.path, env, log, request.install_timeout_s
        )
        outcome.install_ms = round(install_ms, 1)
        if code != 0:
            outcome.status = ServiceStatus.install_failed
            outcome.reason = f"install {commands.install} exited {code}: {process.log_tail(log)}"
            update_environment(
                store, spec.name, status="install_failed", reason=outcome.reason, **meta
            )
            return outcome
    started = now()
    try:
        pid = process.start_process(commands.start, worktree.path, env, log)
    except process.StartFailed as exc:
        outcome.status = ServiceStatus.start_failed
        outcome.reason = str(exc)
        update_environment(store, spec.name, status="start_failed", reason=outcome.reason, **meta)
        return outcome
    try:
        update_environment(
            store, spec.name, status="starting", pid=pid, started_at=started.isoformat(), **meta
        )
        return _await_health(spec, request, store, outcome, pid, started, url, log)
    except BaseException:
        process.stop_process(pid)  # never leave a process the registry may not know
        raise


def _await_health(spec, request, store, outcome, pid, started, url, log) -> ServiceOutcome:
    outcome.pid, outcome.started_at = pid, started
    check, checks = health.wait_healthy(
        url,
        request.health_check_timeout_s,
        request.health_poll_interval_s,
        still_running=lambda: process.is_alive(pid),
    )
    outcome.health_checks = checks
    outcome.health_latency_ms = round(check.latency_ms, 2)
    if check.healthy:
        outcome.healthy_at = now()
        outcome.time_to_healthy_ms = round((outcome.healthy_at - started).total_seconds() * 1000, 1)
        update_environment(
            store,
            spec.name,
            status="healthy",
            healthy_at=outcome.healthy_at.isoformat(),
            health_latency_ms=outcome.health_latency_ms,
            consecutive_failures=0,
            restarts=[],
        )
        return outcome
    # a service that never became healthy is stopped: "failed" never means "left running"
    process.stop_process(pid)
    outcome.status = ServiceStatus.unhealthy
    outcome.pid = None
    outcome.reason = f"{url}: {check.detail}; log: {process.log_tail(log)}"
    update_environment(store, spec.name, status="unhealthy", pid=None, reason=outcome.reason)
    return outcome


def restart_service(entry: dict[str, Any], timeout_s: float, interval_s: float):
    """Stop what is left of a registered service and start it again from its recorded command;
    returns (pid or None, health check, started_at)."""
    process.stop_process(entry.get("pid"))
    cwd = Path(entry["worktree_path"])
    env = process.process_env({}, entry.get("service_env", {}))
    started = now()
    try:
        pid = process.start_process(entry["start_command"], cwd, env, Path(entry["log_path"]))
    except process.StartFailed as exc:
        return None, HealthCheck(healthy=False, latency_ms=0.0, detail=str(exc)), started
    check, _ = health.wait_healthy(
        entry["health_url"], timeout_s, interval_s, still_running=lambda: process.is_alive(pid)
    )
    return pid, check, started
