"""The worktree scenario's Prefect tasks: every side effect registers an undo hook, so a failure
anywhere inside `compensating(...)` leaves no worktree, branch, process, port or registry entry.
The hooks record what they undid without logging it: the flow logs every compensation once,
with the failed services' stops that no hook made."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.transactions import Transaction

from tasks.compensation import record_compensation, remember
from tasks.events import emit
from tasks.settings import get_settings
from tasks.telemetry import get_tracer
from tasks.worktree import adopt, monitor, process, story, teardown
from tasks.worktree.models import (
    DeploymentRequest,
    MonitorCheck,
    MonitorRequest,
    Preflight,
    ServiceOutcome,
    TeardownItem,
    UnsavedWork,
    WorktreeAttempt,
    WorktreeInfo,
    WorktreeSpec,
)
from tasks.worktree.publish import SCENARIO
from tasks.worktree.registry import open_registry


@task(cache_policy=NO_CACHE, task_run_name="allocate-ports")
def allocate_ports(request: DeploymentRequest, run_id: str | None = None) -> dict[str, int]:
    """One locked registry update for every worktree's port (idempotent per name). A retried
    run keeps the ports its dead attempt allocated, and a rollback releases those too."""
    registry = open_registry()
    with get_tracer().start_as_current_span("worktree.allocate_ports") as span:
        ports, new = registry.allocate_ports(
            {w.name: w.port for w in request.worktrees}, request.port_range, run_id=run_id
        )
        span.set_attribute("worktree.ports", [f"{n}={p}" for n, p in ports.items()])
    earlier = [n for n in adopt.owned(registry, run_id) if n not in new] if run_id else []
    if earlier:
        get_run_logger().info("adopted the ports of %s from this run's dead attempt", earlier)
    remember(allocated=[*new, *earlier], ports=ports)
    get_run_logger().info("ports %s (%d newly allocated)", ports, len(new))
    return ports


@allocate_ports.on_rollback
def _release_ports(txn: Transaction) -> None:
    ports = txn.get("ports", {})
    for name, port in open_registry().release(txn.get("allocated", [])):
        record_compensation(f"released port {port or ports.get(name)} and registry entry of {name}")


@task(cache_policy=NO_CACHE, task_run_name="worktree-{spec.name}")
def create_worktree(
    preflight: Preflight, spec: WorktreeSpec, port: int, run_id: str | None = None
) -> WorktreeAttempt:
    """`git worktree add` (new branch from base_ref when the branch does not exist), validated
    with `git worktree list --porcelain`, plus its `.env` and registry entry. Never raises:
    a task that raises inside a transaction rolls it back while its siblings still run. A
    worktree this run's dead attempt made and registered is adopted, not made again."""
    logger = get_run_logger()
    attempt = adopt.worktree(preflight, spec, port, open_registry(), run_id, logger)
    if attempt.info is not None:  # made: the undo hook must see it, whatever came after
        remember(worktree=attempt.info, repo_path=preflight.repo_path)
    story.log_worktree(logger, spec, attempt)
    return attempt


@create_worktree.on_rollback
def _remove_worktree(txn: Transaction) -> None:
    info: WorktreeInfo | None = txn.get("worktree", None)
    if info is None:
        return
    # a dead attempt of this run may have started its service, which this attempt never reached
    for done in teardown.undo_worktree(open_registry(), txn.get("repo_path"), info):
        record_compensation(done)


@task(cache_policy=NO_CACHE, task_run_name="start-{spec.name}")
def deploy_service(
    request: DeploymentRequest,
    spec: WorktreeSpec,
    worktree: WorktreeInfo,
    port: int,
    run_id: str | None = None,
    resuming: bool = False,
) -> ServiceOutcome:
    """Install, start (own session, logs to a file, identity in the registry), poll health.
    When `resuming`, a service this run's dead attempt started that still runs (same pid,
    start time and command line, or carrying this run's mark when the attempt died before
    recording it) is adopted; one that is gone is started again."""
    logger, registry = get_run_logger(), open_registry()
    outcome = adopt.service(request, spec, worktree, port, registry, run_id, resuming, logger)
    remember(process=outcome.process, name=spec.name)
    story.log_service(logger, outcome)
    event = "service.healthy" if outcome.ok else "service.failed"
    emit(SCENARIO, event, spec.name, outcome.model_dump(mode="json", exclude={"process"}))
    return outcome


@deploy_service.on_rollback
def _stop_service(txn: Transaction) -> None:
    started = txn.get("process")
    if started is not None and process.stop_process(started):
        record_compensation(f"stopped {txn.get('name')} (pid {started.pid})")


@task(cache_policy=NO_CACHE, task_run_name="setup-monitoring")
def setup_monitoring(
    request: DeploymentRequest, outcomes: list[ServiceOutcome], skipped: dict[str, str]
) -> bool:
    """Record the skipped services, and mark the healthy ones as watched by the health
    monitor (auto-recovery on or off)."""
    healthy = monitor.enable(open_registry(), outcomes, skipped, request.enable_auto_recovery)
    emit(SCENARIO, "monitoring.enabled", "deployment", {"services": [o.name for o in outcomes]})
    recovery = "on" if request.enable_auto_recovery else "off"
    get_run_logger().info("monitor watches %s; auto-recovery %s", healthy, recovery)
    return request.enable_auto_recovery


@task(cache_policy=NO_CACHE, task_run_name="check-services-round-{round_no}")
def monitor_round(request: MonitorRequest, round_no: int) -> list[MonitorCheck]:
    """Check every watched service once, each under its own lock; restart after the failure
    threshold; alert."""
    settings, logger = get_settings(), get_run_logger()
    checks, alerts = monitor.check_round(request, open_registry(), settings.coordination_dir)
    for check in checks:
        story.log_check(logger, check)
    for alert in alerts:
        emit(SCENARIO, f"alert.{alert['kind']}", alert["name"], alert)
    return checks


@task(cache_policy=NO_CACHE, task_run_name="check-unsaved-work")
def find_unsaved_work(names: list[str]) -> list[UnsavedWork]:
    """What removing each worktree would destroy (only the worktrees with something at risk)."""
    registry = open_registry()
    found = [teardown.unsaved_work(registry, name) for name in names]
    return [u for u in found if u is not None and u.at_risk]


@task(cache_policy=NO_CACHE, task_run_name="teardown-{name}")
def teardown_one(name: str) -> TeardownItem:
    """Stop, remove and release one environment, holding its service lock."""
    lock = monitor.service_lock(get_settings().coordination_dir, name)
    item = teardown.teardown_environment(open_registry(), name, lock)
    story.log_teardown(get_run_logger(), item)
    emit(SCENARIO, "environment.removed", name, item.model_dump(mode="json"))
    return item
