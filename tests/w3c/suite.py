"""Run the real W3C Trace Context test suite against the adapter service.

The suite is not vendored (it needs `aiohttp`, which is not a project dependency): point
`W3C_TRACE_CONTEXT_SUITE` at a checkout's `test/` folder and `W3C_SUITE_PYTHON` at an
interpreter that has `aiohttp`, e.g.

    git clone https://github.com/w3c/trace-context /tmp/tc && git -C /tmp/tc checkout d782773
    python3 -m venv /tmp/tc-venv && /tmp/tc-venv/bin/pip install aiohttp
    W3C_TRACE_CONTEXT_SUITE=/tmp/tc/test W3C_SUITE_PYTHON=/tmp/tc-venv/bin/python \\
        .venv/bin/python -m tests.w3c.suite

`tests/w3c/test_suite_cases.py` mirrors every case of the suite offline; `test_real_suite`
runs the real one when both variables are set.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tasks.net import free_port
from tests.w3c.service import serve_adapter

SUITE_ENV = "W3C_TRACE_CONTEXT_SUITE"
PYTHON_ENV = "W3C_SUITE_PYTHON"
# unittest -v: "test_x (module.Class.test_x)", then the docstring's first line, then "... ok"
_RESULT = re.compile(
    r"^(test_\w+) \([^)]*\)(?:\n[^\n]*?)? \.\.\. (ok|FAIL|ERROR|skipped[^\n]*)$", re.M
)


@dataclass
class SuiteRun:
    results: dict[str, str]  # test name -> ok | FAIL | ERROR | skipped ...
    output: str

    @property
    def passed(self) -> int:
        return sum(1 for r in self.results.values() if r == "ok")

    @property
    def failed(self) -> list[str]:
        return sorted(n for n, r in self.results.items() if r in ("FAIL", "ERROR"))


def configured() -> tuple[Path, str] | None:
    """The suite folder and its interpreter, when both are set and present."""
    suite, python = os.environ.get(SUITE_ENV), os.environ.get(PYTHON_ENV)
    if not suite or not python or not (Path(suite) / "test.py").is_file():
        return None
    return Path(suite), python


def run_suite(suite: Path, python: str, spec_level: int = 2, timeout_s: float = 300) -> SuiteRun:
    """Serve the adapter, run `test.py` against it (STRICT_LEVEL 2, `spec_level`)."""
    with serve_adapter() as url:
        env = {
            **os.environ,
            "SPEC_LEVEL": str(spec_level),
            "STRICT_LEVEL": "2",
            "HARNESS_PORT": str(free_port()),
        }
        done = subprocess.run(
            [python, "test.py", url],
            cwd=suite,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    output = done.stdout + done.stderr
    return SuiteRun({m[1]: m[2] for m in _RESULT.finditer(output)}, output)


if __name__ == "__main__":
    where = configured()
    if where is None:
        sys.exit(f"set {SUITE_ENV} (the suite's test/ folder) and {PYTHON_ENV} (with aiohttp)")
    run = run_suite(*where)
    print(run.output)
    print(f"{run.passed}/{len(run.results)} passed; failing: {', '.join(run.failed) or 'none'}")
    sys.exit(1 if run.failed else 0)
