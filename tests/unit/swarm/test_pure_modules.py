"""The swarm scenario's logic modules never import Prefect: they are imported one by one in a
fresh interpreter, and `prefect` must not be in `sys.modules` after any of them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PURE = [
    "aggregation", "agents", "builtins", "claiming", "distribution", "errors", "execution",
    "handlers", "models", "priority", "report", "worker", "scenarios", "queue",
    "queue.draining", "queue.enqueue",
]  # fmt: skip
PROBE = """
import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(f"tasks.swarm.{name}")
    if "prefect" in sys.modules:
        print(name)
        break
"""


def test_pure_modules_do_not_import_prefect():
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *PURE], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "", f"tasks.swarm.{out.stdout.strip()} imports prefect"
