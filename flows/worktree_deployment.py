"""Autonomous worktree deployment: ports → worktrees → dependency order → install and start →
health → monitoring (docs/worktree.md). Every side effect has an undo hook, so a failure anywhere
leaves nothing behind, and the result lists what was undone (with `on_failure="keep_healthy"`,
failed services are reported, their dependents skipped, and the healthy ones kept)."""

from __future__ import annotations

import time

from prefect import get_run_logger
from prefect.context import SyncClientContext
from prefect.futures import PrefectFuture, as_completed, wait

from tasks.artifacts import Progress
from tasks.compensation import compensating
from tasks.errors import RolledBack, ServiceUnhealthy
from tasks.events import emit
from tasks.graph import ReadySet
from tasks.runtime import current_run_id, reactor_flow
from tasks.worktree import adopt
from tasks.worktree.errors import DeploymentRolledBack, WorktreeError
from tasks.worktree.models import (
    DeploymentRequest,
    DeploymentResult,
    Preflight,
    ServiceOutcome,
    WorktreeInfo,
)
from tasks.worktree.prefect_tasks import (
    SCENARIO,
    allocate_ports,
    create_worktree,
    deploy_service,
    setup_monitoring,
)
from tasks.worktree.preflight import preflight
from tasks.worktree.publish import publish_deployment
from tasks.worktree.registry import open_registry


@reactor_flow("worktree-deployment")
async def worktree_deployment(request: DeploymentRequest) -> DeploymentResult:
    # one sync API client for every task this flow starts, whatever the runner: each would open
    # its own and start late (docs/worktree.md, "Design decisions and their measured reasons")
    with SyncClientContext.get_or_create():
        return _deploy(request)


def _deploy(request: DeploymentRequest) -> DeploymentResult:
    logger = get_run_logger()
    started = time.perf_counter()
    run_id = current_run_id()
    # A retry of this run adopts what its dead attempt made (tasks/worktree/adopt.py).
    adoptable = adopt.owned(open_registry(), run_id)
    if adoptable:
        logger.info("resuming: this run's dead attempt made %s", sorted(adoptable))
    # Pre-flight: not a git repo, a bad ref or an existing path raises here, nothing created.
    checked = preflight(request, adoptable)
    logger.info(
        "deploying %d worktree(s) of %s in batches %s (%s, on failure: %s)",
        len(request.worktrees),
        checked.repo_path,
        checked.batches,
        "parallel" if request.parallel else "one at a time",
        request.on_failure,
    )
    emit(SCENARIO, "deployment.started", run_id, {"worktrees": [w.name for w in request.worktrees]})
    outcomes: dict[str, ServiceOutcome] = {}
    skipped: dict[str, str] = {}
    monitoring = False
    try:
        with compensating(f"deployment {run_id}"):
            ports = allocate_ports(request, run_id)  # 1. environment registry
            worktrees = create_worktrees(checked, request, ports, run_id)  # 2. git worktrees
            # 3-5. dependency order, install and start, health
            deploy_in_dependency_order(
                request, worktrees, ports, outcomes, skipped, run_id, bool(adoptable)
            )
            failed = [o for o in outcomes.values() if not o.ok]
            if failed and request.on_failure == "rollback":
                raise ServiceUnhealthy(
                    "; ".join(f"{o.name} {o.status.value}: {o.reason}" for o in failed)
                    + "".join(f"; skipped {n} ({why})" for n, why in skipped.items())
                )
            monitoring = setup_monitoring(request, list(outcomes.values()), skipped)  # 6.
    except RolledBack as exc:
        undone = [*_stopped_failures(outcomes), *exc.compensations]
        result = _result(run_id, checked, outcomes, skipped, started, undone, rolled_back=True)
        for action in undone:
            logger.warning("compensated: %s", action)
        publish_deployment(result)
        raise DeploymentRolledBack(exc.message, undone, result) from exc.__cause__
    result = _result(run_id, checked, outcomes, skipped, started, _stopped_failures(outcomes))
    result.monitoring = monitoring
    for action in result.compensations:
        logger.warning("compensated: %s", action)
    logger.info(
        "%d healthy, %d failed, %d skipped in %.0f ms; time to healthy %s ms",
        result.healthy,
        result.failed,
        len(result.skipped),
        result.duration_ms,
        result.time_to_healthy_ms,
    )
    publish_deployment(result)
    return result


def create_worktrees(
    checked: Preflight, request: DeploymentRequest, ports: dict[str, int], run_id: str
) -> dict[str, WorktreeInfo]:
    """All worktrees, concurrently when `parallel`. Every future is awaited before a failure is
    raised, so the rollback sees every worktree that was made."""
    futures: dict[str, PrefectFuture] = {}
    for spec in request.worktrees:
        futures[spec.name] = create_worktree.submit(checked, spec, ports[spec.name], run_id)
        if not request.parallel:
            wait([futures[spec.name]])
    wait(list(futures.values()))
    attempts = [f.result() for f in futures.values()]
    errors = [a.error for a in attempts if a.error]
    if errors:
        raise WorktreeError("; ".join(errors))
    return {a.name: a.info for a in attempts if a.info is not None}


def deploy_in_dependency_order(
    request: DeploymentRequest,
    worktrees: dict[str, WorktreeInfo],
    ports: dict[str, int],
    outcomes: dict[str, ServiceOutcome],
    skipped: dict[str, str],
    run_id: str,
    resuming: bool = False,
) -> None:
    """Start each service as soon as all its dependencies are healthy (so each batch starts
    only after the batches it depends on are healthy); skip dependents of a failure. With
    on_failure=rollback nothing new starts after the first failure. Fills `outcomes` and
    `skipped` as services finish, so a rollback half-way knows what ran. `resuming`: this
    run's dead attempt made something, which its services may adopt."""
    logger = get_run_logger()
    specs = request.by_name()
    ready = ReadySet(request.graph(), "worktree")
    running: dict[PrefectFuture, str] = {}
    halted: str | None = None
    progress = Progress(len(specs), "Services healthy, failed or skipped")
    finished = 0  # reported after the dependents start: an artifact update is an API call
    try:
        while True:
            if halted is None:
                for name in ready.take(None if request.parallel else 1 - len(running)):
                    future = deploy_service.submit(
                        request, specs[name], worktrees[name], ports[name], run_id, resuming
                    )
                    running[future] = name
            if finished:
                progress.advance(finished)
                finished = 0
            if not running:
                break
            done = next(as_completed(list(running)))
            name = running.pop(done)
            outcome = outcomes[name] = done.result()
            finished += 1
            if outcome.ok:
                ready.succeeded(name)
            elif request.on_failure == "rollback":
                halted = halted or name
            else:
                for other, why in ready.failed(name, outcome.status.value).items():
                    skipped[other] = why
                    logger.warning("skipping %s: %s", other, why)
                    emit(SCENARIO, "service.skipped", other, {"reason": why})
    except BaseException:
        wait(list(running))
        raise
    for name in ready.pending():
        skipped[name] = f"not started: deployment halted after {halted} failed"
        logger.warning("not starting %s: deployment halted after %s failed", name, halted)
    progress.advance(len(skipped))


def _stopped_failures(outcomes: dict[str, ServiceOutcome]) -> list[str]:
    """The processes of failed services that were stopped again (in the order they failed)."""
    return [o.compensation for o in outcomes.values() if o.compensation]


def _result(
    run_id: str,
    checked: Preflight,
    outcomes: dict[str, ServiceOutcome],
    skipped: dict[str, str],
    started: float,
    compensations: list[str],
    rolled_back: bool = False,
) -> DeploymentResult:
    services = [outcomes[n] for batch in checked.batches for n in batch if n in outcomes]
    healthy = [s for s in services if s.ok]
    return DeploymentResult(
        run_id=run_id,
        repo_path=checked.repo_path,
        batches=checked.batches,
        services=services,
        skipped=skipped,
        healthy=0 if rolled_back else len(healthy),
        failed=len(services) - len(healthy),
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
        time_to_healthy_ms=None if rolled_back else _time_to_healthy(healthy),
        compensations=compensations,
        rolled_back=rolled_back,
    )


def _time_to_healthy(healthy: list[ServiceOutcome]) -> float | None:
    """From the first service start to the last service healthy."""
    if not healthy:
        return None
    first = min(s.started_at for s in healthy if s.started_at)
    last = max(s.healthy_at for s in healthy if s.healthy_at)
    return round((last - first).total_seconds() * 1000, 1)


if __name__ == "__main__":
    import asyncio
    import tempfile

    from tasks.worktree.sample_repo import sample_request

    sample = sample_request(tempfile.mkdtemp(prefix="reactor-worktree-"))
    print(asyncio.run(worktree_deployment(sample)).model_dump_json(indent=2))
    print(f"tear down with: reactor worktree teardown --repo {sample.repo_path}")
