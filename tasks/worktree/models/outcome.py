"""What a deployment gives back: the checked request, each worktree and service's outcome, and
the identity of the processes it started."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, Field

__all__ = [
    "DeploymentResult",
    "Preflight",
    "ProcessIdentity",
    "ServiceOutcome",
    "ServiceStatus",
    "WorktreeAttempt",
    "WorktreeInfo",
]


class Preflight(BaseModel):
    """A request checked against the file system: resolved paths and the start order."""

    repo_path: Path
    worktrees_root: Path
    paths: dict[str, Path]
    batches: list[list[str]]


class ServiceStatus(StrEnum):
    healthy = "healthy"
    unhealthy = "unhealthy"
    install_failed = "install_failed"
    start_failed = "start_failed"
    skipped = "skipped"


class WorktreeInfo(BaseModel):
    name: str
    path: Path
    branch: str
    created_branch: bool
    head: str


class WorktreeAttempt(BaseModel):
    """A worktree task's answer: failures travel as values, because a task that raises inside a
    Prefect transaction rolls the parent back at once, while sibling tasks are still running."""

    name: str
    info: WorktreeInfo | None = None
    error: str | None = None


class ProcessIdentity(BaseModel):
    """Which process a recorded pid was. A pid alone is not enough: once the service exits, the
    kernel hands the number to the next process, and signalling it hours later would hit an
    unrelated one. The start time and command line tell them apart (`identity.matches`)."""

    pid: int
    create_time: float | None = None  # None: recorded without identity (older registry)
    cmdline: list[str] = Field(default_factory=list)
    # Linux: the start in clock ticks since boot, and which boot (None elsewhere or older
    # registries); unlike `create_time` it does not move when the wall clock is adjusted
    boot_ticks: int | None = None
    boot_id: str | None = None


class ServiceOutcome(BaseModel):
    """What happened to one service."""

    name: str
    status: ServiceStatus
    port: int
    pid: int | None = None
    worktree_path: Path | None = None
    branch: str | None = None
    started_at: datetime | None = None
    healthy_at: datetime | None = None
    install_ms: float | None = None
    time_to_healthy_ms: float | None = None
    health_latency_ms: float | None = None
    health_checks: int = 0
    log_path: Path | None = None
    reason: str = ""
    process: ProcessIdentity | None = None  # of the running service (for its undo hook)
    compensation: str | None = None  # what was undone when it failed (its process stopped)

    @property
    def ok(self) -> bool:
        return self.status is ServiceStatus.healthy


class DeploymentResult(BaseModel):
    run_id: str
    repo_path: Path
    batches: list[list[str]]
    services: list[ServiceOutcome]
    skipped: dict[str, str] = Field(default_factory=dict)  # name -> why
    healthy: int
    failed: int
    duration_ms: float
    time_to_healthy_ms: float | None = None
    compensations: list[str] = Field(default_factory=list)  # what was undone, in run order
    rolled_back: bool = False
    monitoring: bool = False

    def service(self, name: str) -> ServiceOutcome:
        return next(s for s in self.services if s.name == name)
