"""How much handler work a resumed swarm run redoes: a swarm run of N tasks SIGKILLed when the
handler has finished 50 %, 75 % and 90 % of them (counted from the handler's own records), then
resumed under the same flow-run id (`reactor runs resume`, tests/crash.py); the retry's handler
work as a fraction of a fresh run's of the same tasks, measured in the same run against one
temporary Prefect server: the executions the handler started (its records), the target's
measure, and its handler-seconds (start to end), printed beside it (sleep-based, so it drifts
with the load of shared cores).

Target: retry executions / fresh executions <= (1 - done) + 0.05, where `done` is the fraction
the handler had finished at the kill (an execution that finished but whose completion the kill
beat runs again: that is what the 0.05 allows). Exits 1 if a target is missed.

    nice .venv/bin/python bench/resume_bench.py [--tasks 200] [--agents 8] [--sleep-s 0.05]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)  # prefect.toml (the server settings) is read from the working directory
# Nothing else at import: the killed runs' spawned processes import this module again, and
# Prefect must not be imported there before they set the test server's URL.

ENTRY = "flows.swarm_coordination:swarm_coordination"
HANDLERS = {"bench.record": {"kind": "python", "target": "tests.flows.two_host_handler:record"}}
SLACK = 0.05
POINTS = (0.5, 0.75, 0.9)


def request(tasks: int, agents: int, sleep_s: float, log: Path):
    from tasks.swarm.models import SwarmRequest

    return SwarmRequest.model_validate(
        {
            "tasks": [
                {
                    "id": f"t{i:04d}",
                    "type": "bench.record",
                    "estimated_duration_ms": sleep_s * 1000,
                    "payload": {"item": f"t{i:04d}", "log": str(log), "sleep_s": sleep_s},
                    "retries": 0,
                }
                for i in range(tasks)
            ],
            "agents": [{"name": f"agent-{i + 1}"} for i in range(agents)],
            "handlers": HANDLERS,
            "min_success_rate": 1.0,
        }
    )


def use_dirs(work: Path, name: str) -> Path:
    """A coordination and exports dir of the case's own (read from the env by every run)."""
    os.environ["REACTOR_COORDINATION_DIR"] = str(work / name / "coordination")
    os.environ["REACTOR_EXPORTS_DIR"] = str(work / name / "exports")
    return work / name / "handler.jsonl"


def work(records: list[dict]) -> tuple[float, int]:
    """Handler-seconds and executions in these records (start/end pairs by execution id)."""
    starts = {r["execution"]: r["at"] for r in records if r["event"] == "start"}
    ends = {r["execution"]: r["at"] for r in records if r["event"] == "end"}
    return sum(ends[e] - starts[e] for e in ends if e in starts), len(starts)


def fresh_run(args, work_dir: Path) -> tuple[float, int]:
    from flows.swarm_coordination import swarm_coordination
    from tasks.jsonl import read_jsonl

    log = use_dirs(work_dir, "fresh")
    result = asyncio.run(swarm_coordination(request(args.tasks, args.agents, args.sleep_s, log)))
    assert result.success_rate == 1.0, result.success_rate
    return work(read_jsonl(log))


def killed_and_resumed(args, work_dir: Path, point: float) -> dict:
    import psutil

    from tasks.jsonl import read_jsonl
    from tests.crash import resume, run_and_kill

    log = use_dirs(work_dir, f"kill-{point:.2f}")
    params = {
        "request": request(args.tasks, args.agents, args.sleep_s, log).model_dump(mode="json")
    }
    finished = int(point * args.tasks)

    def ended() -> int:
        return sum(1 for r in read_jsonl(log) if r["event"] == "end")

    killed = run_and_kill(ENTRY, params, lambda: ended() >= finished)
    psutil.wait_procs(killed.orphans, timeout=30)  # handler workers finish what they had
    at_kill = read_jsonl(log)
    done = len({r["item"] for r in at_kill if r["event"] == "end"}) / args.tasks
    outcome = resume(killed.flow_run_id)
    assert outcome.state == "Completed" and outcome.flow_run_id == killed.flow_run_id, outcome
    after = read_jsonl(log)
    ran = Counter(r["item"] for r in after if r["event"] == "end")
    assert len(ran) == args.tasks, f"{args.tasks - len(ran)} task(s) never ran"
    seconds, executions = work(after[len(at_kill) :])
    return {"point": point, "done": done, "seconds": seconds, "executions": executions}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--sleep-s", type=float, default=0.05)
    args = parser.parse_args()
    os.environ.pop("REACTOR_DATABASE_URL", None)  # the embedded ledger, one host
    from prefect.testing.utilities import prefect_test_harness

    work_dir = Path(tempfile.mkdtemp(prefix="resume-bench-"))
    with prefect_test_harness(server_startup_timeout=600):
        fresh_s, fresh_n = fresh_run(args, work_dir)
        cases = [killed_and_resumed(args, work_dir, p) for p in POINTS]
    print(f"fresh run: {fresh_n} handler executions, {fresh_s:.2f} handler-s ({args.tasks} tasks)")
    print(
        "kill at | done at kill | retry executions (fraction) | retry handler-s (fraction) | target"
    )
    missed = 0
    for c in cases:
        fraction = c["executions"] / fresh_n
        target = (1 - c["done"]) + SLACK
        ok = fraction <= target
        missed += not ok
        print(
            f"{c['point']:>7.0%} | {c['done']:>12.1%} | {c['executions']:>18} ({fraction:.3f}) | "
            f"{c['seconds']:>17.2f} ({c['seconds'] / fresh_s:.3f}) | <= {target:.3f} "
            f"{'ok' if ok else 'MISSED'}"
        )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
