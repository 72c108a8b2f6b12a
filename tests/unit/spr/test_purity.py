"""The SPR logic modules never import Prefect: only `prefect_tasks` (the @task wrappers) does."""

import subprocess
import sys
from pathlib import Path

import tasks.spr

PURE = sorted(
    f"tasks.spr.{p.stem}"
    for p in Path(tasks.spr.__file__).parent.glob("*.py")
    if p.stem not in ("__init__", "prefect_tasks")
)

# one fresh interpreter imports them one by one and names the first that brings Prefect in
SCRIPT = """
import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
    if "prefect" in sys.modules:
        print(name)
        break
else:
    print("none")
"""


def test_pure_modules_import_no_prefect():
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, "tasks.spr", *PURE],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    assert out.stdout.strip() == "none", f"{out.stdout.strip()} pulls Prefect in"
    assert len(PURE) >= 12
