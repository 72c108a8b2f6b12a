"""The worktree flows' Prefect edge: the artifacts (stable keys, so the UI shows each report's
history), the events, the coordination-log entry and the dataset export of a deployment that
stands. Imports Prefect (edge module)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tasks.artifacts import markdown_table, publish_markdown, publish_table
from tasks.coordination_log import append_entries
from tasks.events import emit
from tasks.export import export_dataset
from tasks.settings import get_settings
from tasks.worktree.datasets import DATASET, DeploymentRow, service_rows
from tasks.worktree.models import DeploymentResult, MonitorCheck, TeardownResult, UnsavedWork

SCENARIO = "worktree"
DEPLOYMENT_KEY = "worktree-deployment"
HEALTH_KEY = "worktree-health"
TEARDOWN_KEY = "worktree-teardown"


def deployment_markdown(result: DeploymentResult, rows: list[dict[str, Any]]) -> str:
    columns = ["name", "status", "port", "pid", "branch", "time_to_healthy_ms", "reason"]
    head = "rolled back" if result.rolled_back else f"{result.healthy} healthy"
    text = (
        f"# Worktree deployment\n\n{head}, {result.failed} failed, {len(result.skipped)} "
        f"skipped in {result.duration_ms:.0f} ms; batches {result.batches}.\n\n"
        + markdown_table(rows, columns)
    )
    if result.compensations:
        text += "\n## Undone\n\n" + "".join(f"- {c}\n" for c in result.compensations)
    return text


def publish_deployment(result: DeploymentResult) -> None:
    """Table + markdown artifacts and an event; for a deployment that stands, also a
    coordination-log entry and the dataset (a rolled-back one left nothing to describe)."""
    settings = get_settings()
    rows = service_rows(result)
    publish_table(DEPLOYMENT_KEY, rows, "Services of this deployment")
    publish_markdown(
        f"{DEPLOYMENT_KEY}-summary",
        deployment_markdown(result, rows),
        "Worktree deployment summary",
    )
    if result.rolled_back:
        undone = {"compensations": result.compensations}
        emit(SCENARIO, "deployment.rolled_back", result.run_id, undone)
        return
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
        DATASET,
        result.run_id,
        DeploymentRow,
        ("json", "jsonl", "csv", "parquet"),
        settings.exports_dir,
    )


def publish_health(checks: list[MonitorCheck], rounds: int) -> None:
    rows = [c.model_dump(mode="json") for c in checks]
    actions = [c for c in checks if c.action != "none"]
    publish_table(HEALTH_KEY, rows, "Last round of health checks")
    publish_markdown(
        f"{HEALTH_KEY}-summary",
        f"# Worktree health\n\n{sum(c.healthy for c in checks)}/{len(checks)} healthy after "
        f"{rounds} round(s); {len(actions)} action(s).\n\n"
        + markdown_table(rows, ["name", "healthy", "consecutive_failures", "action", "detail"]),
        "Worktree health summary",
    )


def publish_teardown(result: TeardownResult | None, refused: list[UnsavedWork]) -> None:
    """The teardown's table and markdown summary; a refused teardown says what was at risk."""
    if result is None:
        lines = "".join(f"- refused: {u.line()}\n" for u in refused)
        text = "# Worktree teardown\n\nNothing was touched.\n\n" + lines
        text += "\nCommit or push the work, or tear down with `--force` to discard it.\n"
        publish_markdown(f"{TEARDOWN_KEY}-summary", text, "Worktree teardown summary")
        return
    rows = [i.model_dump(mode="json") for i in result.items]
    publish_table(TEARDOWN_KEY, rows, "Teardown")
    columns = ["name", "stopped_pid", "worktree_removed", "branch_deleted", "port_released"]
    forced = "".join(f"- forced: {u.line()}\n" for u in refused)
    publish_markdown(
        f"{TEARDOWN_KEY}-summary",
        f"# Worktree teardown\n\n{len(result.items)} environment(s) removed; pruned "
        f"{len(result.pruned)} repositor(ies).\n\n" + markdown_table(rows, columns) + forced,
        "Worktree teardown summary",
    )
