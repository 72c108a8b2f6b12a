"""Autonomous worktree deployment (SPEC §5): ports → worktrees → dependency order → install and
start → health → monitoring. Every side effect has an undo hook, so a failure anywhere leaves
nothing behind (with `on_failure="keep_healthy"`, failed services are reported, their dependents
skipped, and the healthy ones kept)."""

from __future__ import annotations

import time

from prefect import flow

from tasks.compensation import compensating
from tasks.errors import RolledBack, ServiceUnhealthy
from tasks.events import emit
from tasks.runtime import current_run_id, task_runner
from tasks.telemetry import configure_telemetry
from tasks.worktree.models import DeploymentRequest, DeploymentResult
from tasks.worktree.plan import plan_deployment
from tasks.worktree.prefect_tasks import (
    SCENARIO,
    allocate_ports,
    create_worktrees,
    deploy_in_dependency_order,
    publish_deployment,
    setup_monitoring,
)


@flow(name="worktree-deployment", task_runner=task_runner(), validate_parameters=True)
def worktree_deployment(request: DeploymentRequest) -> DeploymentResult:
    configure_telemetry()
    started = time.perf_counter()
    run_id = current_run_id()
    # Pre-flight: not a git repo, a bad ref or an existing path raises here, nothing created.
    plan = plan_deployment(request)
    emit(SCENARIO, "deployment.started", run_id, {"worktrees": [w.name for w in request.worktrees]})
    try:
        with compensating(f"deployment {run_id}") as undone:
            ports = allocate_ports(request)  # 1. environment registry
            worktrees = create_worktrees(plan, request, ports)  # 2. git worktrees
            # 3-5. dependency order, install and start, health
            outcomes, skipped = deploy_in_dependency_order(request, worktrees, ports)
            failed = [o for o in outcomes.values() if not o.ok]
            if failed and request.on_failure == "rollback":
                raise ServiceUnhealthy(
                    "; ".join(f"{o.name} {o.status.value}: {o.reason}" for o in failed)
                    + "".join(f"; skipped {n} ({why})" for n, why in skipped.items())
                )
            monitoring = setup_monitoring(request, list(outcomes.values()))  # 6. monitoring
    except RolledBack as exc:
        emit(SCENARIO, "deployment.rolled_back", run_id, {"compensations": exc.compensations})
        raise
    services = [outcomes[n] for batch in plan.batches for n in batch if n in outcomes]
    healthy = [s for s in services if s.ok]
    result = DeploymentResult(
        run_id=run_id,
        repo_path=plan.repo_path,
        batches=plan.batches,
        services=services,
        skipped=skipped,
        healthy=len(healthy),
        failed=len(services) - len(healthy),
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
        time_to_healthy_ms=_time_to_healthy(healthy),
        compensations=undone,
        monitoring=monitoring,
    )
    publish_deployment(result)
    return result


def _time_to_healthy(healthy) -> float | None:
    """From the first service start to the last service healthy."""
    if not healthy:
        return None
    first = min(s.started_at for s in healthy)
    last = max(s.healthy_at for s in healthy)
    return round((last - first).total_seconds() * 1000, 1)


if __name__ == "__main__":
    import tempfile

    from tasks.worktree.sample_repo import sample_request

    sample = sample_request(tempfile.mkdtemp(prefix="reactor-worktree-"))
    print(worktree_deployment(sample).model_dump_json(indent=2))
    print(f"tear down with: reactor worktree teardown --repo {sample.repo_path}")
