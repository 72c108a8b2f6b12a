"""Where the test time goes: group a `pytest --durations=0` report by file and by phase.

    .venv/bin/pytest --durations=0 -q > /tmp/tests.log
    .venv/bin/python bench/test_durations.py /tmp/tests.log

Reads the "slowest durations" lines (`12.34s call     tests/x.py::test_y[p]`) and prints, per
test file, the seconds spent in fixture set-up (servers, databases, module fixtures), in the
tests' own calls and in teardown, with the count of tests, slowest first; then the totals.
The sum is test time as one process spends it (with pytest-xdist, summed over the workers).
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from pathlib import Path

LINE = re.compile(r"^\s*([\d.]+)s (setup|call|teardown)\s+(\S+?)::(\S.*)$")


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: test_durations.py <pytest --durations=0 output>", file=sys.stderr)
        return 2
    by_file: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    tests: dict[str, set[str]] = defaultdict(set)
    for line in Path(sys.argv[1]).read_text(errors="replace").splitlines():
        if m := LINE.match(line):
            seconds, phase, path, name = float(m[1]), m[2], m[3], m[4]
            by_file[path][phase] += seconds
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
