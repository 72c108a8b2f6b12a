"""The layout rules that keep the code one shape: every fan-out is in a flow module, and comments
point only at documents in this repository (that pure logic never pulls Prefect in is
tests/unit/test_purity.py)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


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
