"""The trace scenario's logic imports no Prefect: only prefect_tasks.py and report.py (the
boundary) do, so `import tasks.trace.<anything else>` stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

PURE = [
    "tasks.trace",
    "tasks.trace.models",
    "tasks.trace.calls",
    "tasks.trace.context",
    "tasks.trace.analysis",
    "tasks.trace.spans",
    "tasks.trace.sample",
    "tasks.trace.standins",
    "tasks.tracing",
    "tasks.telemetry",
    "tasks.redaction",
]


@pytest.mark.parametrize("module", PURE)
def test_pure_module_does_not_import_prefect(module):
    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m == 'prefect'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
