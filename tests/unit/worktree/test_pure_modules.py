"""The worktree logic runs without Prefect: importing a pure module never loads it."""

from __future__ import annotations

import subprocess
import sys

import pytest

PURE = [
    "tasks.graph",
    "tasks.worktree.deploy",
    "tasks.worktree.environment",
    "tasks.worktree.errors",
    "tasks.worktree.gitops",
    "tasks.worktree.health",
    "tasks.worktree.models",
    "tasks.worktree.monitor",
    "tasks.worktree.preflight",
    "tasks.worktree.process",
    "tasks.worktree.registry",
    "tasks.worktree.sample_repo",
    "tasks.worktree.secret_names",
    "tasks.worktree.teardown",
]


@pytest.mark.parametrize("module", PURE)
def test_pure_module_does_not_import_prefect(module):
    code = f"import sys, {module}; print('prefect' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", f"{module} pulls Prefect in"
