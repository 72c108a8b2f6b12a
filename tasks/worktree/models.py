"""The worktree scenario's boundary models: what users ask for, what they get back, and what the
environment registry holds for each service (docs/worktree.md).

Validation happens here, before anything is created: names, ports, commands and the dependency
graph. Checks that need the file system (the repo is a git repository, paths stay inside their
root) live in `tasks.worktree.preflight`.
"""

from __future__ import annotations

import logging
import re
import shlex
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tasks.graph import validate_graph
from tasks.worktree.secret_names import redacted

# what the scenario logs to: a stdlib logger, or the run logger Prefect hands a task
Logger = logging.Logger | logging.LoggerAdapter

NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# git refs allow more than names do, but never these (and never a shell metacharacter)
BRANCH_RE = re.compile(r"^[A-Za-z0-9._/-]{1,200}$")
MIN_PORT, MAX_PORT = 1024, 65535


class WorktreeType(StrEnum):
    phoenix = "phoenix"
    xavos = "xavos"
    beamops = "beamops"
    engineering_elixir_apps = "engineering-elixir-apps"
    python = "python"
    node = "node"
    generic = "generic"


ELIXIR_TYPES = {
    WorktreeType.phoenix,
    WorktreeType.xavos,
    WorktreeType.beamops,
    WorktreeType.engineering_elixir_apps,
}


def check_name(value: str, what: str = "worktree name") -> str:
    """A name that is safe as a directory, a branch component and a process label."""
    if not NAME_RE.fullmatch(value) or ".." in value or value in (".", "-") or value[0] == "-":
        raise ValueError(
            f"{what} {value!r} is invalid: use 1-64 characters from [A-Za-z0-9._-], "
            "not starting with '-', without '..', '/' or shell metacharacters"
        )
    return value


def check_branch(value: str) -> str:
    parts = value.split("/")
    if (
        not BRANCH_RE.fullmatch(value)
        or ".." in value
        or any(not p or p.startswith(("-", ".")) or p.endswith(".lock") for p in parts)
    ):
        raise ValueError(
            f"branch {value!r} is invalid: use [A-Za-z0-9._/-] segments, no '..', no empty, "
            "'-'- or '.'-leading segment, no shell metacharacters"
        )
    return value


def as_argv(value: str | list[str] | None, what: str) -> list[str] | None:
    """A command as an argument list (strings are split like a shell would, never run by one)."""
    if value is None:
        return None
    argv = shlex.split(value) if isinstance(value, str) else list(value)
    if not argv or not argv[0].strip():
        raise ValueError(f"{what} is empty: give an argument list such as ['python', 'app.py']")
    return argv


class WorktreeSpec(BaseModel):
    """One service to deploy in its own git worktree."""

    name: str
    branch: str
    base_ref: str = "HEAD"
    type: WorktreeType = WorktreeType.generic
    port: int | None = Field(default=None, ge=MIN_PORT, le=MAX_PORT)
    dependencies: list[str] = Field(default_factory=list)
    environment_variables: dict[str, str] = Field(default_factory=dict)
    # names of variables the service takes from the deploying process's environment; nothing
    # else of it reaches the service beyond a base (PATH, HOME, locale: environment.BASE_VARS)
    passthrough_env: list[str] = Field(default_factory=list)
    install_command: list[str] | None = None
    start_command: list[str] | None = None
    health_path: str = "/health"

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v)

    @field_validator("branch", "base_ref")
    @classmethod
    def _ref(cls, v: str) -> str:
        return check_branch(v)

    @field_validator("install_command", "start_command", mode="before")
    @classmethod
    def _argv(cls, v, info):
        return as_argv(v, info.field_name)

    @field_validator("health_path")
    @classmethod
    def _health_path(cls, v: str) -> str:
        if not v.startswith("/") or any(c.isspace() for c in v) or ".." in v:
            raise ValueError(f"health_path {v!r} must be an absolute URL path like '/health'")
        return v

    @field_validator("environment_variables", "passthrough_env")
    @classmethod
    def _env(cls, v: dict[str, str] | list[str]) -> dict[str, str] | list[str]:
        for key in v:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                raise ValueError(
                    f"environment variable name {key!r} is invalid: use [A-Za-z_][A-Za-z0-9_]*"
                )
        return v

    @model_validator(mode="after")
    def _port_and_commands(self) -> WorktreeSpec:
        env_port = self.environment_variables.get("PORT")
        if env_port is not None:
            if not env_port.isdigit() or not MIN_PORT <= int(env_port) <= MAX_PORT:
                raise ValueError(f"PORT={env_port!r} must be a number in {MIN_PORT}-{MAX_PORT}")
            if self.port is not None and self.port != int(env_port):
                raise ValueError(f"port {self.port} disagrees with PORT={env_port}")
            self.port = int(env_port)
        if self.type not in ELIXIR_TYPES and self.start_command is None:
            raise ValueError(
                f"worktree {self.name!r} of type {self.type.value} needs a start_command "
                "(only phoenix, xavos, beamops and engineering-elixir-apps have defaults)"
            )
        return self


class DeploymentRequest(BaseModel):
    """What to deploy. `on_failure="rollback"` undoes everything when any service fails;
    `"keep_healthy"` keeps the services that came up, reports the failed ones and skips their
    dependents (port allocation and worktree failures always roll back)."""

    repo_path: Path
    worktrees_root: Path | None = None
    worktrees: list[WorktreeSpec] = Field(min_length=1)
    parallel: bool = True
    enable_auto_recovery: bool = True
    health_check_timeout_s: float = Field(default=45.0, gt=0, le=3600)
    health_poll_interval_s: float = Field(default=1.0, gt=0, le=60)
    install_timeout_s: float = Field(default=600.0, gt=0)
    on_failure: Literal["rollback", "keep_healthy"] = "rollback"
    port_range: tuple[int, int] = (4000, 4999)

    @field_validator("port_range")
    @classmethod
    def _range(cls, v: tuple[int, int]) -> tuple[int, int]:
        lo, hi = v
        if not MIN_PORT <= lo <= hi <= MAX_PORT:
            raise ValueError(f"port_range {v} must satisfy {MIN_PORT} <= low <= high <= {MAX_PORT}")
        return v

    @model_validator(mode="after")
    def _graph(self) -> DeploymentRequest:
        names = [w.name for w in self.worktrees]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate worktree names: {', '.join(dupes)}")
        ports = [w.port for w in self.worktrees if w.port is not None]
        clash = sorted({p for p in ports if ports.count(p) > 1})
        if clash:
            raise ValueError(f"port {clash[0]} is requested by more than one worktree")
        validate_graph(self.graph(), "worktree")
        return self

    def graph(self) -> dict[str, list[str]]:
        return {w.name: list(w.dependencies) for w in self.worktrees}

    def by_name(self) -> dict[str, WorktreeSpec]:
        return {w.name: w for w in self.worktrees}


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


# -- the environment registry (environment_registry.json) ---------------------------------------


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


# -- health monitor and teardown ----------------------------------------------------------------


class MonitorRequest(BaseModel):
    """One pass (`once`) or a loop every `interval_s` over every registered service."""

    once: bool = True
    interval_s: float = Field(default=30.0, gt=0)
    rounds: int | None = Field(default=None, ge=1)  # None with once=False: forever
    failure_threshold: int = Field(default=3, ge=1)
    max_restarts_per_hour: int = Field(default=5, ge=0)
    restart_backoff_s: float = Field(default=1.0, ge=0)
    restart_backoff_cap_s: float = Field(default=300.0, ge=0)
    health_timeout_s: float = Field(default=2.0, gt=0)
    restart_health_timeout_s: float = Field(default=30.0, gt=0)
    health_poll_interval_s: float = Field(default=0.5, gt=0)
    names: list[str] | None = None


class MonitorCheck(BaseModel):
    name: str
    healthy: bool
    process_alive: bool
    consecutive_failures: int
    # busy: another monitor pass holds the service's lock (it is checking or restarting it)
    action: Literal["none", "restarted", "restart_failed", "backoff", "capped", "alert", "busy"]
    detail: str = ""
    latency_ms: float | None = None
    pid: int | None = None


class MonitorResult(BaseModel):
    rounds: int
    checks: list[MonitorCheck]
    alerts: int
    restarts: int


class TeardownRequest(BaseModel):
    names: list[str] | None = None  # None: every registered environment
    repo_path: Path | None = None  # only environments of this repository
    # remove worktrees even when uncommitted files or unmerged commits would be lost
    force: bool = False

    @field_validator("names")
    @classmethod
    def _names(cls, v: list[str] | None) -> list[str] | None:
        return [check_name(n) for n in v] if v is not None else None


class UnsavedWork(BaseModel):
    """What removing one worktree would destroy."""

    name: str
    path: Path
    uncommitted: list[str] = Field(default_factory=list)  # paths, as `git status` shows them
    unmerged: list[str] = Field(default_factory=list)  # "<short sha> <subject>"
    other: str | None = None  # e.g. the directory is no longer a git worktree

    @property
    def at_risk(self) -> bool:
        return bool(self.uncommitted or self.unmerged or self.other)

    def line(self) -> str:
        """One line naming the worktree and what would be lost."""
        lost = []
        if self.uncommitted:
            shown = ", ".join(self.uncommitted[:3]) + (", …" if len(self.uncommitted) > 3 else "")
            lost.append(f"{len(self.uncommitted)} uncommitted file(s) ({shown})")
        if self.unmerged:
            shown = ", ".join(self.unmerged[:2]) + (", …" if len(self.unmerged) > 2 else "")
            lost.append(
                f"{len(self.unmerged)} commit(s) not on the base or any other branch ({shown})"
            )
        if self.other:
            lost.append(self.other)
        return f"worktree {self.name!r} at {self.path} has " + " and ".join(lost)


class TeardownItem(BaseModel):
    name: str
    stopped_pid: int | None = None
    worktree_removed: bool = False
    branch_deleted: str | None = None
    port_released: int | None = None
    detail: str = ""


class TeardownResult(BaseModel):
    items: list[TeardownItem]
    pruned: list[str] = Field(default_factory=list)
    forced: list[str] = Field(default_factory=list)  # removed with --force despite unsaved work
