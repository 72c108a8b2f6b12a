"""How long `make test` takes on a fresh clone: quiet, then beside a CPU hog, and the ratio.

    nice .venv/bin/python bench/suite_time.py [--hogs 4] [--max-load 2] [--commit HEAD]

Clones the commit into a temporary directory and runs CI's own entry point there (`CI=true
bash .ci/run`: the venv from uv's cache, ruff, every test), after waiting (at most
`--settle` seconds) for the 1-minute load average to fall to `--max-load`. Then `make
test-quick` in the same clone. Then a second fresh clone runs `.ci/run` beside `--hogs`
busy-looping processes at the same priority. Prints, per run, the load when it started, the wall
time, pytest's own time and result, and the CPU time of the processes it waited for (servers the
tests leave to init are not counted); then the ratio hog / quiet. Exit status 1 when a run
failed, since its time then means nothing. ~20 minutes; `make bench` does not run it.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUMMARY = re.compile(r"^=* ?(\d+ (?:passed|failed).*?) in ([\d.]+)s", re.MULTILINE)


@dataclass
class Run:
    name: str
    load: float
    wall: float
    cpu: float
    pytest: float
    result: str
    ok: bool


def _spin() -> None:
    while True:
        pass


def _settle(max_load: float, limit: float) -> None:
    """Wait (bounded) for the 1-minute load average to reach max_load (the table shows it)."""
    deadline = time.monotonic() + limit
    while os.getloadavg()[0] > max_load and time.monotonic() < deadline:
        time.sleep(5)


def _clone(commit: str, into: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(ROOT), str(into)], check=True)
    subprocess.run(["git", "-C", str(into), "checkout", "-q", commit], check=True)
    return into


def _timed(name: str, cmd: list[str], cwd: Path, log: Path) -> Run:
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    with log.open("w") as out:
        done = subprocess.run(
            cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "CI": "true"}
        )
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    found = SUMMARY.findall(log.read_text(errors="replace"))
    result, seconds = found[-1] if found else ("no pytest summary", "0")
    return Run(name, load, wall, cpu, float(seconds), result, done.returncode == 0)


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:02.0f} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commit", default="HEAD")
    parser.add_argument("--hogs", type=int, default=4, help="busy-looping processes beside")
    parser.add_argument("--max-load", type=float, default=2.0, help="load to wait for first")
    parser.add_argument("--settle", type=float, default=900, help="seconds to wait for it, at most")
    parser.add_argument("--keep", action="store_true", help="keep the clones and logs")
    args = parser.parse_args()
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", args.commit],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()

    tmp = Path(tempfile.mkdtemp(prefix="reactor-suite-time-"))
    runs: list[Run] = []
    _settle(args.max_load, args.settle)
    quiet = _clone(commit, tmp / "quiet")
    runs.append(_timed("make test", ["bash", ".ci/run"], quiet, tmp / "quiet.log"))
    print(f"quiet run done; logs in {tmp}", file=sys.stderr, flush=True)
    runs.append(_timed("make test-quick", ["make", "test-quick"], quiet, tmp / "quick.log"))

    hogs = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(args.hogs)]
    for hog in hogs:
        hog.start()
    try:
        busy = _clone(commit, tmp / "hogs")
        name = f"make test, {args.hogs} hogs"
        runs.append(_timed(name, ["bash", ".ci/run"], busy, tmp / "hogs.log"))
    finally:
        for hog in hogs:
            hog.kill()

    print(f"\n`make test` on fresh clones of {commit}, {os.cpu_count()} CPUs")
    print(f"{'run':<20} {'load':>5} {'wall':>13} {'pytest':>13} {'CPU':>7}  result")
    for run in runs:
        print(
            f"{run.name:<20} {run.load:>5.1f} {_minutes(run.wall):>13} "
            f"{_minutes(run.pytest):>13} {run.cpu:>6.0f}s  {run.result}"
            + ("" if run.ok else "  FAILED")
        )
    print(f"ratio beside {args.hogs} hogs / quiet (wall): {runs[2].wall / runs[0].wall:.2f}")
    ok = all(run.ok for run in runs)
    if ok and not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"clones and logs kept in {tmp}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
