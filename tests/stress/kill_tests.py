"""Run the crash and kill tests N times beside a CPU hog and report each test's passes.

    nice .venv/bin/python tests/stress/kill_tests.py --rounds 20 --hogs 4

Each round is one pytest session over the tests below (a fresh Prefect server and PostgreSQL);
the hog is `--hogs` busy-looping processes at the tests' own priority, started before the first
round and killed after the last. The table lists, per test, passes / rounds and the slowest
passing run; the exit status is non-zero when any test failed a round. `-k` narrows the set
(pytest's own expression), `--workers` runs each round on pytest-xdist workers as `make test`
does.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# every test that SIGKILLs (or SIGSTOPs) a process of its own making, by file or node id
KILL_TESTS = [
    "tests/flows/test_crash_swarm.py",
    "tests/flows/test_crash_spr.py",
    "tests/flows/test_crash_trace.py",
    "tests/flows/test_crash_worktree.py",
    "tests/flows/test_health_monitor.py",
    "tests/flows/test_two_hosts.py::test_two_hosts_drain_one_queue_and_take_over_a_killed_hosts_claims",
    "tests/flows/test_two_hosts_s3.py::test_a_run_killed_on_host_a_resumes_on_host_b_from_the_bucket",
    "tests/flows/test_cli_server.py::test_stop_never_signals_a_process_that_took_the_recorded_pid",
    "tests/flows/test_worktree_deployment.py::test_teardown_never_kills_a_process_that_reused_a_services_pid",
    "tests/contract/test_ledger.py::test_killed_claimer_releases_after_lease",
    "tests/contract/test_ledger.py::test_resume_claim_takes_back_a_killed_holders_claim_at_once_under_its_token",
    "tests/contract/test_ledger_hardening.py::test_a_writer_behind_a_stopped_lock_holder_fails_with_lock_timeout",
    "tests/unit/swarm/test_handler_workers.py::test_a_killed_owner_leaves_no_worker_holding_its_output",
    "tests/unit/worktree/test_process.py",
]


def _spin() -> None:
    while True:
        pass


def _outcomes(junit: Path) -> dict[str, tuple[bool, float]]:
    """node id -> (passed, seconds) from pytest's JUnit XML."""
    found = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        path = case.get("classname", "").replace(".", "/")
        node = f"{path}.py::{case.get('name')}"
        failed = any(child.tag in ("failure", "error") for child in case)
        skipped = any(child.tag == "skipped" for child in case)
        if not skipped:
            found[node] = (not failed, float(case.get("time", 0)))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--hogs", type=int, default=4, help="busy-looping processes beside")
    parser.add_argument("--workers", type=int, default=0, help="pytest-xdist workers per round")
    parser.add_argument("-k", dest="keyword", help="pytest -k expression narrowing the set")
    args = parser.parse_args()

    hogs = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(args.hogs)]
    for hog in hogs:
        hog.start()
    passes: dict[str, int] = defaultdict(int)
    runs: dict[str, int] = defaultdict(int)
    slowest: dict[str, float] = defaultdict(float)
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="reactor-stress-") as tmp:
            for n in range(1, args.rounds + 1):
                junit = Path(tmp) / f"round{n}.xml"
                cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
                cmd += [f"--junitxml={junit}", *KILL_TESTS]
                if args.workers:
                    cmd += ["-n", str(args.workers), "--dist", "loadfile", "--no-loadscope-reorder"]
                if args.keyword:
                    cmd += ["-k", args.keyword]
                t0 = time.monotonic()
                subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, check=False)
                got = _outcomes(junit) if junit.exists() else {}
                for node, (ok, seconds) in got.items():
                    runs[node] += 1
                    passes[node] += ok
                    if ok:
                        slowest[node] = max(slowest[node], seconds)
                failed = [node for node, (ok, _) in got.items() if not ok]
                print(
                    f"round {n}/{args.rounds}: {len(got) - len(failed)}/{len(got)} passed in "
                    f"{time.monotonic() - t0:.0f} s, load {os.getloadavg()[0]:.1f}"
                    + "".join(f"\n  FAILED {node}" for node in failed),
                    flush=True,
                )
    finally:
        for hog in hogs:
            hog.kill()
    print(
        f"\n{args.rounds} rounds beside {args.hogs} CPU hogs in {time.monotonic() - started:.0f} s"
    )
    print(f"{'passes':>8}  {'slowest':>8}  test")
    for node in sorted(runs):
        print(f"{passes[node]:>3}/{runs[node]:<4}  {slowest[node]:>7.1f}s  {node}")
    return 0 if runs and all(passes[n] == runs[n] for n in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
