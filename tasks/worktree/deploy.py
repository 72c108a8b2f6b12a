"""One service's life: install, start, wait until healthy, restart — recorded in the registry.
Plain functions (no Prefect); the @task wrappers and their undo hooks are in `prefect_tasks`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import psutil

from tasks.health import HealthCheck
from tasks.net import port_is_free
from tasks.redaction import known_secrets, redact_text, register_secret
from tasks.telemetry import get_tracer
from tasks.worktree import gitops, health, process
from tasks.worktree.environment import (
    declared_environment,
    process_env,
    restart_environment,
    write_env_file,
)
from tasks.worktree.identity import identify
from tasks.worktree.identity import owner as service_mark
from tasks.worktree.models import (
    DeploymentRequest,
    EnvironmentEntry,
    EnvironmentStatus,
    Preflight,
    ProcessIdentity,
    ServiceOutcome,
    ServiceStatus,
    WorktreeAttempt,
    WorktreeInfo,
    WorktreeSpec,
)
from tasks.worktree.registry import EnvironmentRegistry
from tasks.worktree.secret_names import secret_values


def now() -> datetime:
    return datetime.now(UTC)


def _clean(text: str) -> str:
    """A reason (it may quote a service's log) without any known secret value."""
    return redact_text(text, known_secrets())


def make_worktree(
    preflight: Preflight,
    spec: WorktreeSpec,
    port: int,
    registry: EnvironmentRegistry,
    on_retry: gitops.OnRetry | None = None,
) -> WorktreeAttempt:
    """The service's git worktree, its `.env` and its registry entry. Never raises: failures
    travel as values (see WorktreeAttempt); with `info` set, the worktree exists and must be
    undone on rollback, whatever `error` says."""
    with get_tracer().start_as_current_span("worktree.create") as span:
        span.set_attributes({"worktree.name": spec.name, "worktree.branch": spec.branch})
        try:
            info = gitops.create_worktree(
                preflight.repo_path,
                preflight.worktrees_root,
                spec.name,
                spec.branch,
                spec.base_ref,
                on_retry=on_retry,
            )
        except Exception as exc:  # gitops cleaned up after itself
            return WorktreeAttempt(name=spec.name, error=str(exc))
    try:
        write_env_file(info.path, declared_environment(spec, port, info.path))
        registry.update_environment(
            spec.name,
            worktree_path=info.path,
            repo_path=preflight.repo_path,
            branch=info.branch,
            created_branch=info.created_branch,
            head=info.head,
            status=EnvironmentStatus.worktree_created,
        )
    except Exception as exc:
        return WorktreeAttempt(name=spec.name, info=info, error=f"{type(exc).__name__}: {exc}")
    return WorktreeAttempt(name=spec.name, info=info)


def _traced_start(launch: Callable[..., ServiceOutcome]) -> Callable[..., ServiceOutcome]:
    """`launch` in its own span, never raising: an unexpected error is a failed start."""

    @functools.wraps(launch)
    def run(spec: WorktreeSpec, worktree: WorktreeInfo, port: int, *args: Any) -> ServiceOutcome:
        with get_tracer().start_as_current_span("worktree.deploy_service") as span:
            try:
                outcome = launch(spec, worktree, port, *args)
            except Exception as exc:
                outcome = ServiceOutcome(
                    name=spec.name,
                    status=ServiceStatus.start_failed,
                    port=port,
                    reason=_clean(f"{type(exc).__name__}: {exc}"),
                )
            span.set_attributes(
                {
                    "worktree.name": spec.name,
                    "worktree.port": port,
                    "worktree.status": outcome.status.value,
                    "worktree.time_to_healthy_ms": outcome.time_to_healthy_ms or -1.0,
                }
            )
        return outcome

    return run


def _outcome(spec: WorktreeSpec, worktree: WorktreeInfo, port: int) -> ServiceOutcome:
    """The outcome of a service about to be waited for (healthy until a check says otherwise)."""
    return ServiceOutcome(
        name=spec.name,
        status=ServiceStatus.healthy,
        port=port,
        worktree_path=worktree.path,
        branch=worktree.branch,
        log_path=process.log_path_for(worktree.path, spec.name),
    )


def adopt_service(
    spec: WorktreeSpec,
    worktree: WorktreeInfo,
    port: int,
    request: DeploymentRequest,
    registry: EnvironmentRegistry,
    identity: ProcessIdentity,
    started: datetime,
) -> ServiceOutcome:
    """A service a dead attempt of this run started and that still runs (its identity checked
    by the caller): waited for like a fresh start, never started twice; stopped if it never
    becomes healthy."""
    outcome = _outcome(spec, worktree, port)
    url = health.health_url(port, spec.health_path)
    with get_tracer().start_as_current_span("worktree.adopt_service") as span:
        span.set_attributes({"worktree.name": spec.name, "worktree.pid": identity.pid})
        return _await_health(spec, request, registry, outcome, identity, started, url)


@_traced_start
def run_service(
    spec: WorktreeSpec,
    worktree: WorktreeInfo,
    port: int,
    request: DeploymentRequest,
    registry: EnvironmentRegistry,
    owner: str | None = None,
) -> ServiceOutcome:
    """Install, start and wait for health (in its own span), recording each step in the
    registry. Never raises: the outcome says what failed (an unexpected error is a failed
    start), and a service that started but never became healthy has been stopped again (failed
    never means left running). A port something else listens on fails the start: that
    process's answers are not our health. `owner` marks the process (`identity.owner`)."""
    for value in secret_values(spec.environment_variables):
        register_secret(value)  # logs, spans, artifacts and events redact it from now on
    commands = process.commands_for(spec)
    declared = declared_environment(spec, port, worktree.path)
    env = process_env(declared, {})
    log = process.log_path_for(worktree.path, spec.name)
    outcome = _outcome(spec, worktree, port)
    url = health.health_url(port, spec.health_path)
    # what the monitor needs to find and restart the service; written with the next status
    # change (one locked write fewer on the critical path when there is no install step).
    # `service_env` is stored with secrets redacted (EnvironmentEntry); a restart takes them
    # from its own environment (environment.restart_environment).
    meta = {
        "type": spec.type,
        "dependencies": list(spec.dependencies),
        "start_command": commands.start,
        "service_env": declared,  # what it got beyond the base environment
        "log_path": log,
        "health_url": url,
    }
    if commands.install:
        registry.update_environment(spec.name, status=EnvironmentStatus.installing, **meta)
        code, install_ms = process.run_install(
            commands.install, worktree.path, env, log, request.install_timeout_s
        )
        outcome.install_ms = round(install_ms, 1)
        if code != 0:
            outcome.status = ServiceStatus.install_failed
            outcome.reason = _clean(
                f"install {commands.install} exited {code}: {process.log_tail(log)}"
            )
            registry.update_environment(
                spec.name, status=EnvironmentStatus.install_failed, reason=outcome.reason, **meta
            )
            return outcome
    started = now()
    try:
        if not port_is_free(port):
            raise process.StartFailed(f"port {port} is in use by another process")
        identity = process.start_process(commands.start, worktree.path, env, log, owner)
    except process.StartFailed as exc:
        outcome.status = ServiceStatus.start_failed
        outcome.reason = _clean(str(exc))
        registry.update_environment(
            spec.name, status=EnvironmentStatus.start_failed, reason=outcome.reason, **meta
        )
        return outcome
    try:
        registry.update_environment(
            spec.name,
            status=EnvironmentStatus.starting,
            process=identity,
            started_at=started,
            **meta,
        )
        return _await_health(spec, request, registry, outcome, identity, started, url)
    except BaseException:
        process.stop_process(identity)  # never leave a process the registry may not know
        raise


def _await_health(
    spec: WorktreeSpec,
    request: DeploymentRequest,
    registry: EnvironmentRegistry,
    outcome: ServiceOutcome,
    identity: ProcessIdentity,
    started: datetime,
    url: str,
) -> ServiceOutcome:
    outcome.pid, outcome.started_at, outcome.process = identity.pid, started, identity
    check, checks = _wait_healthy(
        identity, url, request.health_check_timeout_s, request.health_poll_interval_s
    )
    outcome.health_checks = checks
    outcome.health_latency_ms = round(check.latency_ms, 2)
    if check.healthy:
        outcome.healthy_at = now()
        outcome.time_to_healthy_ms = round((outcome.healthy_at - started).total_seconds() * 1000, 1)
        outcome.process = _settled(identity)
        registry.update_environment(
            spec.name,
            status=EnvironmentStatus.healthy,
            process=outcome.process,
            healthy_at=outcome.healthy_at,
            health_latency_ms=outcome.health_latency_ms,
            consecutive_failures=0,
            restarts=[],
        )
        return outcome
    # a service that never became healthy is stopped: "failed" never means "left running"
    if process.stop_process(identity):
        outcome.compensation = f"stopped {spec.name} (pid {identity.pid}): never became healthy"
    outcome.status = ServiceStatus.unhealthy
    outcome.pid = outcome.process = None
    tail = process.log_tail(outcome.log_path) if outcome.log_path else ""
    outcome.reason = _clean(f"{url}: {check.detail}; log: {tail}")
    registry.update_environment(
        spec.name, status=EnvironmentStatus.unhealthy, process=None, reason=outcome.reason
    )
    return outcome


def _wait_healthy(
    identity: ProcessIdentity, url: str, timeout_s: float, interval_s: float
) -> tuple[HealthCheck, int]:
    """`health.wait_healthy` for the service `identity`: its answers count while it runs and
    listens on the URL's port."""
    port = urlsplit(url).port
    return health.wait_healthy(
        url,
        timeout_s,
        interval_s,
        still_running=lambda: process.is_alive(identity),
        listens=lambda: process.listens_on(identity, port) if port else None,
    )


def _settled(identity: ProcessIdentity) -> ProcessIdentity:
    """The identity once the service answers: a start command that execs another program
    (`mix` -> `elixir` -> `beam.smp`) keeps its pid but changes its command line."""
    try:
        return identify(identity.pid)
    except psutil.NoSuchProcess:
        return identity


def restart_service(
    name: str, entry: EnvironmentEntry, timeout_s: float, interval_s: float
) -> tuple[ProcessIdentity | None, HealthCheck, datetime]:
    """Stop what is left of the registered service `name` and start it again from its recorded
    command, marked like a deployed one (`identity.owner`: a restarter that dies before it
    records the new process leaves it findable by teardown); returns (identity or None, health
    check, started_at)."""
    process.stop_process(entry.process)
    started = now()
    assert entry.worktree_path is not None
    env, why = restart_environment(entry.service_env, entry.worktree_path)
    if env is None or entry.start_command is None or entry.health_url is None:
        detail = why or "cannot restart: no start command or health URL recorded"
        return None, HealthCheck(healthy=False, latency_ms=0.0, detail=detail), started
    assert entry.worktree_path is not None and entry.log_path is not None
    try:
        mark = service_mark(entry.run_id or "restart", name)
        identity = process.start_process(
            entry.start_command, entry.worktree_path, env, entry.log_path, mark
        )
    except process.StartFailed as exc:
        return None, HealthCheck(healthy=False, latency_ms=0.0, detail=str(exc)), started
    check, _ = _wait_healthy(identity, entry.health_url, timeout_s, interval_s)
    if check.healthy:
        identity = _settled(identity)
    check.detail = _clean(check.detail)
    return identity, check, started
