"""The demo's four scenario steps. Each runs its flow(s) on the bundled samples and reports the
flow run ids (the demo then checks them through the server's API), a one-line summary and the
dataset files it wrote. Resources a step starts (stand-ins, a temporary git repository, services)
are registered on the ExitStack so they are stopped even when a step fails."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import tempfile
from pathlib import Path
from uuid import UUID

from deployments.demo import StepOutcome


def _run(flow_fn, *args):
    """Run a flow (sync or async), returning (result, flow run id); a failed run raises with
    its message."""
    state = flow_fn(*args, return_state=True)
    if inspect.isawaitable(state):
        state = asyncio.run(state)
    run_id = state.state_details.flow_run_id
    return state.result(), run_id


def spr(resources: contextlib.ExitStack) -> StepOutcome:
    from flows.spr_pipeline import sample_request, spr_pipeline

    request = sample_request()
    state = asyncio.run(spr_pipeline(request, return_state=True))  # an async flow
    result, run_id = state.result(), state.state_details.flow_run_id
    files = [str(f.path) for f in result.export.files] if result.export else []
    quality = f"{result.median_quality:.2f}" if result.median_quality is not None else "-"
    return StepOutcome(
        summary=f"{result.processed} documents in {len(request.formats)} formats, "
        f"median quality {quality}, "
        f"{len(result.spr_files)} .spr files",
        flow_run_ids=[run_id],
        datasets=files,
    )


def swarm(resources: contextlib.ExitStack) -> StepOutcome:
    import asyncio

    from flows.swarm_coordination import load_sample, swarm_coordination
    from tasks.swarm.handlers import shutdown_pools

    resources.callback(shutdown_pools)  # the handler worker processes

    def run_swarm(*args, **kwargs):  # an async flow: run it to completion here
        return asyncio.run(swarm_coordination(*args, **kwargs))

    result, run_id = _run(run_swarm, load_sample())
    return StepOutcome(
        summary=f"{len(result.executions)} tasks on {len(result.agents)} agents, success "
        f"{result.success_rate:.0%}, makespan/bound {result.plan.ratio:.2f}, "
        f"priorities from {result.analysis.source}",
        flow_run_ids=[run_id],
        datasets=[p for paths in result.exports.values() for p in paths],
    )


def trace(resources: contextlib.ExitStack) -> StepOutcome:
    from flows.trace_orchestration import trace_orchestration
    from tasks.trace.sample import rebase_urls, sample_standin_config, sample_trace_request
    from tasks.trace.standins import run_standins

    standins = resources.enter_context(run_standins(sample_standin_config()))
    request = rebase_urls(sample_trace_request(), standins.base_url)
    state = asyncio.run(trace_orchestration(request, return_state=True))  # an async flow
    result, run_id = state.result(), state.state_details.flow_run_id
    simulated = [p.system for p in result.path if p.status == "simulated"]
    return StepOutcome(
        summary=f"{len(result.path)} systems, one trace {result.trace_id[:8]}…, "
        f"bottleneck {', '.join(result.analysis.bottlenecks) or 'none'}, "
        f"simulated {', '.join(simulated) or 'none'}",
        flow_run_ids=[run_id],
        datasets=result.exports,
    )


def worktree(resources: contextlib.ExitStack) -> StepOutcome:
    from flows.health_monitor import health_monitor
    from flows.worktree_deployment import worktree_deployment
    from flows.worktree_teardown import worktree_teardown
    from tasks.worktree.models import DeploymentRequest, MonitorRequest, TeardownRequest
    from tasks.worktree.sample_repo import make_sample_repo, sample_request_data

    root = Path(resources.enter_context(tempfile.TemporaryDirectory(prefix="reactor-demo-")))
    repo = make_sample_repo(root / "repo", ["db", "api", "web"])
    request = DeploymentRequest.model_validate(sample_request_data(repo))
    names = [w.name for w in request.worktrees]
    teardown = TeardownRequest(names=names, repo_path=repo)
    run_ids: list[UUID] = []
    try:
        deployed, run_id = _run(worktree_deployment, request)
        run_ids.append(run_id)
        monitored, run_id = _run(health_monitor, MonitorRequest(once=True))
        run_ids.append(run_id)
    finally:
        removed, run_id = _run(worktree_teardown, teardown)
        run_ids.append(run_id)
    return StepOutcome(
        summary=f"{deployed.healthy}/{len(names)} services healthy in dependency order "
        f"{deployed.batches}, time to healthy {deployed.time_to_healthy_ms or 0:.0f} ms; "
        f"monitor checked {len(monitored.checks)}; teardown removed {len(removed.items)}",
        flow_run_ids=run_ids,
    )


STEPS = {
    "SPR pipeline": spr,
    "swarm coordination": swarm,
    "trace orchestration": trace,
    "worktree deployment": worktree,
}
