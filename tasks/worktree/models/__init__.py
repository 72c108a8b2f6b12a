"""The worktree scenario's boundary models (docs/worktree.md), one module per concept: the
request, the deployment's outcome, the registry's records, the monitor and teardown. Import
them from here."""

from __future__ import annotations

from tasks.worktree.models.monitor import (
    MonitorCheck,
    MonitorRequest,
    MonitorResult,
)
from tasks.worktree.models.outcome import (
    DeploymentResult,
    Preflight,
    ProcessIdentity,
    ServiceOutcome,
    ServiceStatus,
    WorktreeAttempt,
    WorktreeInfo,
)
from tasks.worktree.models.registry import (
    DEFAULT_RESERVED,
    DatabaseNames,
    EnvironmentEntry,
    EnvironmentStatus,
    HostRegistry,
    LastCheck,
    RegistryDocument,
)
from tasks.worktree.models.request import (
    BRANCH_RE,
    ELIXIR_TYPES,
    MAX_PORT,
    MIN_PORT,
    NAME_RE,
    DeploymentRequest,
    Logger,
    WorktreeSpec,
    WorktreeType,
    as_argv,
    check_branch,
    check_name,
)
from tasks.worktree.models.teardown import (
    TeardownItem,
    TeardownRequest,
    TeardownResult,
    UnsavedWork,
)

__all__ = [
    "BRANCH_RE",
    "DEFAULT_RESERVED",
    "ELIXIR_TYPES",
    "MAX_PORT",
    "MIN_PORT",
    "NAME_RE",
    "DatabaseNames",
    "DeploymentRequest",
    "DeploymentResult",
    "EnvironmentEntry",
    "EnvironmentStatus",
    "HostRegistry",
    "LastCheck",
    "Logger",
    "MonitorCheck",
    "MonitorRequest",
    "MonitorResult",
    "Preflight",
    "ProcessIdentity",
    "RegistryDocument",
    "ServiceOutcome",
    "ServiceStatus",
    "TeardownItem",
    "TeardownRequest",
    "TeardownResult",
    "UnsavedWork",
    "WorktreeAttempt",
    "WorktreeInfo",
    "WorktreeSpec",
    "WorktreeType",
    "as_argv",
    "check_branch",
    "check_name",
]
