"""Teardown of registered environments: stop the process group (only if it is still the
service), remove the worktree (and the branch a deployment created), prune, release the port
and the registry entry. `unsaved_work` says beforehand what a removal would destroy, so the
flow can refuse unless forced."""

from __future__ import annotations

from pathlib import Path

from filelock import FileLock, Timeout

from tasks.errors import LockTimeout
from tasks.worktree import gitops, process
from tasks.worktree.models import EnvironmentEntry, TeardownItem, UnsavedWork, WorktreeInfo
from tasks.worktree.registry import EnvironmentRegistry

# a restart holds the service's lock for up to its health timeout (30 s by default)
LOCK_WAIT_S = 90.0


def select(
    envs: dict[str, EnvironmentEntry], names: list[str] | None, repo_path: Path | None
) -> list[str]:
    """The registered environments a teardown request means (sorted): the named ones (None:
    all), of `repo_path` only when given."""
    repo = Path(repo_path).resolve() if repo_path else None
    return [
        n
        for n, e in sorted(envs.items())
        if (names is None or n in names) and (repo is None or e.repo_path == repo)
    ]


def _worktree(entry: EnvironmentEntry) -> tuple[Path, Path] | None:
    """(repository, worktree path) when both are known and the repository still exists."""
    if entry.worktree_path and entry.repo_path and entry.repo_path.exists():
        return entry.repo_path, entry.worktree_path
    return None


def unsaved_work(registry: EnvironmentRegistry, name: str) -> UnsavedWork | None:
    """What tearing `name` down would destroy (None: not registered or nothing on disk)."""
    entry = registry.entry(name)
    where = _worktree(entry) if entry else None
    if entry is None or where is None:
        return None
    branch = entry.branch if entry.created_branch else None
    return gitops.unsaved_work(where[0], name, where[1], branch, entry.head)


def teardown_environment(
    registry: EnvironmentRegistry, name: str, lock: FileLock, lock_wait_s: float = LOCK_WAIT_S
) -> TeardownItem:
    """Tear `name` down holding its service lock, so a monitor pass cannot restart it
    half-way."""
    try:
        lock.acquire(timeout=lock_wait_s)
    except Timeout:
        raise LockTimeout(
            f"{name}: a monitor pass held its lock for {lock_wait_s:g} s; try again"
        ) from None
    try:
        return _teardown(registry, name)
    finally:
        lock.release()


def _teardown(registry: EnvironmentRegistry, name: str) -> TeardownItem:
    entry = registry.entry(name)
    item = TeardownItem(name=name)
    if entry is None:
        item.detail = "not registered"
        return item
    notes: list[str] = []
    if process.stop_process(entry.process):
        item.stopped_pid = entry.pid
    elif why := process.mismatch(entry.process):
        notes.append(why)
    where = _worktree(entry)
    if where is not None:
        # a start its deployment never recorded
        notes.extend(f"stopped unrecorded pid {pid}" for pid in process.stop_marked(where[1]))
        branch = entry.branch if entry.created_branch else None
        done = gitops.remove_worktree(where[0], where[1], branch)
        item.worktree_removed = any("worktree" in d or "directory" in d for d in done)
        item.branch_deleted = branch if any("branch" in d for d in done) else None
        notes.extend(done)
    for _, port in registry.release([name]):
        item.port_released = port
    item.detail = "; ".join(notes)
    return item


def undo_worktree(registry: EnvironmentRegistry, repo_path: Path, info: WorktreeInfo) -> list[str]:
    """Undo a worktree a rolled-back run made: stop any service a dead attempt of the run
    started in it (recorded, or only carrying the run's mark), then remove the worktree and
    the branch it created. Returns what was done."""
    done = []
    entry = registry.entry(info.name)
    if entry is not None and entry.process is not None and process.stop_process(entry.process):
        done.append(f"stopped {info.name} (pid {entry.process.pid})")
    for pid in process.stop_marked(info.path):  # started, but killed before recording it
        done.append(f"stopped {info.name} (unrecorded pid {pid})")
    branch = info.branch if info.created_branch else None
    return [*done, *gitops.remove_worktree(repo_path, info.path, branch)]
