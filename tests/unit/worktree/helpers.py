"""Shared by the worktree tests: a real sample repository and checks of what is left behind."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import psutil

from tasks.net import port_is_free
from tasks.worktree.sample_repo import sample_service as service  # noqa: F401 (re-exported)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout


def worktree_paths(repo: Path) -> list[str]:
    return [
        line.split(" ", 1)[1]
        for line in git(repo, "worktree", "list", "--porcelain").splitlines()
        if line.startswith("worktree ")
    ]


def branches(repo: Path) -> set[str]:
    return set(git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads").split())


def processes_under(root: Path) -> list[psutil.Process]:
    """Live processes whose working directory is inside `root` (our services run there)."""
    found = []
    root = root.resolve()
    for proc in psutil.process_iter(["pid", "cwd", "status"]):
        cwd = proc.info.get("cwd")
        if (
            cwd
            and proc.info.get("status") != psutil.STATUS_ZOMBIE
            and Path(cwd).is_relative_to(root)
        ):
            found.append(proc)
    return found


def port_range(span: int = 40) -> tuple[int, int]:
    """A random slice of ports so concurrent test runs rarely meet, below the kernel's
    ephemeral range (32768+): a port the flow allocated is never some client's source port
    by the time its service binds it (a resumed deploy binds minutes later)."""
    low = random.randrange(20000, 32768 - span)
    return (low, low + span - 1)


def ports_free(ports) -> bool:
    return all(port_is_free(p) for p in ports)
