"""The CLI answers at once: `--help`, input errors and `spr validate` load none of the heavy
libraries (nltk pulls scipy.stats and scikit-learn; pandas, pyarrow; Prefect; the Claude SDK).
Counted in a fresh interpreter from `sys.modules`, not timed (bench/cli_bench.py times it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("nltk", "scipy", "sklearn", "numpy", "pandas", "pyarrow", "prefect", "anthropic")
SPR = """# SPR Compression Result
# Original: 40 words
# Compressed: 10 words
# Ratio: 0.250 (target 0.250)
# Format: standard
# Generated: 2026-12-01T00:00:00+00:00
# Trace ID: 4bf92f3577b34da6a3ce929d0e0e4736

first statement of four words
second statement of four words
"""

PROBE = """
import json, sys
from reactor.cli import main
code = main(json.loads(sys.argv[1]))
loaded = sorted({m.split(".")[0] for m in sys.modules})
print(json.dumps({"code": code, "top": loaded, "count": len(sys.modules)}))
"""


def _loaded(argv: list[str]) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(argv)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["spr", "--help"],
        ["swarm", "run", "--help"],
        ["spr", "validate", "{spr}"],
        ["spr", "compress", "{missing}"],
        ["spr", "compress", "{spr}", "--target-ratio", "7"],
        ["swarm", "run", "{missing}"],
    ],
)
def test_help_input_errors_and_validate_load_no_heavy_library(argv, tmp_path):
    spr = tmp_path / "doc.spr"
    spr.write_text(SPR)
    args = [a.format(spr=spr, missing=tmp_path / "missing.json") for a in argv]
    got = _loaded(args)
    heavy = sorted(set(HEAVY) & set(got["top"]))
    assert not heavy, f"reactor {' '.join(argv)} loaded {heavy} ({got['count']} modules)"
    expected = 0 if argv[-1] == "--help" or argv[:2] == ["spr", "validate"] else None
    if expected is not None:
        assert got["code"] == expected
    else:
        assert got["code"] != 0


def test_the_probe_sees_a_heavy_import_when_one_happens(tmp_path):
    """The count is real: the same probe shows SPR's tokeniser when a command stems."""
    doc = Path(__file__).resolve().parents[2] / "samples" / "spr" / "incident-postmortem.md"
    got = _loaded(["spr", "compress", str(doc), "--out", str(tmp_path / "out.spr")])
    assert got["code"] == 0 and "nltk" in got["top"]
