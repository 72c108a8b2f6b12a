"""What users ask the worktree scenario for: the services, their worktrees and commands,
validated before anything is created (the file-system checks live in `tasks.worktree.preflight`)."""

from __future__ import annotations

import logging
import re
import shlex
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from tasks.graph import validate_graph

__all__ = [
    "BRANCH_RE",
    "ELIXIR_TYPES",
    "MAX_PORT",
    "MIN_PORT",
    "NAME_RE",
    "DeploymentRequest",
    "Logger",
    "WorktreeSpec",
    "WorktreeType",
    "as_argv",
    "check_branch",
    "check_name",
]

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
