"""What the environment registry (environment_registry.json) holds for each service of each
host."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tasks.worktree.models.outcome import ProcessIdentity
from tasks.worktree.models.request import WorktreeType
from tasks.worktree.secret_names import redacted

__all__ = [
    "DEFAULT_RESERVED",
    "DatabaseNames",
    "EnvironmentEntry",
    "EnvironmentStatus",
    "HostRegistry",
    "LastCheck",
    "RegistryDocument",
]


class EnvironmentStatus(StrEnum):
    allocated = "allocated"
    worktree_created = "worktree_created"
    installing = "installing"
    install_failed = "install_failed"
    start_failed = "start_failed"
    starting = "starting"
    healthy = "healthy"
    unhealthy = "unhealthy"
    skipped = "skipped"
    degraded = "degraded"
    restart_failed = "restart_failed"
    restart_capped = "restart_capped"


class DatabaseNames(BaseModel):
    dev: str
    test: str


class LastCheck(BaseModel):
    at: datetime
    healthy: bool
    detail: str = ""


class EnvironmentEntry(BaseModel):
    """One service's entry. The first six fields are the registry's original shape; the rest is
    what the flows need to find, restart and tear the service down again. `service_env` holds
    the service's environment with secret values redacted: they are stored nowhere, and a
    restart takes them from its own environment (`environment.restart_environment`)."""

    model_config = ConfigDict(extra="ignore")

    worktree_path: Path | None = None
    port: int
    database_dev: str
    database_test: str
    created_at: datetime
    status: EnvironmentStatus = EnvironmentStatus.allocated

    repo_path: Path | None = None
    branch: str | None = None
    created_branch: bool = False
    head: str | None = None  # the commit the worktree started from
    type: WorktreeType | None = None
    dependencies: list[str] = Field(default_factory=list)
    start_command: list[str] | None = None
    service_env: dict[str, str] = Field(default_factory=dict)
    log_path: Path | None = None
    health_url: str | None = None
    process: ProcessIdentity | None = None
    started_at: datetime | None = None
    healthy_at: datetime | None = None
    health_latency_ms: float | None = None
    reason: str | None = None
    auto_recovery: bool = True
    consecutive_failures: int = 0
    restarts: list[datetime] = Field(default_factory=list)
    last_check: LastCheck | None = None
    # the deployment flow run that made the entry: its retry adopts what the entry records
    run_id: str | None = None

    @field_validator("service_env")
    @classmethod
    def _no_secrets(cls, v: dict[str, str]) -> dict[str, str]:
        """The registry never holds a secret value, whoever writes the entry."""
        return redacted(v)

    @model_validator(mode="before")
    @classmethod
    def _bare_pid(cls, data):
        """An entry written before identities were recorded has a bare `pid`: keep it as an
        identity without a start time, which never matches (so it is never signalled)."""
        if isinstance(data, dict) and "pid" in data:
            data = dict(data)
            pid = data.pop("pid")
            if "process" not in data:
                data["process"] = {"pid": pid} if pid else None
        return data

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None


DEFAULT_RESERVED = [4200, 4369, 5432, 6379]  # Prefect's server, epmd, PostgreSQL, Redis


class HostRegistry(BaseModel):
    """The services of one host (ports and pids mean something on one machine only)."""

    port_allocations: dict[str, int] = Field(default_factory=dict)
    database_allocations: dict[str, DatabaseNames] = Field(default_factory=dict)
    reserved_ports: list[int] = Field(default_factory=lambda: list(DEFAULT_RESERVED))
    worktree_environments: dict[str, EnvironmentEntry] = Field(default_factory=dict)


class RegistryDocument(BaseModel):
    """The whole file: one `HostRegistry` per host name."""

    hosts: dict[str, HostRegistry] = Field(default_factory=dict)
