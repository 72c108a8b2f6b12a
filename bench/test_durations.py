"""Where the test time goes: group a `pytest --durations=0` report by file and by phase.

    .venv/bin/pytest -n 3 --dist loadfile --no-loadscope-reorder --durations=0 -q > /tmp/tests.log
    .venv/bin/python bench/test_durations.py /tmp/tests.log [more.log ...] [--write]

Reads the "slowest durations" lines (`12.34s call     tests/x.py::test_y[p]`) and prints, per
test file, the seconds spent in fixture set-up (servers, databases, module fixtures), in the
tests' own calls and in teardown, with the count of tests, slowest first; then the totals.
The sum is test time as one process spends it (with pytest-xdist, summed over the workers).
Given several reports, it prints their mean. `--write` also stores each file's seconds in
tests/durations.json, the order in which `make test` hands the files to its workers.
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from pathlib import Path

LINE = re.compile(r"^\s*([\d.]+)s (setup|call|teardown)\s+(\S+?)::(\S.*)$")
DURATIONS = Path(__file__).resolve().parents[1] / "tests" / "durations.json"


def main() -> int:
    args = sys.argv[1:]
    write = "--write" in args
    reports = [Path(a) for a in args if a != "--write"]
    if not reports:
        print("usage: test_durations.py <pytest --durations=0 log>... [--write]", file=sys.stderr)
        return 2
    by_file: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    tests: dict[str, set[str]] = defaultdict(set)
    for report in reports:
        for line in report.read_text(errors="replace").splitlines():
            if m := LINE.match(line):
                seconds, phase, path, name = float(m[1]), m[2], m[3], m[4]
                by_file[path][phase] += seconds / len(reports)
                tests[path].add(name)
    if not by_file:
        print("error: no durations in the report (run pytest with --durations=0)", file=sys.stderr)
        return 1
    total = {p: sum(f[p] for f in by_file.values()) for p in ("setup", "call", "teardown")}
    grand = sum(total.values())
    print("| file | tests | setup s | call s | teardown s | total s | share |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for path, phases in sorted(by_file.items(), key=lambda kv: -sum(kv[1].values())):
        sub = sum(phases.values())
        print(
            f"| {path} | {len(tests[path])} | {phases['setup']:.1f} | {phases['call']:.1f} "
            f"| {phases['teardown']:.1f} | {sub:.1f} | {100 * sub / grand:.1f} % |"
        )
    print(
        f"| **all** | {sum(len(t) for t in tests.values())} | {total['setup']:.1f} "
        f"| {total['call']:.1f} | {total['teardown']:.1f} | {grand:.1f} | 100 % |"
    )
    if write:
        seconds = {path: round(sum(p.values()), 1) for path, p in sorted(by_file.items())}
        DURATIONS.write_text(json.dumps(seconds, indent=1) + "\n")
        print(f"wrote {DURATIONS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
