"""Git worktrees through GitPython: create (existing branch or a new one from a base ref),
validate against `git worktree list --porcelain`, find the work a removal would destroy,
remove (force, prune, delete the branch this project created). No shell: GitPython runs git
with argument lists."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import git

from tasks.errors import InvalidInput
from tasks.retry import with_backoff
from tasks.worktree.environment import ENV_FILE
from tasks.worktree.errors import WorktreeError
from tasks.worktree.models import UnsavedWork, WorktreeInfo
from tasks.worktree.process import LOG_DIR

# told about each retry of a git call (the Prefect task logs it)
OnRetry = Callable[[str], None]


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


def _verifies(repo: git.Repo, spec: str) -> bool:
    try:
        repo.git.rev_parse("--verify", "--quiet", spec)
    except git.GitCommandError:
        return False
    return True


def branch_exists(repo: git.Repo, branch: str) -> bool:
    return _verifies(repo, f"refs/heads/{branch}")


def ref_exists(repo: git.Repo, ref: str) -> bool:
    """`ref` names a commit (a branch, tag or hash)."""
    return _verifies(repo, f"{ref}^{{commit}}")


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


class _Transient(Exception):
    """A git call met another worktree operation; worth another try."""


def _reason(exc: git.GitCommandError) -> str:
    """git's own last line (GitPython wraps stderr as `stderr: '...'`)."""
    text = (exc.stderr or str(exc)).strip()
    if text.startswith("stderr: '") and text.endswith("'"):
        text = text[len("stderr: '") : -1]
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


def _git_retrying(
    fn,
    retry_all: bool = False,
    cleanup=None,
    on_retry: OnRetry | None = None,
    what: str = "git",
):
    """Retry git calls that met another worktree operation (see above), cleaning up between,
    on the project's one backoff policy (tasks/retry.py)."""

    def attempt():
        try:
            return fn()
        except git.GitCommandError as exc:
            if not (retry_all or any(t in str(exc) for t in _TRANSIENT)):
                raise
            if cleanup is not None:
                cleanup()
            if on_retry is not None:
                on_retry(f"retrying {what}: {_reason(exc)}")
            raise _Transient() from exc

    try:
        return with_backoff(attempt, retry_on=(_Transient,), tries=6, base=0.05, cap=2.0)
    except _Transient as exc:
        raise exc.__cause__ from None


def create_worktree(
    repo_path: Path,
    root: Path,
    name: str,
    branch: str,
    base_ref: str = "HEAD",
    on_retry: OnRetry | None = None,
) -> WorktreeInfo:
    """Add `<root>/<name>` on `branch` (attached if it exists, else created from `base_ref`) and
    check git lists it. On any failure nothing this call made is left behind."""
    with open_repo(repo_path) as repo:  # closing stops GitPython's persistent git helpers
        return _create(repo, repo_path, root, name, branch, base_ref, on_retry)


def _create(
    repo: git.Repo,
    repo_path: Path,
    root: Path,
    name: str,
    branch: str,
    base_ref: str,
    on_retry: OnRetry | None,
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
            _git_retrying(
                lambda: repo.git.worktree(*args),
                cleanup=cleanup,
                on_retry=on_retry,
                what=f"git worktree add for {name!r}",
            )
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


def unsaved_work(
    repo_path: Path, name: str, path: Path, delete_branch: str | None, base: str | None
) -> UnsavedWork:
    """What removing the worktree at `path` (and deleting `delete_branch`) would destroy:
    uncommitted files (tracked changes and untracked files that are not ignored, apart from
    the deployment's own `.env` and logs) and commits reachable from the worktree's HEAD or the
    branch that no other branch, tag, remote branch or the `base` commit holds."""
    found = UnsavedWork(name=name, path=path)
    path = Path(path).resolve()
    if not path.exists():
        return found
    with open_repo(repo_path) as repo:
        listed = {Path(r["worktree"]).resolve() for r in list_worktrees(repo)}
        if path not in listed:
            files = sum(1 for _ in path.rglob("*"))
            found.other = f"a directory that is no longer a git worktree ({files} entries)"
            return found
        with git.Repo(path) as tree:
            found.uncommitted = _uncommitted(tree)
            tips = [tree.head.commit.hexsha] if tree.head.is_valid() else []
        if delete_branch and branch_exists(repo, delete_branch):
            tips.append(f"refs/heads/{delete_branch}")
        if tips:
            keep = ["--branches", "--tags", "--remotes"]
            if delete_branch:  # `--exclude` patterns for `--branches` omit `refs/heads/`
                keep = [f"--exclude={delete_branch}", *keep]
            if base and ref_exists(repo, base):
                keep.append(base)
            lost = repo.git.log("--format=%h %s", *tips, "--not", *keep)
            found.unmerged = [line for line in lost.splitlines() if line.strip()]
    return found


def _uncommitted(tree: git.Repo) -> list[str]:
    out = tree.git.status("--porcelain=v1", "-z", "--untracked-files=all")
    fields = out.split("\0")
    paths: list[str] = []
    i = 0
    while i < len(fields):
        entry = fields[i]
        i += 1
        if len(entry) < 4:
            continue
        code, where = entry[:2], entry[3:]
        if code[0] in "RC":  # a rename or copy is followed by its source path
            i += 1
        if where == ENV_FILE or where.startswith(f"{LOG_DIR}/"):
            continue  # the deployment's own files: rewritten by the next deploy, not work
        paths.append(where)
    return paths
