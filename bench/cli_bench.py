"""How fast the CLI answers: wall time of `reactor --help`, `reactor spr validate FILE` (a header
check) and one input error (`reactor spr compress` of a missing file), median of 10 runs each,
with the CPU time (user + system) of the same runs beside it: on a shared, loaded machine the
wall time mostly measures the queue for a core, the CPU time what the command costs.

    .venv/bin/python bench/cli_bench.py [--baseline /path/to/other/checkout] [--runs 10]

With `--baseline`, the other checkout's `reactor` (its own `.venv`, its own code) runs the same
commands, alternated with ours run by run so both see the same machine load, and the ratio
ours / baseline is printed.
"""

from __future__ import annotations

import argparse
import os
import resource
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


def measure(reactor: Path, args: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([str(reactor), *args], cwd=cwd, capture_output=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


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
        times: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for name, argv in commands(work).items():
            for _ in range(args.runs):
                for tree, root in trees.items():
                    t = measure(root / ".venv" / "bin" / "reactor", argv, root)
                    times.setdefault((name, tree), []).append(t)
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"median of {args.runs} runs, seconds (python {sys.version.split()[0]}, load {load})")
    header = f"{'command':<28} {'wall':>7} {'cpu':>6}"
    if args.baseline:
        header += f" {'base wall':>9} {'base cpu':>8} {'wall ratio':>10} {'cpu ratio':>9}"
    print(header)
    for name in commands(Path(".")):
        wall, cpu = (statistics.median(x) for x in zip(*times[(name, "ours")], strict=True))
        line = f"{name:<28} {wall:>7.3f} {cpu:>6.3f}"
        if args.baseline:
            bwall, bcpu = (
                statistics.median(x) for x in zip(*times[(name, "baseline")], strict=True)
            )
            line += f" {bwall:>9.3f} {bcpu:>8.3f} {wall / bwall:>10.2f} {cpu / bcpu:>9.2f}"
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
