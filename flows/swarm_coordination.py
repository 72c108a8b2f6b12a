"""AI swarm coordination (SPEC §2): prioritise, form agents, distribute, claim, execute, measure.

python -m flows.swarm_coordination            # runs the bundled sample
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from tasks.compensation import compensating
from tasks.events import emit
from tasks.runtime import current_run_id, task_runner
from tasks.settings import get_settings
from tasks.swarm.models import SwarmRequest, SwarmResult
from tasks.swarm.prefect_tasks import (
    aggregate_telemetry,
    analyse_priorities,
    claim_assignments,
    distribute_work,
    execute_plan,
    export_datasets,
    form_agents,
    publish_summary,
    require_success_rate,
)
from tasks.telemetry import configure_telemetry

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "swarm" / "tasks.json"


@flow(name="swarm-coordination", task_runner=task_runner(), validate_parameters=True)
def swarm_coordination(request: SwarmRequest) -> SwarmResult:
    configure_telemetry(get_settings())
    run_id = current_run_id()
    emit("swarm", "started", run_id, {"tasks": len(request.tasks)})

    # 1. priority analysis: Claude when configured, else the labelled heuristic
    analysis = analyse_priorities(request)

    # 2-5 change shared state, so they run as one transaction: a failure (or a success rate
    # below the minimum) deregisters the agents and releases unfinished claims.
    with compensating("swarm coordination") as compensations:
        agents = form_agents(request, analysis)
        plan = distribute_work(request, analysis, agents)
        plan = claim_assignments(request, plan, run_id)
        emit("swarm", "planned", run_id, {"makespan_ms": plan.makespan_ms, "ratio": plan.ratio})
        executions = execute_plan(request, plan, run_id)
        success_rate = require_success_rate(executions, request.min_success_rate)

    # 6. telemetry aggregation from the spans this run wrote, datasets, UI
    telemetry = aggregate_telemetry(run_id, agents, plan)
    exports = export_datasets(run_id, request, plan, analysis, executions, telemetry)
    publish_summary(run_id, plan, analysis, executions, telemetry)
    emit("swarm", "completed", run_id, {"success_rate": success_rate})
    return SwarmResult(
        run_id=run_id,
        strategy=request.optimization_strategy,
        analysis=analysis,
        agents=agents,
        plan=plan,
        executions=executions,
        success_rate=success_rate,
        telemetry=telemetry,
        exports=exports,
        compensations=compensations,
    )


def load_sample(path: Path = SAMPLE) -> SwarmRequest:
    return SwarmRequest.model_validate_json(path.read_text(encoding="utf-8"))


if __name__ == "__main__":
    result = swarm_coordination(load_sample())
    print(
        f"run {result.run_id}: success rate {result.success_rate:.0%}, "
        f"priorities by {result.analysis.source}, planned makespan {result.plan.makespan_ms:.0f}"
        f" ms = {result.plan.ratio:.3f} x lower bound; datasets: {', '.join(result.exports)}"
    )
