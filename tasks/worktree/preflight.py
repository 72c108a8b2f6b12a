"""Checks that need the file system, made before anything is created: the repository is a
git checkout, every path stays inside the worktrees root and is free, every branch exists or
can be made from its base ref. Bad input raises here and leaves nothing."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from tasks.errors import InvalidInput
from tasks.graph import batches
from tasks.worktree.gitops import branch_exists, open_repo, ref_exists
from tasks.worktree.models import DeploymentRequest, Preflight


def preflight(request: DeploymentRequest, adoptable: Collection[str] = ()) -> Preflight:
    """Resolve paths and check the repository, refs and target directories. The worktrees
    named in `adoptable` (made by an earlier attempt of the same run) may exist already."""
    with open_repo(request.repo_path) as repo:
        return _check(repo, request, set(adoptable))


def _check(repo, request: DeploymentRequest, adoptable: set[str]) -> Preflight:
    repo_path = Path(repo.working_tree_dir).resolve()
    root = (request.worktrees_root or repo_path / "worktrees").resolve()
    if root.exists() and not root.is_dir():
        raise InvalidInput(f"worktrees_root {str(root)!r} exists and is not a directory")
    paths: dict[str, Path] = {}
    for spec in request.worktrees:
        path = (root / spec.name).resolve()
        if path.parent != root:  # names are validated; this keeps the promise explicit
            raise InvalidInput(f"worktree {spec.name!r} would leave {root}")
        if path.exists() and spec.name not in adoptable:
            raise InvalidInput(
                f"worktree path {path} already exists; run `reactor worktree teardown` first"
            )
        if not branch_exists(repo, spec.branch) and not ref_exists(repo, spec.base_ref):
            raise InvalidInput(
                f"branch {spec.branch!r} of {spec.name!r} does not exist and base_ref "
                f"{spec.base_ref!r} is not a commit in {repo_path}"
            )
        paths[spec.name] = path
    return Preflight(
        repo_path=repo_path,
        worktrees_root=root,
        paths=paths,
        batches=batches(request.graph(), "worktree"),
    )
