"""The worktree scenario's Prefect tasks: every side effect registers an undo hook, so a failure
anywhere inside `compensating(...)` leaves no worktree, branch, process, port or registry entry."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture, as_completed, wait
from prefect.transactions import Transaction, get_transaction

from tasks.artifacts import Progress, markdown_table, publish_markdown, publish_table
from tasks.compensation import record_compensation
from tasks.coordination_log import append_entries
from tasks.events import emit
from tasks.export import Column, export_dataset
from tasks.settings import get_settings
from tasks.telemetry import get_tracer
from tasks.worktree import deploy, gitops, monitor, process, registry, teardown
from tasks.worktree.models import (
    DeploymentRequest,
    DeploymentResult,
    MonitorCheck,
    MonitorRequest,
    ServiceOutcome,
    ServiceStatus,
    TeardownItem,
    WorktreeAttempt,
    WorktreeInfo,
    WorktreeSpec,
)
from tasks.worktree.plan import Plan, next_steps

SCENARIO = "worktree"


def _store():
    return registry.registry_store(get_settings())


# -- step 1: ports ---------------------------------------------------------------------------


@task(cache_policy=NO_CACHE, task_run_name="allocate-ports")
def allocate_ports(request: DeploymentRequest) -> dict[str, int]:
    """One locked registry update for every worktree's port (idempotent per name)."""
    with get_tracer().start_as_current_span("worktree.allocate_ports") as span:
        ports, new = registry.allocate_ports(
            _store(), {w.name: w.port for w in request.worktrees}, request.port_range
        )
        span.set_attribute("worktree.ports", [f"{n}={p}" for n, p in ports.items()])
    get_transaction().set("allocated", new)
    get_transaction().set("ports", ports)
    return ports


@allocate_ports.on_rollback
def _release_ports(txn: Transaction) -> None:
    ports = txn.get("ports", {})
    for name, port in registry.release(_store(), txn.get("allocated", [])):
        record_compensation(f"released port {port or ports.get(name)} and registry entry of {name}")


# -- step 2: worktrees -------------------------------------------------------------------------


@task(cache_policy=NO_CACHE, task_run_name="worktree-{spec.name}")
def create_worktree(plan: Plan, spec: WorktreeSpec, port: int) -> WorktreeAttempt:
    """`git worktree add` (new branch from base_ref when the branch does not exist), validated
    with `git worktree list --porcelain`, plus its `.env`. Never raises (see WorktreeAttempt):
    a failed `git worktree add` has already cleaned up after itself."""
    with get_tracer().start_as_current_span("worktree.create") as span:
        span.set_attributes({"worktree.name": spec.name, "worktree.branch": spec.branch})
        try:
            info = gitops.create_worktree(
                plan.repo_path, plan.worktrees_root, spec.name, spec.branch, spec.base_ref
            )
        except Exception as exc:  # gitops cleaned up; never raise inside the transaction
            return WorktreeAttempt(name=spec.name, error=str(exc))
    get_transaction().set("worktree", info)
    get_transaction().set("repo_path", plan.repo_path)
    try:
        ours = process.service_environment(
            spec, port, info.path, registry.database_names(spec.name)
        )
        gitops.write_env_file(info.path, {**ours, **spec.environment_variables})
        registry.update_environment(
            _store(),
            spec.name,
            worktree_path=str(info.path),
            repo_path=str(plan.repo_path),
            branch=info.branch,
            created_branch=info.created_branch,
            head=info.head,
            status="worktree_created",
        )
    except Exception as exc:  # the undo hook is registered (we return), so rollback removes it
        return WorktreeAttempt(name=spec.name, info=info, error=f"{type(exc).__name__}: {exc}")
    return WorktreeAttempt(name=spec.name, info=info)


@create_worktree.on_rollback
def _remove_worktree(txn: Transaction) -> None:
    info: WorktreeInfo | None = txn.get("worktree", None)
    if info is None:
        return
    branch = info.branch if info.created_branch else None
    for done in gitops.remove_worktree(txn.get("repo_path"), info.path, branch):
        record_compensation(done)


def create_worktrees(
    plan: Plan, request: DeploymentRequest, ports: dict[str, int]
) -> dict[str, WorktreeInfo]:
    """All worktrees, concurrently when `parallel`. Every future is awaited before a failure is
    raised (here, in the flow), so the rollback sees every worktree that was made."""
    futures: dict[str, PrefectFuture] = {}
    for spec in request.worktrees:
        futures[spec.name] = create_worktree.submit(plan, spec, ports[spec.name])
        if not request.parallel:
            wait([futures[spec.name]])
    wait(list(futures.values()))
    attempts: list[WorktreeAttempt] = [f.result() for f in futures.values()]
    errors = [a.error for a in attempts if a.error]
    if errors:
        raise gitops.WorktreeError("; ".join(errors))
    return {a.name: a.info for a in attempts if a.info is not None}


# -- steps 3-5: install, start, health in dependency order -------------------------------------


@task(cache_policy=NO_CACHE, task_run_name="start-{spec.name}")
def deploy_service(
    request: DeploymentRequest, spec: WorktreeSpec, worktree: WorktreeInfo, port: int
) -> ServiceOutcome:
    """Install, start (own session, logs to a file, pid in the registry), poll health."""
    with get_tracer().start_as_current_span("worktree.deploy_service") as span:
        try:
            outcome = deploy.launch_service(spec, worktree, port, request, _store())
        except Exception as exc:  # never raise inside the transaction (see WorktreeAttempt)
            outcome = ServiceOutcome(
                name=spec.name,
                status=ServiceStatus.start_failed,
                port=port,
                reason=f"{type(exc).__name__}: {exc}",
            )
        span.set_attributes(
            {
                "worktree.name": spec.name,
                "worktree.port": port,
                "worktree.status": outcome.status.value,
                "worktree.time_to_healthy_ms": outcome.time_to_healthy_ms or -1.0,
            }
        )
    get_transaction().set("pid", outcome.pid)
    get_transaction().set("name", spec.name)
    event = "service.healthy" if outcome.ok else "service.failed"
    emit(SCENARIO, event, spec.name, outcome.model_dump(mode="json"))
    return outcome


@deploy_service.on_rollback
def _stop_service(txn: Transaction) -> None:
    pid = txn.get("pid")
    if pid and process.stop_process(pid):
        record_compensation(f"stopped {txn.get('name')} (pid {pid})")


def deploy_in_dependency_order(
    request: DeploymentRequest, worktrees: dict[str, WorktreeInfo], ports: dict[str, int]
) -> tuple[dict[str, ServiceOutcome], dict[str, str]]:
    """Start each service as soon as all its dependencies are healthy (so each Kahn batch
    starts only after the batches it depends on are healthy); skip dependents of a failure.
    With on_failure=rollback nothing new starts after the first failure."""
    graph, specs = request.graph(), request.by_name()
    outcomes: dict[str, ServiceOutcome] = {}
    skipped: dict[str, str] = {}
    running: dict[PrefectFuture, str] = {}
    halted: str | None = None
    progress = Progress(len(graph), "Services healthy, failed or skipped")
    try:
        while True:
            if halted is None:
                started = set(running.values()) | set(outcomes)
                ready, skip = next_steps(graph, outcomes, skipped, started)
                skipped.update(skip)
                for name, why in skip.items():
                    emit(SCENARIO, "service.skipped", name, {"reason": why})
                for name in ready if request.parallel else ready[: 1 - len(running)]:
                    future = deploy_service.submit(
                        request, specs[name], worktrees[name], ports[name]
                    )
                    running[future] = name
            if not running:
                break
            done = next(as_completed(list(running)))
            outcomes[running.pop(done)] = done.result()
            progress.advance()
            failed = [o.name for o in outcomes.values() if not o.ok]
            if failed and request.on_failure == "rollback" and halted is None:
                halted = failed[0]
    except BaseException:
        wait(list(running))
        raise
    for name in graph:
        if name not in outcomes and name not in skipped:
            skipped[name] = f"not started: deployment halted after {halted} failed"
    for name, why in skipped.items():
        registry.update_environment(_store(), name, status="skipped", reason=why)
    progress.advance(len(skipped))
    return outcomes, skipped


# -- step 6: monitoring, reporting -----------------------------------------------------------


@task(cache_policy=NO_CACHE, task_run_name="setup-monitoring")
def setup_monitoring(request: DeploymentRequest, outcomes: list[ServiceOutcome]) -> bool:
    """Mark healthy services as watched by the health monitor (auto-recovery on or off)."""
    for outcome in outcomes:
        if outcome.ok:
            registry.update_environment(
                _store(),
                outcome.name,
                auto_recovery=request.enable_auto_recovery,
                consecutive_failures=0,
                restarts=[],
            )
    emit(SCENARIO, "monitoring.enabled", "deployment", {"services": [o.name for o in outcomes]})
    return request.enable_auto_recovery


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
    empty = dict.fromkeys(DEPLOYMENT_SCHEMA)
    rows = []
    for s in result.services:
        dumped = s.model_dump(mode="json", exclude={"log_path"})
        rows.append({**empty, **dumped, "run_id": result.run_id})
    for name, why in result.skipped.items():
        rows.append({**empty, "run_id": result.run_id, "name": name, "status": "skipped"})
        rows[-1]["reason"] = why
    return rows


def publish_deployment(result: DeploymentResult) -> None:
    """Table + markdown artifacts, an event, a coordination-log entry and the dataset."""
    settings = get_settings()
    rows = service_rows(result)
    columns = ["name", "status", "port", "pid", "branch", "time_to_healthy_ms", "reason"]
    publish_table("worktree-deployment", rows, "Services of this deployment")
    publish_markdown(
        "worktree-deployment-summary",
        f"# Worktree deployment\n\n{result.healthy} healthy, {result.failed} failed, "
        f"{len(result.skipped)} skipped in {result.duration_ms:.0f} ms; batches "
        f"{result.batches}.\n\n" + markdown_table(rows, columns),
        "Worktree deployment summary",
    )
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
        "worktree_deployments",
        result.run_id,
        DEPLOYMENT_SCHEMA,
        ("json", "jsonl", "csv", "parquet"),
        settings.exports_dir,
    )


# -- health monitor and teardown ----------------------------------------------------------------


@task(cache_policy=NO_CACHE, task_run_name="check-services-round-{round_no}")
def monitor_round(request: MonitorRequest, round_no: int) -> list[MonitorCheck]:
    """Check every watched service once; restart after the failure threshold; alert."""
    settings = get_settings()
    store = _store()
    checks: list[MonitorCheck] = []
    alerts: list[dict[str, Any]] = []
    for name, entry in sorted(monitor.watched(store, request.names).items()):
        # a deployment with auto-recovery off is watched and alerted on, never restarted
        recovery = entry.get("auto_recovery", True)
        req = request if recovery else request.model_copy(update={"max_restarts_per_hour": 0})
        check, new_alerts = monitor.check_service(name, entry, req, store)
        checks.append(check)
        alerts.extend(new_alerts)
    monitor.append_alerts(settings.coordination_dir / monitor.ALERTS_FILE, alerts)
    for alert in alerts:
        emit(SCENARIO, f"alert.{alert['kind']}", alert["name"], alert)
    return checks


@task(cache_policy=NO_CACHE, task_run_name="teardown-{name}")
def teardown_one(name: str) -> TeardownItem:
    item = teardown.teardown_environment(_store(), name)
    emit(SCENARIO, "environment.removed", name, item.model_dump(mode="json"))
    return item
