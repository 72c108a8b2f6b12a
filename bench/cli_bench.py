"""How fast the CLI answers: wall time of `reactor --help`, `reactor spr validate FILE` (a header
check) and one input error (`reactor spr compress` of a missing file), median of 10 runs each.

    .venv/bin/python bench/cli_bench.py [--baseline /path/to/other/checkout] [--runs 10]

With `--baseline`, the other checkout's `reactor` (its own `.venv`, its own code) runs the same
commands, alternated with ours run by run so both see the same machine load, and the ratio
ours / baseline is printed.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
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


def commands(work: Path) -> dict[str, list[str]]:
    return {
        "reactor --help": ["--help"],
        "reactor spr validate": ["spr", "validate", str(work / "doc.spr")],
        "input error (missing file)": ["spr", "compress", str(work / "missing.txt")],
    }


def wall(reactor: Path, args: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run([str(reactor), *args], cwd=cwd, capture_output=True, check=False)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="another checkout with its own .venv")
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    trees = {"ours": ROOT}
    if args.baseline:
        trees["baseline"] = args.baseline.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "doc.spr").write_text(SPR)
        times: dict[tuple[str, str], list[float]] = {}
        for name, argv in commands(work).items():
            for _ in range(args.runs):
                for tree, root in trees.items():
                    t = wall(root / ".venv" / "bin" / "reactor", argv, root)
                    times.setdefault((name, tree), []).append(t)
    print(f"median wall seconds of {args.runs} runs (python {sys.version.split()[0]})")
    header = f"{'command':<30} {'ours':>8}"
    if args.baseline:
        header += f" {'baseline':>9} {'ours/baseline':>14}"
    print(header)
    for name in commands(Path(".")):
        ours = statistics.median(times[(name, "ours")])
        line = f"{name:<30} {ours:>8.3f}"
        if args.baseline:
            base = statistics.median(times[(name, "baseline")])
            line += f" {base:>9.3f} {ours / base:>14.2f}"
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
