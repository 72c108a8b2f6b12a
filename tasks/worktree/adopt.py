"""What a retried deployment run takes over from its dead attempt (docs/worktree.md, "After a
crash"): the registry entries the same flow run made (`EnvironmentEntry.run_id`), their
worktrees when git still lists them on the recorded branch, and their services when the
recorded process identity (pid + start time + command line) is still that process, or when
an unrecorded one carries the run's mark. Nothing is adopted from another run.
`worktree` and `service` are each deployment step's choice: adopt what the dead attempt left,
or make it anew. Pure module."""

from __future__ import annotations

from pathlib import Path

from tasks.worktree import deploy, gitops, identity, process
from tasks.worktree.models import (
    DeploymentRequest,
    EnvironmentEntry,
    Logger,
    Preflight,
    ProcessIdentity,
    ServiceOutcome,
    WorktreeAttempt,
    WorktreeInfo,
    WorktreeSpec,
)
from tasks.worktree.registry import EnvironmentRegistry


def owned(registry: EnvironmentRegistry, run_id: str) -> dict[str, EnvironmentEntry]:
    """The environments the deployment run `run_id` made (in any of its attempts)."""
    return {name: e for name, e in registry.environments().items() if e.run_id == run_id}


def adoptable_worktree(
    repo_path: Path, entry: EnvironmentEntry | None, name: str
) -> WorktreeInfo | None:
    """The worktree a dead attempt made and registered, if git still has it on its branch."""
    if entry is None or entry.worktree_path is None or entry.branch is None:
        return None
    path = Path(entry.worktree_path).resolve()
    with gitops.open_repo(repo_path) as repo:
        listed = {
            Path(r["worktree"]).resolve(): r.get("branch", "") for r in gitops.list_worktrees(repo)
        }
    if listed.get(path) != f"refs/heads/{entry.branch}":
        return None
    return WorktreeInfo(
        name=name,
        path=path,
        branch=entry.branch,
        created_branch=entry.created_branch,
        head=entry.head or "",
    )


def running_service(
    entry: EnvironmentEntry | None, worktree: Path, mark: str
) -> ProcessIdentity | None:
    """The service process a dead attempt started: the recorded one if it is still that
    process (not a reused pid), else one in the worktree carrying the run's mark (the attempt
    died between starting it and recording it)."""
    if entry is not None and entry.process is not None and process.is_alive(entry.process):
        return entry.process
    return identity.unrecorded(worktree, mark)


def worktree(
    preflight: Preflight,
    spec: WorktreeSpec,
    port: int,
    registry: EnvironmentRegistry,
    run_id: str | None,
    log: Logger,
) -> WorktreeAttempt:
    """The worktree of `spec` for run `run_id`: the one its dead attempt made and registered
    when git still lists it on its branch, else a new one (a half-made one removed first)."""
    entry = owned(registry, run_id).get(spec.name) if run_id else None
    info = adoptable_worktree(preflight.repo_path, entry, spec.name) if entry else None
    if info is not None:
        log.info("%s: adopted worktree %s from this run's dead attempt", spec.name, info.path)
        return WorktreeAttempt(name=spec.name, info=info)
    if entry is not None and preflight.paths[spec.name].exists():  # half made, unregistered
        gitops.remove_worktree(preflight.repo_path, preflight.paths[spec.name])
    return deploy.make_worktree(preflight, spec, port, registry, log.warning)


def service(
    request: DeploymentRequest,
    spec: WorktreeSpec,
    worktree: WorktreeInfo,
    port: int,
    registry: EnvironmentRegistry,
    run_id: str | None,
    resuming: bool,
    log: Logger,
) -> ServiceOutcome:
    """The service of `spec`, started and waited for healthy. When `resuming`, a process this
    run's dead attempt started that still runs is adopted instead; one that is gone is
    started again."""
    entry = owned(registry, run_id).get(spec.name) if run_id and resuming else None
    mark = identity.owner(run_id, spec.name) if run_id else None
    # looking for an unrecorded process scans every process's cwd (~10 ms): resumes only
    found = running_service(entry, worktree.path, mark) if entry and mark else None
    if entry is not None and found is not None:
        log.info("%s: adopted pid %d from this run's dead attempt", spec.name, found.pid)
        started = entry.started_at or deploy.now()
        return deploy.adopt_service(spec, worktree, port, request, registry, found, started)
    if entry is not None and entry.process is not None:
        log.warning("%s: the dead attempt's process is gone; starting it again", spec.name)
    log.info("starting %s on port %d", spec.name, port)
    return deploy.run_service(spec, worktree, port, request, registry, mark)
