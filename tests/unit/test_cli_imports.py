"""The CLI answers at once: `--help`, input errors and `spr validate` load none of the heavy
libraries (nltk pulls scipy.stats and scikit-learn; pandas, pyarrow; Prefect; the Claude SDK).
Counted from `sys.modules` in a child forked per command from an interpreter that has imported
only the CLI's entry point, not timed (bench/cli_bench.py times it)."""

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

# One interpreter imports the CLI's entry point, as every command does first, then forks a
# child per command: each child's modules are what a fresh `reactor <command>` loads (~0.5 s of
# CPU saved per command, the import of the entry point).
PROBE = """
import json, os, sys
from reactor.cli import main
for argv in json.loads(sys.argv[1]):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        code = None
        try:
            code = main(argv)
        finally:
            sys.stdout.flush()
            loaded = sorted({m.split(".")[0] for m in sys.modules})
            os.write(write, json.dumps({"code": code, "top": loaded, "count": len(sys.modules)})
                     .encode())
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        got = pipe.read()
    os.waitpid(pid, 0)
    print(json.dumps(json.loads(got)))
"""

COMMANDS = [
    ["--help"],
    ["spr", "--help"],
    ["swarm", "run", "--help"],
    ["spr", "validate", "{spr}"],
    ["spr", "compress", "{missing}"],
    ["spr", "compress", "{spr}", "--target-ratio", "7"],
    ["swarm", "run", "{missing}"],
]
HEAVY_COMMAND = ["spr", "compress", "{sample}", "--out", "{out}"]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory) -> dict[tuple[str, ...], dict]:
    """command (as written above) -> its exit code and the modules it loaded."""
    tmp = tmp_path_factory.mktemp("cli-imports")
    spr = tmp / "doc.spr"
    spr.write_text(SPR)
    sample = Path(__file__).resolve().parents[2] / "samples" / "spr" / "incident-postmortem.md"
    names = {"spr": spr, "missing": tmp / "missing.json", "sample": sample, "out": tmp / "o.spr"}
    commands = [*COMMANDS, HEAVY_COMMAND]
    argvs = [[a.format(**names) for a in argv] for argv in commands]
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(argvs)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith('{"code"')]
    assert len(lines) == len(commands), done.stderr[-3000:]
    return {tuple(argv): json.loads(line) for argv, line in zip(commands, lines, strict=True)}


@pytest.mark.parametrize("argv", COMMANDS)
def test_help_input_errors_and_validate_load_no_heavy_library(argv, loaded):
    got = loaded[tuple(argv)]
    heavy = sorted(set(HEAVY) & set(got["top"]))
    assert not heavy, f"reactor {' '.join(argv)} loaded {heavy} ({got['count']} modules)"
    expected = 0 if argv[-1] == "--help" or argv[:2] == ["spr", "validate"] else None
    if expected is not None:
        assert got["code"] == expected
    else:
        assert got["code"] != 0


def test_the_probe_sees_a_heavy_import_when_one_happens(loaded):
    """The count is real: the same probe shows SPR's tokeniser when a command stems."""
    got = loaded[tuple(HEAVY_COMMAND)]
    assert got["code"] == 0 and "nltk" in got["top"]
