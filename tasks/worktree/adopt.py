"""What a retried deployment run takes over from its dead attempt (docs/worktree.md, "After a
crash"): the registry entries the same flow run made (`EnvironmentEntry.run_id`), their
worktrees when git still lists them on the recorded branch, and their services when the
recorded process identity (pid + start time + command line) is still that process, or when
an unrecorded one carries the run's mark. Nothing is adopted from another run. Pure module."""

from __future__ import annotations

from pathlib import Path

from tasks.worktree import gitops, identity, process
from tasks.worktree.models import EnvironmentEntry, ProcessIdentity, WorktreeInfo
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
