"""Checks that need the file system, and the dependency-order schedule (pure, no Prefect).

`plan_deployment` runs before anything is created: bad input raises here and leaves nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tasks.errors import InvalidInput
from tasks.graph import batches
from tasks.worktree.gitops import branch_exists, open_repo, ref_exists
from tasks.worktree.models import DeploymentRequest, ServiceOutcome


@dataclass(frozen=True)
class Plan:
    repo_path: Path
    worktrees_root: Path
    paths: dict[str, Path]
    batches: list[list[str]]


def plan_deployment(request: DeploymentRequest) -> Plan:
    """Resolve paths and check the repository, refs and target directories."""
    with open_repo(request.repo_path) as repo:
        return _plan(repo, request)


def _plan(repo, request: DeploymentRequest) -> Plan:
    repo_path = Path(repo.working_tree_dir).resolve()
    root = (request.worktrees_root or repo_path / "worktrees").resolve()
    if root.exists() and not root.is_dir():
        raise InvalidInput(f"worktrees_root {str(root)!r} exists and is not a directory")
    paths: dict[str, Path] = {}
    for spec in request.worktrees:
        path = (root / spec.name).resolve()
        if path.parent != root:  # names are validated; this keeps the promise explicit
            raise InvalidInput(f"worktree {spec.name!r} would leave {root}")
        if path.exists():
            raise InvalidInput(
                f"worktree path {path} already exists; run `reactor worktree teardown` first"
            )
        if not branch_exists(repo, spec.branch) and not ref_exists(repo, spec.base_ref):
            raise InvalidInput(
                f"branch {spec.branch!r} of {spec.name!r} does not exist and base_ref "
                f"{spec.base_ref!r} is not a commit in {repo_path}"
            )
        paths[spec.name] = path
    return Plan(repo_path, root, paths, batches(request.graph(), "worktree"))


def next_steps(
    graph: Mapping[str, list[str]],
    outcomes: Mapping[str, ServiceOutcome],
    skipped: Mapping[str, str],
    started: set[str],
) -> tuple[list[str], dict[str, str]]:
    """Which services can start now (every dependency healthy) and which must be skipped (a
    dependency failed or was skipped), given what has finished so far."""
    skip: dict[str, str] = {}
    changed = True
    while changed:  # a skip can make its own dependents skippable
        changed = False
        for node, deps in graph.items():
            if node in started or node in skipped or node in skip:
                continue
            for dep in deps:
                if dep in outcomes and not outcomes[dep].ok:
                    skip[node] = f"dependency {dep} {outcomes[dep].status.value}"
                elif dep in skipped or dep in skip:
                    skip[node] = f"dependency {dep} was skipped"
                else:
                    continue
                changed = True
                break
    ready = [
        node
        for node, deps in graph.items()
        if node not in started
        and node not in skipped
        and node not in skip
        and all(d in outcomes and outcomes[d].ok for d in deps)
    ]
    return sorted(ready), skip
