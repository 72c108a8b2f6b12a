"""The worktree deployment's dataset `worktree_deployments`, declared once as a row model (its
columns and types come from `tasks.export_schema.schema_of`): one row per service, skipped ones
included. Pure."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from tasks.worktree.models import DeploymentResult

DATASET = "worktree_deployments"


class DeploymentRow(BaseModel):
    """One row of `worktree_deployments`: a service's outcome (a skipped one: its reason)."""

    run_id: str
    name: str
    status: str
    port: int | None = None
    pid: int | None = None
    branch: str | None = None
    worktree_path: str | None = None
    started_at: datetime | None = None
    healthy_at: datetime | None = None
    install_ms: float | None = None
    time_to_healthy_ms: float | None = None
    health_latency_ms: float | None = None
    health_checks: int | None = None
    reason: str | None = None


def service_rows(result: DeploymentResult) -> list[dict[str, Any]]:
    """One row per service, skipped ones included, as JSON-ready dicts (they are also the
    deployment table artifact's rows)."""
    fields = set(DeploymentRow.model_fields)
    rows = [
        DeploymentRow(run_id=result.run_id, **s.model_dump(mode="json", include=fields))
        for s in result.services
    ]
    rows += [
        DeploymentRow(run_id=result.run_id, name=name, status="skipped", reason=why)
        for name, why in result.skipped.items()
    ]
    return [r.model_dump(mode="json") for r in rows]
