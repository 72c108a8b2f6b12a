"""The swarm run's Prefect edge: its datasets exported (after work_claims.json is refreshed from
the ledger), the assignments table and summary artifacts under stable keys (so the UI's
Artifacts page shows each one's history across runs), the outcome events and metrics, and the
success-rate check that alerts and raises. Imports Prefect (edge module)."""

from __future__ import annotations

from typing import Any

from tasks import metrics
from tasks.artifacts import markdown_table, publish_markdown, publish_table
from tasks.claims import open_ledger
from tasks.claims.snapshot import Snapshot
from tasks.events import emit
from tasks.export import ExportResult, export_dataset
from tasks.settings import Settings
from tasks.swarm import execution
from tasks.swarm.datasets import datasets
from tasks.swarm.models import ExecutionRecord, SwarmRequest, SwarmResult
from tasks.swarm.results import outcome_facts, shortfall_facts
from tasks.swarm.story import log_outcome
from tasks.swarm.summary import markdown_report, table_rows

SUMMARY_KEY = "swarm-summary"
ASSIGNMENTS_KEY = "swarm-assignments"


def export_datasets(
    result: SwarmResult, request: SwarmRequest, settings: Settings
) -> tuple[Snapshot, dict[str, ExportResult]]:
    """work_claims.json refreshed from the ledger, then every dataset of the run in every
    format under the exports dir."""
    with open_ledger(settings) as ledger:
        snap = ledger.snapshot()
        claims = {a.work_item_id: ledger.get(a.work_item_id) for a in result.plan.assignments}
    tasks, root = {t.id: t for t in request.tasks}, settings.exports_dir
    return snap, {
        name: export_dataset(rows, name, result.run_id, model, root=root)
        for name, (rows, model) in datasets(result, tasks, claims).items()
    }


def publish(result: SwarmResult, failure: str | None = None) -> None:
    """The assignments table and the markdown summary artifacts, under stable keys."""
    rows = table_rows(result.plan, result.executions)
    title = f"run {result.run_id}"
    publish_table(ASSIGNMENTS_KEY, rows, f"Swarm assignments and outcomes, {title}")
    table = markdown_table(rows, list(rows[0])) if rows else "(nothing ran)"
    summary = f"{markdown_report(result, failure)}\n## Assignments\n\n{table}"
    publish_markdown(SUMMARY_KEY, summary, f"Swarm summary, {title}")


def check_success_rate(
    logger: Any, records: list[ExecutionRecord], minimum: float, run_id: str
) -> float:
    """The run's success rate, logged; below `minimum` the alert event goes out and the
    shortfall is raised."""
    rate = execution.success_rate(records)
    if (error := execution.shortfall(records, minimum)) is not None:
        emit("swarm", "below_min_success_rate", run_id, shortfall_facts(records, rate, minimum))
        raise error
    logger.info("success rate %.0f%% (minimum %.0f%%)", 100 * rate, 100 * minimum)
    return rate


def executed(logger: Any, record: ExecutionRecord, elapsed_s: float) -> ExecutionRecord:
    """The outcome of one item's task: its duration metric, log line and event."""
    metrics.task_duration.record(elapsed_s, {"scenario": "swarm", "task": "execute"})
    log_outcome(logger, record)
    emit("swarm", f"task_{record.status}", record.work_item_id, outcome_facts(record))
    return record
