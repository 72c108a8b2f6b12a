"""The layout rules that keep the code one shape: pure logic never pulls Prefect in, every
fan-out is in a flow module, and comments point only at documents in this repository."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The Prefect edge: decorators, artifacts, events, transactions, the task runner, resumption.
# `report.py` publishes a scenario's artifacts (the rows and schemas in it are plain).
EDGE = {
    "prefect_tasks.py",
    "report.py",
    "artifacts.py",
    "events.py",
    "compensation.py",
    "runtime.py",
    "resume.py",  # result storage and cache policies of resumable runs
}


def _module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


PURE = sorted(_module(p) for p in (ROOT / "tasks").rglob("*.py") if p.name not in EDGE)


def test_pure_modules_do_not_import_prefect():
    """One fresh interpreter imports the pure modules one after another; the first whose
    import brings `prefect` into `sys.modules` is the offender (its imports are its own)."""
    code = (
        "import importlib, sys\n"
        f"for name in {PURE!r}:\n"
        "    importlib.import_module(name)\n"
        "    if 'prefect' in sys.modules:\n"
        "        print(name); sys.exit(3)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode != 3, f"importing {done.stdout.strip()} imports prefect"
    assert done.returncode == 0, done.stderr


def _python_files(*folders: str) -> list[Path]:
    return [p for f in folders for p in (ROOT / f).rglob("*.py")]


def test_fan_outs_live_in_flow_modules():
    offenders = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in _python_files("tasks", "deployments", "reactor")
        for n, line in enumerate(p.read_text().splitlines(), 1)
        # a task runner's own submit delegating to its base class is no fan-out
        if re.search(r"(?<!super\(\))\.(submit|map)\(", line) and not line.lstrip().startswith("#")
    ]
    assert offenders == []


def test_comments_cite_only_documents_in_the_repository():
    pattern = re.compile(r"SPEC\s*§|\bthe seed\b|\bseed's\b|shared/SPEC", re.IGNORECASE)
    offenders = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in _python_files("tasks", "flows", "deployments", "reactor", "bench", "tests")
        if p.name != "test_layout.py"
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []
