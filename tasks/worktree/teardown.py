"""Teardown of registered environments: stop the process group, remove the worktree (and the
branch a deployment created), prune, release the port and the registry entry."""

from __future__ import annotations

from pathlib import Path

from tasks.store import JsonStore
from tasks.worktree import gitops, process
from tasks.worktree.models import TeardownItem
from tasks.worktree.registry import Registry, release


def teardown_environment(store: JsonStore[Registry], name: str) -> TeardownItem:
    entry = store.read().get("worktree_environments", {}).get(name)
    item = TeardownItem(name=name)
    if entry is None:
        item.detail = "not registered"
        return item
    pid = entry.get("pid")
    if pid and process.stop_process(pid):
        item.stopped_pid = pid
    path, repo = entry.get("worktree_path"), entry.get("repo_path")
    if path and repo and Path(repo).exists():
        branch = entry.get("branch") if entry.get("created_branch") else None
        done = gitops.remove_worktree(Path(repo), Path(path), branch)
        item.worktree_removed = any("worktree" in d or "directory" in d for d in done)
        item.branch_deleted = branch if any("branch" in d for d in done) else None
        item.detail = "; ".join(done)
    for _, port in release(store, [name]):
        item.port_released = port
    return item
