"""Git worktrees through GitPython: create (existing branch or a new one from a base ref),
validate against `git worktree list --porcelain`, remove (force, prune, delete the branch this
project created). No shell: GitPython runs git with argument lists."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import git

from tasks.errors import InvalidInput, ReactorError
from tasks.retry import backoff_delays
from tasks.store import atomic_write_bytes
from tasks.worktree.models import WorktreeInfo


class WorktreeError(ReactorError):
    """git refused to create, validate or remove a worktree; the message carries git's reason."""


def open_repo(repo_path: Path) -> git.Repo:
    """The repository at `repo_path`, or InvalidInput saying it is not one."""
    try:
        repo = git.Repo(repo_path)
    except git.NoSuchPathError:
        raise InvalidInput(f"repo_path {str(repo_path)!r} does not exist") from None
    except git.InvalidGitRepositoryError:
        raise InvalidInput(f"repo_path {str(repo_path)!r} is not a git repository") from None
    if repo.bare:
        raise InvalidInput(f"repo_path {str(repo_path)!r} is a bare repository; use a checkout")
    return repo


def branch_exists(repo: git.Repo, branch: str) -> bool:
    try:
        repo.git.rev_parse("--verify", "--quiet", f"refs/heads/{branch}")
    except git.GitCommandError:
        return False
    return True


def ref_exists(repo: git.Repo, ref: str) -> bool:
    try:
        repo.git.rev_parse("--verify", "--quiet", f"{ref}^{{commit}}")
    except git.GitCommandError:
        return False
    return True


def list_worktrees(repo: git.Repo) -> list[dict[str, str]]:
    """`git worktree list --porcelain` as records {worktree, HEAD, branch|detached, ...}."""
    records: list[dict[str, str]] = []
    current: dict[str, str] = {}
    # a worktree being added concurrently can be half-written ("failed to read .../commondir")
    output = _git_retrying(lambda: repo.git.worktree("list", "--porcelain"), retry_all=True)
    for line in output.splitlines():
        if not line.strip():
            if current:
                records.append(current)
            current = {}
            continue
        key, _, value = line.partition(" ")
        current[key] = value
    if current:
        records.append(current)
    return records


# Measured here: two `git worktree add` in one repository at the same moment can fail with
# "failed to read .git/worktrees/<other>/commondir" (git reads the other, half-written admin dir).
# Adds and removes are serialised per repository inside a process (each takes ~50 ms; the rest of a
# worktree's setup stays parallel) and retried across processes.
_add_locks: dict[str, threading.RLock] = {}
_add_locks_guard = threading.Lock()
_TRANSIENT = (".lock", "failed to read", "commondir")


def _repo_lock(repo_path: Path) -> threading.RLock:
    with _add_locks_guard:
        return _add_locks.setdefault(str(Path(repo_path).resolve()), threading.RLock())


def _git_retrying(fn, tries: int = 6, retry_all: bool = False, cleanup=None):
    """Retry git calls that met another worktree operation (see above), cleaning up between;
    delays follow the project's one backoff policy (tasks/retry.py)."""
    delays = backoff_delays(tries, base=0.05, cap=2.0)
    while True:
        try:
            return fn()
        except git.GitCommandError as exc:
            delay = next(delays, None)
            if delay is None or not (retry_all or any(t in str(exc) for t in _TRANSIENT)):
                raise
            if cleanup is not None:
                cleanup()
            time.sleep(delay)


def create_worktree(
    repo_path: Path, root: Path, name: str, branch: str, base_ref: str = "HEAD"
) -> WorktreeInfo:
    """Add `<root>/<name>` on `branch` (attached if it exists, else created from `base_ref`) and
    check git lists it. On any failure nothing this call made is left behind."""
    with open_repo(repo_path) as repo:  # closing stops GitPython's persistent git helpers
        return _create(repo, repo_path, root, name, branch, base_ref)


def _create(
    repo: git.Repo, repo_path: Path, root: Path, name: str, branch: str, base_ref: str
) -> WorktreeInfo:
    path = (root / name).resolve()
    if path.exists():
        raise WorktreeError(f"worktree path {path} already exists; tear it down first")
    created_branch = not branch_exists(repo, branch)
    if created_branch and not ref_exists(repo, base_ref):
        raise WorktreeError(f"base_ref {base_ref!r} for {name!r} is not a commit in {repo_path}")
    root.mkdir(parents=True, exist_ok=True)
    try:
        if created_branch:
            args = ["add", "-b", branch, str(path), base_ref]
        else:
            args = ["add", str(path), branch]

        def cleanup() -> None:
            remove_worktree(repo_path, path, branch if created_branch else None)

        with _repo_lock(repo_path):
            _git_retrying(lambda: repo.git.worktree(*args), cleanup=cleanup)
    except git.GitCommandError as exc:
        remove_worktree(repo_path, path, branch if created_branch else None)
        reason = (exc.stderr or str(exc)).strip().replace("\n", " ")
        raise WorktreeError(f"git worktree add for {name!r} failed: {reason}") from None
    try:
        listed = {Path(r["worktree"]).resolve(): r for r in list_worktrees(repo)}
    except git.GitCommandError as exc:
        remove_worktree(repo_path, path, branch if created_branch else None)
        raise WorktreeError(f"git worktree list failed after adding {name!r}: {exc}") from None
    record = listed.get(path)
    if record is None or record.get("branch") != f"refs/heads/{branch}":
        remove_worktree(repo_path, path, branch if created_branch else None)
        raise WorktreeError(f"git does not list {path} on {branch} after creating it")
    return WorktreeInfo(
        name=name, path=path, branch=branch, created_branch=created_branch, head=record["HEAD"]
    )


def remove_worktree(repo_path: Path, path: Path, delete_branch: str | None = None) -> list[str]:
    """Force-remove the worktree, prune git's records and delete `delete_branch`; returns what
    was actually undone (safe to call on something half-made or already gone)."""
    done: list[str] = []
    with _repo_lock(repo_path), git.Repo(repo_path) as repo:
        _remove(repo, path, delete_branch, done)
    return done


def _remove(repo: git.Repo, path: Path, delete_branch: str | None, done: list[str]) -> None:
    listed = {Path(r["worktree"]).resolve() for r in list_worktrees(repo)}
    if Path(path).resolve() in listed:
        repo.git.worktree("remove", "--force", "--force", str(path))
        done.append(f"removed worktree {path}")
    elif Path(path).exists():
        shutil.rmtree(path, ignore_errors=True)
        done.append(f"deleted directory {path}")
    repo.git.worktree("prune")
    if delete_branch and branch_exists(repo, delete_branch):
        repo.git.branch("-D", delete_branch)
        done.append(f"deleted branch {delete_branch}")


def prune(repo_path: Path) -> None:
    with open_repo(repo_path) as repo:
        repo.git.worktree("prune")


def write_env_file(path: Path, values: dict[str, str]) -> Path:
    """`<worktree>/.env` with one KEY=value per line (values quoted when they need it)."""
    lines = []
    for key, value in values.items():
        needs_quotes = any(c.isspace() or c in "\"'#$`\\" for c in value)
        shown = (
            '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"' if needs_quotes else value
        )
        lines.append(f"{key}={shown}\n")
    target = path / ".env"
    atomic_write_bytes(target, "".join(lines).encode())
    return target
