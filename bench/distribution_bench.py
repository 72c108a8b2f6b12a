"""Distribution benchmark: planned makespan / lower bound on random workloads.

    .venv/bin/python bench/distribution_bench.py [--workloads 60] [--seed 7]

Workloads: 100-2,000 tasks, 2-32 agents (speed 1, concurrency 1, so the bound is exactly
max(W/m, critical path, longest task)), durations 50-5,000 ms, half of them with dependency
chains (random chains of 2-8 tasks plus occasional links to earlier tasks). Every schedule is
checked (dependencies respected, no overlap on a slot). Prints the ratio distribution per
strategy and per graph shape; target median <= 1.05, worst <= 1.15.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks.swarm.distribution import (
    SCHEDULING_STRATEGIES,
    PlanAgent,
    PlanTask,
    check_schedule,
    plan,
)

TYPES = ("analysis", "optimization", "coordination", "validation")


def workload(rng: random.Random, chains: bool) -> tuple[list[PlanTask], list[PlanAgent]]:
    n = rng.randint(100, 2000)
    m = rng.randint(2, 32)
    tasks: list[PlanTask] = []
    i = 0
    while i < n:
        length = rng.randint(2, 8) if chains else 1
        prev: str | None = None
        for _ in range(min(length, n - i)):
            deps = [prev] if prev else []
            if chains and tasks and rng.random() < 0.1:
                deps.append(tasks[rng.randrange(len(tasks))].id)
            tid = f"t{i}"
            tasks.append(
                PlanTask(
                    id=tid,
                    duration=rng.uniform(50, 5000),
                    dependencies=tuple(dict.fromkeys(deps)),
                    type=rng.choice(TYPES),
                    score=rng.randint(1, 100),
                )
            )
            prev, i = tid, i + 1
    agents = [PlanAgent(id=f"a{k}", specializations=(TYPES[k % len(TYPES)],)) for k in range(m)]
    return tasks, agents


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    cases = [workload(rng, chains=k % 2 == 1) for k in range(args.workloads)]
    ratios: dict[tuple[str, str], list[float]] = {}
    t0 = time.perf_counter()
    for k, (tasks, agents) in enumerate(cases):
        shape = "chains" if k % 2 else "independent"
        index = {a.id: a for a in agents}
        for strategy in SCHEDULING_STRATEGIES:
            schedule = plan(tasks, agents, strategy)
            check_schedule(schedule, tasks, index)
            ratios.setdefault((strategy, shape), []).append(schedule.ratio)
    elapsed = time.perf_counter() - t0
    print(
        f"{args.workloads} random workloads (100-2000 tasks, 2-32 agents), "
        f"{len(SCHEDULING_STRATEGIES)} strategies, planned in {elapsed:.1f} s"
    )
    print(f"{'strategy':<10} {'graph':<12} {'n':>3} {'median':>7} {'p90':>7} {'worst':>7}")
    ok = True
    for strategy in SCHEDULING_STRATEGIES:
        every: list[float] = []
        for shape in ("independent", "chains"):
            r = sorted(ratios[(strategy, shape)])
            every += r
            p90 = r[int(0.9 * (len(r) - 1))]
            print(
                f"{strategy:<10} {shape:<12} {len(r):>3} {statistics.median(r):>7.3f} "
                f"{p90:>7.3f} {max(r):>7.3f}"
            )
        med, worst = statistics.median(every), max(every)
        ok = ok and med <= 1.05 and worst <= 1.15
        print(f"{strategy:<10} {'all':<12} {len(every):>3} {med:>7.3f} {'':>7} {worst:>7.3f}")
    print(
        "ratio = planned makespan / max(W/m, critical path, longest task); "
        "target median <= 1.05, worst <= 1.15"
    )
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
